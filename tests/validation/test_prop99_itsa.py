"""California's Proposition 99 (per-capita cigarette sales, 1970-2000, interruption 1989):
the package against published output of Linden's Stata ``itsa``.

Source of the published numbers: the help file of Linden's ``power itsa`` (Stata module
POWER_ITSA, SSC S459461, http://fmwww.bc.edu/repec/bocode/p/power_itsa.sthlp; multiple-group
examples 1 and 2), which quotes the output of the first multiple-group example of ``itsa``
(Linden 2015, Stata Journal 15:480-500; ``use cigsales`` / ``tsset state year`` /
``itsa cigsale, treatid(3) trperiod(1989) lag(1) fig posttrend replace``):

- treated unit (California): intercept (level in 1970) 132.2258, pre-intervention trend
  -1.779474, post-intervention trend -3.274126, step change in 1989 -20.0581, "the
  difference between the counterfactual [...] of 98.416 and the predicted value with the
  intervention [...], thus 20.38% decrease in 1989";
- controls (38 states): intercept 135.4995, pre trend -.5477701, post trend -1.051279, step
  -17.25168; difference in step changes ``_z_x1989`` = -2.806417;
- P = 0.631 for the difference in level changes (``_z_x1989``) and P = 0.136 for the
  difference-in-differences of trends (``_z_x_t1989``), with Newey-West standard errors
  (``newey ..., lag(1) force``).

itsa's ``_x_t1989`` is ``year - 1989`` from 1989 on, so ``first_post_time=0`` (the
package's default) is the same parameterisation; its intercept is the level in the first
year, ours the pre-trend's level at the interruption (1989).

The published numbers are rounded; tolerances are half a unit in the last published digit.
"""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis.its import ITSDesign, SegmentedRegression
from analysis.its.covariance import FitContext, NeweyWest

DESIGN = ITSDesign(interruption=1989)


def half_unit(published: str) -> float:
    """Half a unit in the last digit of a number as printed."""
    decimals = len(published.split(".")[1]) if "." in published else 0
    return 0.5 * 10.0**-decimals


@pytest.fixture(scope="module")
def prop99(validation_dir) -> pd.DataFrame:
    # Stata's cigsales.dta numbers states alphabetically (California = 3); tsset state year.
    return pd.read_csv(validation_dir / "prop99_cigsale_long.csv").sort_values(["state", "year"], ignore_index=True)


def test_single_group_coefficients_match_itsa(prop99):
    ca = prop99[prop99.state == "California"]
    res = SegmentedRegression(ca.cigsale.to_numpy(), time=ca.year.to_numpy(), design=DESIGN).fit(cov_type="model")
    b = res.params
    for value, published in (
        (b["const"] - 19 * b["time"], "132.2258"),
        (b["time"], "-1.779474"),
        (b["time"] + b["slope_change"], "-3.274126"),
        (b["level_change"], "-20.0581"),
        (b["const"], "98.416"),
    ):
        assert value == pytest.approx(float(published), abs=half_unit(published)), published
    _, relative = res.effect_at(1989)
    assert 100 * relative.estimate == pytest.approx(-20.38, abs=half_unit("20.38"))


def test_multiple_group_coefficients_and_newey_west_p_values_match_itsa(prop99):
    treated = (prop99.state == "California").to_numpy(float)
    model = SegmentedRegression(
        prop99.cigsale.to_numpy(),
        time=prop99.year.to_numpy(),
        design=DESIGN,
        group=treated,
        series=prop99.state.to_numpy(),
    )
    ols = model.fit(cov_type="model")
    b = ols.params
    controls = {
        "135.4995": b["const"] - 19 * b["time"],
        "-.5477701": b["time"],
        "-1.051279": b["time"] + b["slope_change"],
        "-17.25168": b["level_change"],
        "-2.806417": b["group_level_change"],
    }
    for published, value in controls.items():
        assert value == pytest.approx(float(published), abs=half_unit(published)), published
    # Stata's ``newey, force`` on these panel data uses the rows in data order as one series
    # (lag-one products also across state boundaries) with its n / (n - k) factor, and t with
    # n - k df. The package's estimator is given exactly that: one series, small_sample=True.
    data = model.design_data()
    X = data.X.to_numpy()
    resid = data.y - X @ b.to_numpy()
    context = FitContext(X=X, weights=np.ones(len(resid)), resid=resid, time=np.arange(len(resid)), sampling=False)
    cov = NeweyWest(lags=1, small_sample=True).estimate(context)
    se = pd.Series(np.sqrt(np.diag(cov.cov)), index=data.X.columns)
    for name, published in (("group_level_change", "0.631"), ("group_slope_change", "0.136")):
        p = 2 * stats.t.sf(abs(b[name] / se[name]), cov.df)
        assert p == pytest.approx(float(published), abs=half_unit(published)), name


def test_command_line_reproduces_itsa_multiple_group(validation_dir, capsys):
    """`python -m analysis fit ... --group state --treated California --errors newey-west
    --lags 1 --stata-newey` gives itsa's difference in level change (-2.806417) and its
    Newey-West p-values (0.631 and 0.136)."""
    import json

    from analysis.cli import main

    code = main(
        [
            "fit",
            str(validation_dir / "prop99_cigsale_long.csv"),
            "--outcome",
            "cigsale",
            "--time",
            "year",
            "--intervention",
            "1989",
            "--group",
            "state",
            "--treated",
            "California",
            "--errors",
            "newey-west",
            "--lags",
            "1",
            "--stata-newey",
            "--json",
        ]
    )
    assert code == 0
    terms = {t["term"]: t for t in json.loads(capsys.readouterr().out)["terms"]}
    assert terms["diff_level_change"]["estimate"] == pytest.approx(-2.806417, abs=half_unit("-2.806417"))
    assert terms["diff_level_change"]["p_value"] == pytest.approx(0.631, abs=half_unit("0.631"))
    assert terms["diff_slope_change"]["p_value"] == pytest.approx(0.136, abs=half_unit("0.136"))
