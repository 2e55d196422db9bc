"""Covariates in the segmented, controlled and forecast designs, and on the command line.

Reference: statsmodels' GLM on the same design matrix (the package's design columns plus
the covariate), estimates to 1e-6 and model-based SEs to 1e-5 relative; R's arima with
the covariate in ``xreg`` is the same regression, which the ARIMA tests check without it.
"""

import json

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from analysis.cli import main
from analysis.its import ITSDesign, SegmentedRegression
from analysis.its.estimability import ModelError
from analysis.its.forecast import ForecastITS

MONTHS = pd.period_range("2016-01", periods=84, freq="M")
DESIGN = ITSDesign(interruption="2021-01", seasonality="none")


def _data(seed=0, theta=None):
    rng = np.random.default_rng(seed)
    X = DESIGN.matrix(MONTHS)
    beds = 1000 + np.cumsum(rng.normal(0, 5, 84))
    temp = 15 + 10 * np.sin(2 * np.pi * np.arange(84) / 12) + rng.normal(0, 1, 84)
    eta = np.log(0.02) + 0.002 * X["time"] - 0.15 * X["level_change"] + 0.0005 * (beds - 1000) + 0.01 * temp
    exposure = rng.integers(20000, 30000, 84).astype(float)
    mean = exposure * np.exp(eta)
    counts = rng.poisson(mean if theta is None else mean * rng.gamma(theta, 1 / theta, 84)).astype(float)
    trials = exposure.copy()
    return X, pd.DataFrame({"beds": beds, "temp": temp}), counts, exposure, trials


@pytest.mark.parametrize("family", ["poisson", "binomial", "gaussian", "negbin"])
def test_covariates_match_statsmodels_glm(family):
    X, cov, counts, exposure, trials = _data(theta=50.0 if family == "negbin" else None)
    kwargs = (
        {"exposure": exposure}
        if family in ("poisson", "negbin")
        else {"trials": trials}
        if family == "binomial"
        else {}
    )
    y = counts if family != "gaussian" else counts / exposure * 1000
    res = SegmentedRegression(y, time=MONTHS, design=DESIGN, family=family, covariates=cov, **kwargs).fit(
        cov_type="model"
    )
    assert list(res.params.index[-2:]) == ["beds", "temp"]
    design = pd.concat([X, cov.set_axis(X.index)], axis=1).to_numpy()
    if family == "binomial":
        ref = sm.GLM(np.c_[y, trials - y], design, family=sm.families.Binomial()).fit(tol=1e-12)
    elif family == "gaussian":
        ref = sm.OLS(y, design).fit()
    else:
        fam = (
            sm.families.Poisson()
            if family == "poisson"
            else sm.families.NegativeBinomial(alpha=1 / res.cov_details["theta"])
        )
        ref = sm.GLM(y, design, family=fam, offset=np.log(exposure)).fit(tol=1e-12)
    np.testing.assert_allclose(res.params.to_numpy(), ref.params, rtol=1e-6, atol=1e-10)
    np.testing.assert_allclose(res.std_errors.to_numpy(), ref.bse, rtol=1e-5)


def test_covariates_adjust_the_level_change_for_a_confounder_with_known_truth():
    """A confounder that steps up with the interruption biases the unadjusted level change;
    adjusting for it recovers the true -0.15 (simulation, 200 series)."""
    rng = np.random.default_rng(5)
    X = DESIGN.matrix(MONTHS)
    adjusted, unadjusted = [], []
    for _ in range(200):
        confounder = 2.0 * X["level_change"].to_numpy() + rng.normal(0, 1, 84)
        eta = np.log(0.02) + 0.002 * X["time"] - 0.15 * X["level_change"] + 0.05 * confounder
        y = rng.poisson(20000 * np.exp(eta)).astype(float)
        model = dict(time=MONTHS, design=DESIGN, family="poisson", exposure=np.full(84, 20000.0))
        adjusted.append(
            SegmentedRegression(y, covariates=pd.DataFrame({"c": confounder}), **model)
            .fit(cov_type="model")
            .params["level_change"]
        )
        unadjusted.append(SegmentedRegression(y, **model).fit(cov_type="model").params["level_change"])
    assert np.mean(adjusted) == pytest.approx(-0.15, abs=0.005)
    assert np.mean(unadjusted) == pytest.approx(-0.05, abs=0.01)


def test_covariates_in_the_controlled_design_and_the_arima_errors():
    X, cov, counts, exposure, _ = _data()
    group = np.r_[np.ones(84), np.zeros(84)]
    time = MONTHS.append(MONTHS)
    y = np.r_[counts, counts * 0.9].round()
    stacked = pd.concat([cov, cov * 1.01], ignore_index=True)
    res = SegmentedRegression(
        y,
        time=time,
        design=DESIGN,
        family="poisson",
        exposure=np.r_[exposure, exposure],
        group=group,
        covariates=stacked,
    ).fit(cov_type="model")
    assert {"beds", "temp", "group_level_change"} <= set(res.params.index)
    rate = counts / exposure * 1000
    arima = SegmentedRegression(rate, time=MONTHS, design=DESIGN, covariates=cov).fit(errors="arima", order=(1, 0, 0))
    assert {"beds", "temp"} <= set(arima.params.index) and np.all(np.isfinite(arima.std_errors))


