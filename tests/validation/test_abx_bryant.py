"""Negative binomial ITS with a lag-1 residual covariate against the authors' saved R output.

Bryant OK et al., Lancet Infect Dis 2022: antibiotic items prescribed in English general
practice, 2018-01 .. 2022-07, with interruptions at the first COVID-19 lockdown (2020-03)
and the end of restrictions (2021-07). Their R code (``ITS_analysis.R`` in
github.com/OliviaKBryant/antibiotic_prescribing_covid_ITS) fits, for each model::

    negbinom_model1 <- glm.nb(drug ~ offset(log(Appointments)) + time + intervention1 +
                              time_after_inter1 + intervention2 + time_after_inter2 +
                              as.factor(studymonth))
    negbinom_lagres <- lag(residuals(negbinom_model1)) %>% as.numeric()
    negbinom_model2 <- glm.nb(<same> + negbinom_lagres)
    ci.exp(negbinom_model2)                      # -> estimates/<name>.csv

``residuals()`` of a glm are deviance residuals; ``lag`` is ``dplyr::lag`` (tidyverse is
attached), which shifts by one row and puts NA first, so ``glm.nb`` drops the first month;
``time_after_inter`` is 1 in the first post-interruption month (``first_post_time=1``).
The ``APRIL20_EXCL`` model deletes the April 2020 row before both fits, so May 2020 is
lagged on March 2020's residual; the ``absolute`` model has no offset (exposure 1).
``Epi::ci.exp`` gives Wald intervals with the normal quantile, which is what the package
reports for the model-based covariance of a count family (infinite df).

The package's time is counted from the first interruption, R's from 2017-12 (time 0), so
R's ``(Intercept)`` is the contrast ``const - 27 * time``, compared with its interval from
the fitted covariance; every other coefficient is compared directly.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.its import ITSDesign, SegmentedRegression
from analysis.its.effects import linear

#: R's coefficient names -> the package's.
TERMS = {
    "(Intercept)": "const",
    "time": "time",
    "intervention1": "level_change",
    "time_after_inter1": "slope_change",
    "intervention2": "level_change_2",
    "time_after_inter2": "slope_change_2",
    "negbinom_lagres": "lagged_residual",
    **{f"as.factor(studymonth){m}": f"month_{m:02d}" for m in range(2, 13)},
}
#: R's time of the first interruption (2020-03): R's intercept is at time 0.
R_TIME_AT_INTERRUPTION = 27

MODELS = [
    pytest.param("all_antibiotics_appointments", "Item_all.antibiotics", True, (), id="all-antibiotics"),
    pytest.param(
        "APRIL20_EXCL_all_antibiotics_appointments",
        "Item_all.antibiotics",
        True,
        ("2020-04",),
        id="all-antibiotics-april-2020-excluded",
    ),
    pytest.param("absolute_all_antibiotics_appointments", "Item_all.antibiotics", False, (), id="absolute-counts"),
    pytest.param(
        "APRIL20_EXCL_penicillins_appointments",
        None,
        True,
        ("2020-04",),
        id="penicillins",
        marks=pytest.mark.skip(
            reason="no penicillin item counts in the shared data (nor in the "
            "repository's data/ITS_dataset_toJul22.csv), and the stored "
            "ITS_analysis.R has no penicillin model to say which column"
        ),
    ),
]


@pytest.fixture(scope="module")
def abx(validation_dir) -> pd.DataFrame:
    frame = pd.read_csv(validation_dir / "abx_england_gp_processed.csv", index_col=0)
    frame["month"] = pd.to_datetime(frame["date"], format="%d/%m/%Y").dt.to_period("M")
    return frame


def design(exclude=()) -> ITSDesign:
    return ITSDesign(
        interruptions=("2020-03", "2021-07"),
        first_post_time=1,
        seasonality="month",
        spring_festival=False,
        shocks=(),
        exclude=exclude,
    )


def test_the_published_intervention_columns_are_the_design_with_first_post_time_1(abx):
    X = design().matrix(pd.PeriodIndex(abx["month"]))
    for r_name in ("intervention1", "time_after_inter1", "intervention2", "time_after_inter2"):
        np.testing.assert_array_equal(X[TERMS[r_name]].to_numpy(), abx[r_name].to_numpy())
    np.testing.assert_array_equal(X["time"].to_numpy() + R_TIME_AT_INTERRUPTION, abx["time"].to_numpy())


@pytest.mark.parametrize("name, outcome, offset, exclude", MODELS)
def test_negbin_with_lagged_residual_reproduces_bryant_et_al(abx, validation_dir, name, outcome, offset, exclude):
    expected = pd.read_csv(validation_dir / "expected" / f"abx_{name}.csv", index_col=0)
    exposure = abx["Appointments"].to_numpy(float) if offset else np.ones(len(abx))
    res = SegmentedRegression(
        abx[outcome], time=pd.PeriodIndex(abx["month"]), design=design(exclude), family="negbin", exposure=exposure
    ).fit(cov_type="model", lagged_residual=True)
    assert res.fit_mask.sum() == len(abx) - len(exclude) - 1  # the first month has no lag
    assert res.converged and np.isinf(res.df_resid)
    assert set(res.params.index) == {TERMS[t] for t in expected.index}

    cov = res.cov.to_numpy()
    rows = []
    for r_name in expected.index:
        if r_name == "(Intercept)":
            gradient = np.zeros(len(res.params))
            gradient[res.params.index.get_loc("const")] = 1.0
            gradient[res.params.index.get_loc("time")] = -R_TIME_AT_INTERRUPTION
            c = linear(
                r_name, float(gradient @ res.params.to_numpy()), gradient, cov, df=np.inf, level=0.95, scale="log"
            )
        else:
            c = res.coefficient(TERMS[r_name])
        rows.append((np.exp(c.estimate), np.exp(c.ci_low), np.exp(c.ci_high)))
    ours = pd.DataFrame(rows, index=expected.index, columns=["exp(Est.)", "2.5%", "97.5%"])
    pd.testing.assert_frame_equal(ours, expected[["exp(Est.)", "2.5%", "97.5%"]], check_exact=False, rtol=1e-6)


def test_command_line_reproduces_the_all_antibiotics_model(validation_dir, capsys):
    """The published model through the command line: negative binomial, offset
    log(appointments), month effects, interruptions at time 27 (2020-03) and 43 (2021-07)
    counted from 1 in the first post month, lagged deviance residual. The intervention terms
    equal the authors' glm.nb output (the intercept differs only by the month reference)."""
    import json

    from analysis.cli import main

    expected = pd.read_csv(validation_dir / "expected" / "abx_all_antibiotics_appointments.csv", index_col=0)
    code = main(
        [
            "fit",
            str(validation_dir / "abx_england_gp_processed.csv"),
            "--outcome",
            "Item_all.antibiotics",
            "--offset",
            "Appointments",
            "--family",
            "negbin",
            "--intervention",
            "27",
            "--intervention",
            "43",
            "--first-post-time",
            "1",
            "--seasonality",
            "month",
            "--lagged-residual",
            "--json",
        ]
    )
    assert code == 0
    terms = {t["term"]: t for t in json.loads(capsys.readouterr().out)["terms"]}
    for ours, theirs in (
        ("level_change", "intervention1"),
        ("slope_change", "time_after_inter1"),
        ("level_change_2", "intervention2"),
        ("slope_change_2", "time_after_inter2"),
        ("lagged_residual", "negbinom_lagres"),
    ):
        assert terms[ours]["exp_estimate"] == pytest.approx(expected.loc[theirs, "exp(Est.)"], rel=1e-6)
        assert terms[ours]["exp_ci_low"] == pytest.approx(expected.loc[theirs, "2.5%"], rel=1e-6)
        assert terms[ours]["exp_ci_high"] == pytest.approx(expected.loc[theirs, "97.5%"], rel=1e-6)
