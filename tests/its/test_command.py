"""The `fit` command: options, term names, JSON records and errors."""

import json

import numpy as np
import pandas as pd
import pytest

from analysis.cli import main
from analysis.its import ITSDesign, SegmentedRegression
from analysis.its.command import CommandError, FitOptions, fit_file


def series_frame(seed=0, n=48, start=25):
    rng = np.random.default_rng(seed)
    t = np.arange(1, n + 1)
    trials = rng.integers(400, 600, n)
    p = 1 / (1 + np.exp(-(-1 + 0.01 * t - 0.2 * (t >= start))))
    return pd.DataFrame(
        {
            "time": t,
            "events": rng.binomial(trials, p),
            "n": trials,
            "y": 5 + 0.1 * t - 2 * (t >= start) + rng.normal(0, 0.5, n),
        }
    )


def run_cli(tmp_path, frame, *args, capsys):
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False)
    code = main(["fit", str(path), *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_json_record_has_the_contract_fields_and_term_names(tmp_path, capsys):
    code, out, _ = run_cli(
        tmp_path,
        series_frame(),
        "--outcome",
        "events",
        "--trials",
        "n",
        "--intervention",
        "25",
        "--json",
        capsys=capsys,
    )
    assert code == 0
    rec = json.loads(out)
    assert rec["family"] == "quasibinomial" and rec["errors"] == "latent-ar1" and rec["n_obs"] == 48
    assert [t["term"] for t in rec["terms"]] == ["intercept", "pre_slope", "level_change", "slope_change"]
    level = rec["terms"][2]
    assert level["exp_estimate"] == pytest.approx(np.exp(level["estimate"]))
    assert set(level) >= {"estimate", "se", "ci_low", "ci_high", "p_value", "exp_ci_low", "exp_ci_high"}
    assert "dispersion" in rec


def test_quasibinomial_independent_dispersion_is_the_hand_computed_pearson_statistic():
    """statsmodels' two-column binomial with scale='X2' is known to return a wrong scale;
    the package computes the Pearson dispersion itself: sum((y - n p)^2 / (n p (1-p))) / (n - k)."""
    frame = series_frame(seed=4)
    rec = fit_file(frame, FitOptions(outcome="events", trials="n", interventions=("25",), errors="independent"))[0]
    design = ITSDesign(interruption=25)
    res = SegmentedRegression(
        frame["events"], time=frame["time"], design=design, family="binomial", trials=frame["n"]
    ).fit(cov_type="model")
    X = design.matrix(frame["time"].to_numpy()).to_numpy()
    p = 1 / (1 + np.exp(-(X @ res.params.to_numpy())))
    n = frame["n"].to_numpy()
    pearson = np.sum((frame["events"] - n * p) ** 2 / (n * p * (1 - p))) / (len(frame) - X.shape[1])
    assert rec["dispersion"] == pytest.approx(pearson, rel=1e-8)
    se = {t["term"]: t["se"] for t in rec["terms"]}
    assert se["level_change"] == pytest.approx(res.std_errors["level_change"] * np.sqrt(pearson), rel=1e-8)


def test_gaussian_default_and_several_interruptions(tmp_path, capsys):
    code, out, _ = run_cli(
        tmp_path,
        series_frame(),
        "--outcome",
        "y",
        "--intervention",
        "20",
        "--intervention",
        "35",
        "--errors",
        "ols",
        "--json",
        capsys=capsys,
    )
    rec = json.loads(out)
    assert code == 0 and rec["family"] == "gaussian"
    assert [t["term"] for t in rec["terms"]][2:] == ["level_change", "slope_change", "level_change_2", "slope_change_2"]
    assert "exp_estimate" not in rec["terms"][0]


def test_by_fits_each_group_and_carries_its_value(tmp_path, capsys):
    frame = pd.concat([series_frame(1).assign(unit="a"), series_frame(2).assign(unit="b")])
    code, out, _ = run_cli(
        tmp_path, frame, "--outcome", "y", "--intervention", "25", "--by", "unit", "--json", capsys=capsys
    )
    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [line["unit"] for line in lines] == ["a", "b"]


def test_controlled_its_reports_differences(tmp_path, capsys):
    frame = pd.concat(
        [series_frame(1).assign(unit="a"), series_frame(2).assign(unit="b"), series_frame(3).assign(unit="c")]
    )
    code, out, _ = run_cli(
        tmp_path,
        frame,
        "--outcome",
        "y",
        "--intervention",
        "25",
        "--group",
        "unit",
        "--treated",
        "a",
        "--errors",
        "newey-west",
        "--lags",
        "1",
        "--json",
        capsys=capsys,
    )
    terms = [t["term"] for t in json.loads(out)["terms"]]
    assert code == 0 and {"diff_level_change", "diff_slope_change"} <= set(terms)


def test_excluded_periods_are_dropped(tmp_path, capsys):
    code, out, _ = run_cli(
        tmp_path,
        series_frame(),
        "--outcome",
        "y",
        "--intervention",
        "25",
        "--exclude",
        "3",
        "4",
        "--json",
        capsys=capsys,
    )
    assert json.loads(out)["n_obs"] == 46


@pytest.mark.parametrize(
    "args, message",
    [
        (["--outcome", "nope", "--intervention", "25"], "no column 'nope'"),
        (["--outcome", "y", "--intervention", "47"], "at least 3"),
        (["--outcome", "y", "--intervention", "25", "--group", "time"], "--treated"),
        (["--outcome", "events", "--trials", "n", "--errors", "prais-winsten", "--intervention", "25"], "Gaussian"),
    ],
)
def test_errors_go_to_stderr_with_non_zero_exit(tmp_path, capsys, args, message):
    code, out, err = run_cli(tmp_path, series_frame(), *args, capsys=capsys)
    assert code != 0 and message in err and out == ""


def test_family_follows_the_options():
    assert FitOptions(outcome="y", interventions=("1",), offset="e").resolved_family() == "quasipoisson"
    assert FitOptions(outcome="y", interventions=("1",)).resolved_family() == "gaussian"
    assert FitOptions(outcome="y", interventions=("1",), lagged_residual=True).resolved_errors() == "independent"
    with pytest.raises(CommandError, match="not both"):
        FitOptions(outcome="y", interventions=("1",), offset="e", trials="n").resolved_family()


def test_gaussian_error_structures_and_forecast_design_run_from_the_command_line(tmp_path, capsys):
    for errors in ("prais-winsten", "reml-ar1", "arima"):
        code, out, err = run_cli(
            tmp_path,
            series_frame(),
            "--outcome",
            "y",
            "--intervention",
            "25",
            "--errors",
            errors,
            "--json",
            capsys=capsys,
        )
        rec = json.loads(out)
        assert code == 0 and rec["errors"] == errors, err
        assert [t["term"] for t in rec["terms"]] == ["intercept", "pre_slope", "level_change", "slope_change"]
    code, out, err = run_cli(
        tmp_path,
        series_frame(),
        "--outcome",
        "y",
        "--intervention",
        "25",
        "--design",
        "forecast",
        "--json",
        capsys=capsys,
    )
    rec = json.loads(out)
    assert code == 0 and [t["term"] for t in rec["terms"]] == [
        "mean_effect",
        "cumulative_effect",
        "relative_mean_effect",
    ]
    mean, cumulative = rec["terms"][0]["estimate"], rec["terms"][1]["estimate"]
    assert cumulative == pytest.approx(mean * 24)


def test_negbin_with_lagged_residual_uses_no_further_adjustment(tmp_path, capsys):
    frame = series_frame(seed=8)
    code, out, err = run_cli(
        tmp_path,
        frame,
        "--outcome",
        "events",
        "--offset",
        "n",
        "--family",
        "negbin",
        "--intervention",
        "25",
        "--lagged-residual",
        "--json",
        capsys=capsys,
    )
    rec = json.loads(out)
    assert code == 0 and rec["errors"] == "independent" and rec["n_obs"] == 47, err
    assert "lagged_residual" in [t["term"] for t in rec["terms"]]
