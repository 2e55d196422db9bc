import json

import pandas as pd
import pytest

from analysis.cli import main
from analysis.data.contract import sha256
from analysis.data.synthetic import generate, write
from analysis.synthesis.pooling import pool


def _quick_run(data, out, *extra):
    """``run --tables-only --no-robustness`` of ``data`` into ``out``, one worker; its exit status."""
    return main(
        ["run", "--data", str(data), "--out", str(out), "--tables-only", "--workers", "1", "--no-robustness", *extra]
    )


def _refit(data, capsys, province, *extra):
    """The JSON record of ``fit DATA --province PROVINCE --indicator 32``."""
    assert main(["fit", str(data), "--province", province, "--indicator", "32", "--json", *extra]) == 0
    return json.loads(capsys.readouterr().out)


def test_synth_writes_the_contract_files(tmp_path, capsys):
    assert main(["synth", "--out", str(tmp_path), "--seed", "5"]) == 0
    assert {p.name for p in tmp_path.iterdir()} >= {"panel.csv", "plan_dates.csv", "truth.csv", "truth_monthly.csv"}
    panel = pd.read_csv(tmp_path / "panel.csv")
    assert len(panel) == 32 * 31 * 84
    assert "rows" in capsys.readouterr().out


def test_run_tables_only_writes_tables_and_manifest(tmp_path, capsys):
    data = tmp_path / "data"
    write(generate(3, provinces=["340000", "110000"], indicators=[11, 31, 9]), data)
    out = tmp_path / "out"
    assert main(["run", "--data", str(data), "--out", str(out), "--tables-only", "--workers", "1"]) == 0
    effects = pd.read_csv(out / "tables" / "effects.csv", dtype={"province": str})
    assert set(effects["province"]) == {"340000", "110000"}
    assert set(effects["indicator"]) == {9, 11, 31}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["inputs"][0]["sha256"] == sha256(data / "panel.csv")
    assert manifest["parameters"]["washin"] == 3 and manifest["parameters"]["cov_type"] == "latent-ar1"
    assert manifest["code_revision"]["commit"]
    assert set(manifest["timings_seconds"]) >= {"read", "fit", "pool", "write"}
    assert (out / "tables" / "recovery_summary.csv").is_file()
    printed = capsys.readouterr().out
    assert "fit:" in printed and "recovery" in printed
    assert manifest["parameters"]["pooling_absolute_counts"] == "equal"
    assert manifest["parameters"]["bias_corrected_effects"] is False
    national = pd.read_csv(out / "tables" / "national_effects.csv").set_index(["indicator", "measure"])
    assert national.loc[(31, "effect_end_absolute"), "pooled_as"] == "random effects, equal weights"
    assert national.loc[(9, "effect_end_absolute"), "pooled_as"] == "random effects"  # a mean
    assert national.loc[(31, "effect_end_relative"), "pooled_as"] == "random effects"


def test_run_options_for_absolute_effects_reach_the_settings(tmp_path):
    data = tmp_path / "data"
    write(generate(3, provinces=["340000", "110000"], indicators=[31]), data)
    runs = {}
    for name, extra in (
        ("default", []),
        ("options", ["--absolute-counts", "inverse-variance", "--bias-corrected"]),
        ("relative", ["--absolute-counts", "relative"]),
    ):
        out = tmp_path / name
        assert _quick_run(data, out, *extra) == 0
        runs[name] = (
            json.loads((out / "manifest.json").read_text())["parameters"],
            pd.read_csv(out / "tables" / "effects.csv", dtype={"province": str}),
            pd.read_csv(out / "tables" / "national_effects.csv"),
        )
    # "relative" derives the national absolute effect; the event-time curves, which cannot,
    # pool absolute effects as the default does (the run used to stop there)
    national_relative = runs["relative"][2].set_index("measure")
    assert national_relative.loc["effect_end_absolute", "pooled_as"] == "relative x mean counterfactual"
    curves = {
        name: pd.read_csv(tmp_path / name / "tables" / "event_time_national.csv") for name in ("default", "relative")
    }
    pd.testing.assert_frame_equal(curves["relative"], curves["default"])
    parameters, effects, national = runs["options"]
    assert parameters["pooling_absolute_counts"] == "inverse-variance" and parameters["bias_corrected_effects"]
    assert set(national["pooled_as"]) == {"random effects", "sum of provinces"}
    default = runs["default"][1].set_index(["province", "measure"])["estimate"]
    corrected = effects.set_index(["province", "measure"])["estimate"]
    for province in ("340000", "110000"):
        assert corrected[(province, "effect_end_absolute")] != pytest.approx(default[(province, "effect_end_absolute")])
        assert corrected[(province, "effect_end_relative")] == pytest.approx(default[(province, "effect_end_relative")])


