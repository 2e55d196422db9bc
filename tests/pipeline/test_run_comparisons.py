"""A run finds comparisons.csv and comparison_series.csv in the data directory and fits the
controlled ITS without being told; --comparisons overrides them; bad tables stop the run
before anything is fitted."""

import json

import pandas as pd
import pytest

from analysis.cli import main
from analysis.data.contract import sha256
from analysis.data.problems import DataValidationError
from analysis.data.synthetic import generate, write
from analysis.pipeline.run import run_evaluation

PROVINCES = ["340000", "540000", "650000"]
CMI_SERIES = "28 in hospitals outside the first wave"
CONTROLLED = ("controlled_effects", "controlled_national", "controlled_failures")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("comparisons") / "data"
    write(generate(8, provinces=PROVINCES, indicators=[11, 12, 28]), folder)
    return folder


def _quiet_run(data, out, **options):
    return run_evaluation(
        data, out, tables_only=True, robustness=False, report_langs=(), echo=lambda *_: None, **options
    )


def test_a_default_run_uses_the_comparison_tables_of_the_data_directory(data_dir, tmp_path, capsys):
    out = tmp_path / "out"
    assert (
        main(
            [
                "run",
                "--data",
                str(data_dir),
                "--out",
                str(out),
                "--tables-only",
                "--workers",
                "1",
                "--no-robustness",
                "--report-langs",
                "none",
            ]
        )
        == 0
    )
    assert "controls:" in capsys.readouterr().out
    effects = pd.read_csv(out / "tables" / "controlled_effects.csv", dtype={"province": str})
    assert set(effects["province"]) == set(PROVINCES) and set(effects["comparison"]) == {CMI_SERIES}
    national = pd.read_csv(out / "tables" / "controlled_national.csv")
    assert national["measure"].tolist() == [
        "effect_end_absolute",
        "effect_end_relative",
        "level_change",
        "slope_change",
    ]
    assert (national["comparison"] == CMI_SERIES).all() and (national["k"] == 3).all()
    assert pd.read_csv(out / "tables" / "controlled_failures.csv").empty
    manifest = json.loads((out / "manifest.json").read_text())
    roles = {item["role"]: item for item in manifest["inputs"]}
    assert roles["comparisons"]["sha256"] == sha256(data_dir / "comparisons.csv") and roles["comparisons"]["rows"] == 1
    assert roles["comparison_series"]["sha256"] == sha256(data_dir / "comparison_series.csv")
    assert roles["comparison_series"]["rows"] == 3 * 84
    assert {f"tables/{name}.csv" for name in CONTROLLED} <= {o["path"] for o in manifest["outputs"]}


def test_the_comparisons_option_overrides_the_data_directory(data_dir, tmp_path):
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("indicator,comparison\n11,12\n")
    summary = _quiet_run(data_dir, tmp_path / "out", comparisons=pairs)
    national = pd.read_csv(summary.out_dir / "tables" / "controlled_national.csv")
    assert set(zip(national["indicator"], national["comparison"])) == {(11, 12)}
    manifest = json.loads((summary.out_dir / "manifest.json").read_text())
    assert [item["path"] for item in manifest["inputs"] if item["role"] == "comparisons"] == [str(pairs)]
    assert "controls" in summary.timings


def test_a_run_without_comparison_tables_writes_no_controlled_tables(tmp_path):
    write(generate(8, provinces=PROVINCES[:2], indicators=[11, 12]), tmp_path / "data")
    assert not (tmp_path / "data" / "comparisons.csv").exists()
    summary = _quiet_run(tmp_path / "data", tmp_path / "out")
    assert not any((summary.out_dir / "tables" / f"{name}.csv").exists() for name in CONTROLLED)
    assert "controls" not in summary.timings


def test_bad_comparison_tables_stop_the_run_before_any_fit(data_dir, tmp_path):
    bad = tmp_path / "data"
    write(generate(8, provinces=PROVINCES[:1], indicators=[28]), bad)
    text = (bad / "comparison_series.csv").read_text().replace(",mean,2020-03,", ",share,2020-03,")
    (bad / "comparison_series.csv").write_text(text)
    with pytest.raises(
        DataValidationError,
        match=r"comparison_series.csv, row 16, column 'measure' "
        r"\(value 'share'\).*\[unknown-measure\]",
    ):
        _quiet_run(bad, tmp_path / "out")
    assert not (tmp_path / "out" / "tables" / "effects.csv").exists()
    refused = pd.read_csv(tmp_path / "out" / "tables" / "comparison_quality.csv")
    assert refused[["row", "column", "rule"]].values.tolist() == [[16, "measure", "unknown-measure"]]
    write(generate(8, provinces=PROVINCES[:1], indicators=[28]), bad)
    (bad / "comparisons.csv").write_text("indicator,comparison\n28,CMI of the other hospitals\n")
    with pytest.raises(
        ValueError,
        match=r"comparisons.csv, row 2, column 'comparison': 'CMI of the other hospitals' "
        r"is neither an annex indicator number nor the name of a series in ",
    ):
        _quiet_run(bad, tmp_path / "out")


def test_warnings_about_the_comparison_series_are_reported_not_dropped(tmp_path):
    data = tmp_path / "data"
    write(generate(8, provinces=PROVINCES[:1], indicators=[28]), data)
    series = pd.read_csv(data / "comparison_series.csv", dtype=str, keep_default_na=False)
    series.assign(checked_by="Li").to_csv(data / "comparison_series.csv", index=False)
    said: list[str] = []
    summary = run_evaluation(
        data,
        tmp_path / "out",
        tables_only=True,
        robustness=False,
        report_langs=(),
        echo=lambda *args: said.append(" ".join(map(str, args))),
    )
    quality = pd.read_csv(summary.out_dir / "tables" / "comparison_quality.csv")
    assert quality[["column", "rule", "severity"]].values.tolist() == [["checked_by", "unknown-column", "warning"]]
    assert any(
        "1 warning(s)" in line and "comparison_series.csv" in line and "'checked_by'" in line for line in said
    ), said
    assert (summary.out_dir / "tables" / "controlled_national.csv").is_file()  # the run went on


@pytest.mark.e2e
def test_the_national_page_shows_the_controlled_effects_of_named_comparison_series(tmp_path):
    write(generate(8, provinces=PROVINCES[:1], indicators=[28]), tmp_path / "data")
    summary = run_evaluation(
        tmp_path / "data",
        tmp_path / "out",
        robustness=False,
        report_langs=(),
        lang="en",
        workers=1,
        echo=lambda *_: None,
    )
    assert all(status["ok"] for status in summary.render_status), summary.render_status
    page = (tmp_path / "out" / "national.html").read_text(encoding="utf-8")
    section = page.split("Controlled ITS against comparison series", 1)[1]
    assert CMI_SERIES in section and "This run wrote no tables/controlled_national.csv" not in section