def test_forecast_design_takes_the_same_covariates():
    _, cov, counts, exposure, _ = _data()
    res = ForecastITS(
        counts,
        time=MONTHS,
        interruption="2021-01",
        family="poisson",
        exposure=exposure,
        seasonality="none",
        covariates=cov,
    ).fit()
    assert np.isfinite(res.average_effect().estimate)


def test_bad_covariates_are_refused_naming_the_column_and_rows():
    _, cov, counts, exposure, _ = _data()
    model = dict(time=MONTHS, design=DESIGN, family="poisson", exposure=exposure)
    broken = cov.astype(object)
    broken.loc[[3, 10], "beds"] = [None, "n/a"]
    with pytest.raises(ModelError, match=r"covariate 'beds' has missing or non-numeric values in rows \[4, 11\]"):
        SegmentedRegression(counts, covariates=broken, **model)
    with pytest.raises(ModelError, match="'flat' is constant"):
        SegmentedRegression(counts, covariates=cov.assign(flat=1.0), **model)
    with pytest.raises(ModelError, match=r"covariate\(s\) \['after'\] are collinear"):
        SegmentedRegression(
            counts, covariates=pd.DataFrame({"after": 2 * DESIGN.matrix(MONTHS)["level_change"].to_numpy()}), **model
        ).fit()


def _fit_events(tmp_path, frame, *covariates):
    """``fit`` on ``frame`` written as a CSV: events per catheter-day, interruption 2021-01."""
    path = tmp_path / "series.csv"
    frame.to_csv(path, index=False)
    args = ["fit", str(path), "--outcome", "events", "--time", "month", "--intervention", "2021-01"]
    return main(args + ["--offset", "days"] + [a for c in covariates for a in ("--covariate", c)])


def test_fit_command_with_covariates_matches_the_api(tmp_path, capsys):
    _, cov, counts, exposure, _ = _data()
    path = tmp_path / "series.csv"
    pd.DataFrame({"month": MONTHS.astype(str), "events": counts, "days": exposure, **cov}).to_csv(path, index=False)
    code = main(
        [
            "fit",
            str(path),
            "--outcome",
            "events",
            "--time",
            "month",
            "--intervention",
            "2021-01",
            "--offset",
            "days",
            "--family",
            "poisson",
            "--errors",
            "independent",
            "--covariate",
            "beds",
            "--covariate",
            "temp",
            "--json",
        ]
    )
    assert code == 0
    terms = {t["term"]: t for t in json.loads(capsys.readouterr().out)["terms"]}
    api = SegmentedRegression(
        counts, time=MONTHS, design=DESIGN, family="poisson", exposure=exposure, covariates=cov
    ).fit(cov_type="model")
    for name in ("beds", "temp", "level_change"):
        assert terms[name]["estimate"] == pytest.approx(api.params[name], rel=1e-12)
        assert terms[name]["se"] == pytest.approx(api.std_errors[name], rel=1e-12)


def test_fit_command_refuses_bad_covariate_values_with_file_lines(tmp_path, capsys):
    _, cov, counts, exposure, _ = _data()
    frame = pd.DataFrame({"month": MONTHS.astype(str), "events": counts, "days": exposure, "beds": cov["beds"]})
    frame["beds"] = frame["beds"].astype(object)
    frame.loc[5, "beds"] = "?"
    code = _fit_events(tmp_path, frame, "beds")
    err = capsys.readouterr().err
    assert (
        code == 2 and "covariate 'beds' has missing or non-numeric values in rows [7]" in err and "Traceback" not in err
    )


@pytest.mark.parametrize(
    "option, message",
    [
        (["--arima-order", "2,1"], "has 3 numbers"),
        (["--arima-order", "a,1,0"], "whole numbers"),
        (["--seasonal-order", "0,1,1,0"], "period s of at least 2"),
        (["--errors", "newey-west", "--arima-order", "2,1,0"], "go with --errors arima"),
    ],
)
def test_fit_command_refuses_bad_arima_orders(tmp_path, capsys, option, message):
    _, _, counts, exposure, _ = _data()
    path = tmp_path / "series.csv"
    pd.DataFrame({"month": MONTHS.astype(str), "rate": counts / exposure}).to_csv(path, index=False)
    args = ["fit", str(path), "--outcome", "rate", "--time", "month", "--intervention", "2021-01"]
    if "--errors" not in option:
        args += ["--errors", "arima"]
    code = main(args + option)
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err


@pytest.mark.parametrize(
    "column, message",
    [
        ("flat", "'flat' is constant"),
        ("after", r"covariate(s) ['after'] are collinear"),
    ],
)
def test_fit_command_refuses_constant_and_collinear_covariates(tmp_path, capsys, column, message):
    _, _, counts, exposure, _ = _data()
    frame = pd.DataFrame(
        {
            "month": MONTHS.astype(str),
            "events": counts,
            "days": exposure,
            "flat": 3.0,
            "after": (MONTHS >= pd.Period("2021-01", "M")).astype(float) * 2,
        }
    )
    code = _fit_events(tmp_path, frame, column)
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err


def test_effects_outside_the_data_need_the_covariates_and_say_so():
    X, cov, counts, exposure, _ = _data()
    res = SegmentedRegression(
        counts, time=MONTHS, design=DESIGN, family="poisson", exposure=exposure, covariates=cov
    ).fit()
    inside, _ = res.effect_at("2022-09")
    assert np.isfinite(inside.estimate)
    with pytest.raises(ValueError, match=r"need the covariate\(s\) \['beds', 'temp'\]"):
        res.effect_at("2024-06")  # after the last month of the data