def test_run_refuses_invalid_data_with_located_errors(tmp_path, capsys):
    bad = tmp_path / "panel.csv"
    bad.write_text("province,indicator,month,numerator,denominator\n火星,32,2023-01,3,10\n", encoding="utf-8")
    assert main(["run", "--data", str(bad), "--out", str(tmp_path / "out"), "--tables-only"]) == 2
    err = capsys.readouterr().err
    assert f"{bad}, row 2, column 'province'" in err and "unknown-province" in err


def test_pool_json_matches_the_library(tmp_path, capsys):
    frame = pd.DataFrame(
        {
            "g": ["a"] * 4 + ["b"] * 3,
            "est": [0.1, 0.3, -0.2, 0.4, 1.0, 1.2, 0.7],
            "se": [0.1, 0.2, 0.15, 0.3, 0.2, 0.25, 0.3],
        }
    )
    path = tmp_path / "est.csv"
    frame.to_csv(path, index=False)
    assert main(["pool", str(path), "--estimate", "est", "--se", "se", "--by", "g", "--hksj", "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["g"] for line in lines] == ["a", "b"]
    for key in ("estimate", "se", "ci_low", "ci_high", "p_value", "tau2", "i2", "pi_low", "pi_high", "k"):
        assert key in lines[0]
    ref = pool(frame["est"][:4], frame["se"][:4], hksj=True)
    assert lines[0]["estimate"] == pytest.approx(ref.estimate) and lines[0]["k"] == 4


def test_pool_options_equal_weights_and_floor_reach_the_library(tmp_path, capsys):
    frame = pd.DataFrame({"est": [0.1, 0.3, -0.2, 0.4, 1.0], "se": [0.1, 0.2, 0.15, 0.3, 0.2]})
    path = tmp_path / "est.csv"
    frame.to_csv(path, index=False)
    assert (
        main(["pool", str(path), "--estimate", "est", "--se", "se", "--hksj-floor", "--weights", "equal", "--json"])
        == 0
    )
    line = json.loads(capsys.readouterr().out)
    ref = pool(frame["est"], frame["se"], hksj=True, hksj_floor=True, weights="equal")
    assert line["weights"] == "equal" and line["hksj"] is True
    assert (line["estimate"], line["se"]) == pytest.approx((ref.estimate, ref.se))
    assert line["estimate"] == pytest.approx(frame["est"].mean())


def test_run_reports_a_bad_comparisons_table_without_a_traceback(tmp_path, capsys):
    data = tmp_path / "data"
    write(generate(8, provinces=["340000"], indicators=[28]), data)
    (data / "comparisons.csv").write_text("treated,comparison\n28,14\n")
    assert main(["run", "--data", str(data), "--out", str(tmp_path / "out"), "--tables-only", "--workers", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err
    assert "comparisons.csv: missing column(s) ['indicator']" in err


def test_fit_province_indicator_reproduces_the_runs_rows(tmp_path, capsys):
    """``fit DATA --province 安徽 --indicator 32`` gives the run's effects for that series
    (same code path: estimates and SEs equal to 1e-6 relative), with run options too."""
    data = tmp_path / "data"
    write(generate(3, provinces=["340000", "110000"], indicators=[32, 11]), data)
    for extra in ([], ["--washin", "6", "--cov-type", "newey-west"]):
        out = tmp_path / ("run" + "".join(extra))
        assert _quick_run(data, out, *extra) == 0
        capsys.readouterr()
        effects = pd.read_csv(out / "tables" / "effects.csv", dtype={"province": str})
        run_rows = effects[(effects.province == "340000") & (effects.indicator == 32)].set_index("measure")
        record = _refit(data, capsys, "安徽", *extra)
        assert record["province"] == "340000" and record["indicator"] == 32
        terms = {t["term"]: t for t in record["terms"]}
        assert (
            set(terms)
            == {"level_change", "slope_change", "effect_end_absolute", "effect_end_relative", "effect_cumulative"}
            == set(run_rows.index)
        )
        for measure, row in run_rows.iterrows():
            for column in ("estimate", "se", "ci_low", "ci_high", "p_value"):
                assert terms[measure][column] == pytest.approx(row[column], rel=1e-6), (extra, measure, column)


def test_fit_province_refuses_unknown_province_and_mixed_options(tmp_path, capsys):
    data = tmp_path / "data"
    write(generate(3, provinces=["340000"], indicators=[32]), data)
    assert main(["fit", str(data), "--province", "Atlantis", "--indicator", "32"]) == 2
    assert "unknown province 'Atlantis'" in capsys.readouterr().err
    assert main(["fit", str(data), "--province", "北京", "--indicator", "32"]) == 2
    assert "provinces present: ['340000']" in capsys.readouterr().err
    assert main(["fit", str(data), "--province", "安徽", "--indicator", "32", "--outcome", "x"]) == 2
    assert "--outcome is an option for plain files" in capsys.readouterr().err


def test_run_adjusts_for_covariates_from_the_side_table(tmp_path, capsys):
    """covariates.csv beside the panel: the run's model for each series gains the covariate
    (a row without indicator applies to all; an indicator's own row takes precedence), the
    refit command agrees with the run, and the manifest records the file."""
    data = tmp_path / "data"
    generated = generate(3, provinces=["340000", "110000"], indicators=[32, 11])
    write(generated, data)
    months = sorted(generated.panel["month"].unique())
    rng = __import__("numpy").random.default_rng(0)
    rows = [
        {"province": p, "month": m, "indicator": "", "beds": 1000 + 5 * i + rng.normal(0, 3)}
        for p in ("340000", "110000")
        for i, m in enumerate(months)
    ]
    rows += [{"province": "340000", "month": m, "indicator": 11, "beds": 2000 + rng.normal(0, 3)} for m in months]
    pd.DataFrame(rows).to_csv(data / "covariates.csv", index=False)
    out = tmp_path / "out"
    assert _quick_run(data, out) == 0
    capsys.readouterr()
    effects = pd.read_csv(out / "tables" / "effects.csv", dtype={"province": str})
    run_rows = effects[(effects.province == "340000") & (effects.indicator == 32)].set_index("measure")
    terms = {t["term"]: t for t in _refit(data, capsys, "340000")["terms"]}
    assert terms["level_change"]["estimate"] == pytest.approx(run_rows.at["level_change", "estimate"], rel=1e-9)
    manifest = json.loads((out / "manifest.json").read_text())
    assert "covariates" in {entry["role"] for entry in manifest["inputs"]}
    # The covariate changes the fit (compared with a run without the table).
    (data / "covariates.csv").unlink()
    plain = {t["term"]: t for t in _refit(data, capsys, "340000")["terms"]}
    assert plain["level_change"]["estimate"] != pytest.approx(terms["level_change"]["estimate"], rel=1e-6)


def test_run_refuses_a_bad_covariates_table_with_located_errors(tmp_path, capsys):
    data = tmp_path / "data"
    write(generate(3, provinces=["340000"], indicators=[32]), data)
    (data / "covariates.csv").write_text(
        "province,month,beds\n安徽,2019-01,100\n安徽,2019-13,101\n火星,2019-02,x\n", encoding="utf-8"
    )
    assert _quick_run(data, tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert "covariates.csv" in err and "row 3" in err and "row 4" in err and "Traceback" not in err


def test_run_refuses_bad_settings_before_reading_the_data(tmp_path, capsys):
    assert main(["run", "--data", str(tmp_path), "--out", str(tmp_path / "out"), "--seasonality", "fourier:9"]) == 2
    err = capsys.readouterr().err
    assert "seasonality" in err and "Traceback" not in err
