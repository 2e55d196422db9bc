"""Controlled ITS against comparison series: a co-intervention shared by both series is
removed, the plan's own effect is recovered (simulation with known truth), and bad
comparison tables are refused with the file, row and fix."""

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from analysis.data.synthetic import generate
from analysis.evaluation.fit_panel import fit_panel
from analysis.synthesis.controls import controlled_effects, national_controlled, read_comparisons
from analysis.synthesis.national import national_effects
from tests.conftest import ar1

PROVINCES = ["110000", "320000", "340000", "420000", "440000", "510000", "610000", "650000"]
PLAN_LEVEL, CO_INTERVENTION = 0.10, 0.20  # on the logit scale


def _panel(seed: int) -> tuple[pd.DataFrame, dict[str, pd.Period]]:
    """Indicator 11 gets the plan's level change and a co-intervention step at the start;
    its comparison, indicator 12, gets only the co-intervention; both have AR(1) noise."""
    data = generate(seed, provinces=PROVINCES, indicators=[11, 12])
    starts = {r.province: pd.Period(r.start_month, "M") for r in data.plan_dates.itertuples()}
    rng = np.random.default_rng(seed)
    panel = data.panel.copy()
    for (province, number), rows in panel.groupby(["province", "indicator"]):
        months = pd.PeriodIndex(rows["month"], freq="M")
        after = (months >= starts[province]).astype(float)
        eta = (
            -0.5
            + 0.002 * np.arange(len(months))
            + CO_INTERVENTION * after
            + (PLAN_LEVEL * after if number == 11 else 0.0)
            + ar1(rng, len(months), 0.3, 0.03)
        )
        n = rows["denominator"].to_numpy(float)
        panel.loc[rows.index, "numerator"] = rng.binomial(n.astype(int), expit(eta))
    return panel, starts


def test_a_shared_co_intervention_is_removed_and_the_plan_effect_recovered():
    panel, starts = _panel(7)
    from analysis.evaluation.settings import EvaluationSettings

    settings = EvaluationSettings(washin=0)
    pairs = pd.DataFrame({"indicator": [11], "comparison": [12]})
    effects, failures = controlled_effects(panel, pairs, starts=starts, settings=settings)
    assert failures.empty and set(effects["province"]) == set(PROVINCES)
    controlled = national_controlled(effects, settings=settings).set_index("measure").loc["level_change"]
    assert controlled["ci_low"] <= PLAN_LEVEL <= controlled["ci_high"]
    # The single-series ITS attributes the co-intervention to the plan.
    single = national_effects(fit_panel(panel, starts=starts, settings=settings).effects)
    naive = single[(single["indicator"] == 11) & (single["measure"] == "level_change")].iloc[0]
    assert naive["ci_low"] > PLAN_LEVEL and naive["estimate"] == pytest.approx(PLAN_LEVEL + CO_INTERVENTION, abs=0.05)


@pytest.mark.slow
def test_controlled_national_intervals_cover_the_plan_effect():
    from analysis.evaluation.settings import EvaluationSettings

    settings = EvaluationSettings(washin=0)
    pairs = pd.DataFrame({"indicator": [11], "comparison": [12]})
    covered = []
    for seed in range(20):
        panel, starts = _panel(100 + seed)
        effects, _ = controlled_effects(panel, pairs, starts=starts, settings=settings)
        row = national_controlled(effects, settings=settings).set_index("measure").loc["level_change"]
        covered.append(row["ci_low"] <= PLAN_LEVEL <= row["ci_high"])
    # 20 replicates: at 95% nominal, 16 or fewer covered has probability below 2%.
    assert sum(covered) >= 17, covered


def test_each_province_pair_is_the_two_group_model_of_the_engine():
    panel, starts = _panel(3)
    pairs = pd.DataFrame({"indicator": [11], "comparison": [12]})
    effects, _ = controlled_effects(panel, pairs, starts=starts)
    from analysis.evaluation.settings import EvaluationSettings
    from analysis.its.model import SegmentedRegression

    settings = EvaluationSettings()
    code = PROVINCES[0]
    rows = panel[panel["province"] == code].sort_values(["indicator", "month"])
    t, c = rows[rows["indicator"] == 11], rows[rows["indicator"] == 12]
    months = pd.PeriodIndex(list(t["month"]) + list(c["month"]), freq="M")
    model = SegmentedRegression(
        np.r_[t["numerator"], c["numerator"]].astype(float),
        time=months,
        design=settings.design(starts[code]),
        family="binomial",
        trials=np.r_[t["denominator"], c["denominator"]].astype(float),
        group=np.r_[np.ones(len(t)), np.zeros(len(c))],
    )
    reference = model.fit(cov_type=settings.cov_type).coefficient("group_level_change")
    mine = effects[(effects["province"] == code) & (effects["measure"] == "level_change")].iloc[0]
    assert mine["estimate"] == pytest.approx(reference.estimate) and mine["se"] == pytest.approx(reference.se)


def test_a_missing_comparison_series_is_reported_and_the_others_go_on():
    panel, starts = _panel(4)
    panel = panel[~((panel["province"] == PROVINCES[1]) & (panel["indicator"] == 12))]
    effects, failures = controlled_effects(panel, pd.DataFrame({"indicator": [11], "comparison": [12]}), starts=starts)
    assert list(failures["province"]) == [PROVINCES[1]] and "no series for indicator 12" in failures["message"].iat[0]
    assert set(effects["province"]) == set(PROVINCES) - {PROVINCES[1]}


@pytest.mark.parametrize(
    "text,message",
    [
        ("indicator,control\n11,12\n", r"missing column\(s\) \['comparison'\]"),
        ("indicator,comparison\n11,11\n", r"row 2: indicator 11 is compared with itself"),
        ("indicator,comparison\n11,9\n", r"row 2: indicator 11 is a proportion and 9 a mean"),
        (
            "indicator,comparison\n11,12\n11,x\n",
            r"row 3, column 'comparison': 'x' is neither an annex indicator number "
            r"nor the name of a series",
        ),
        ("indicator,comparison\n1x,12\n", r"row 2, column 'indicator': '1x' is not an annex indicator number"),
        ("indicator,comparison\n11,99\n", r"row 2, column 'comparison': '99' is not an annex indicator number"),
    ],
)
def test_bad_comparison_tables_name_the_file_row_and_fix(tmp_path, text, message):
    path = tmp_path / "comparisons.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        read_comparisons(str(path))


def test_a_run_with_a_comparisons_table_writes_the_controlled_tables(tmp_path):
    import json

    from analysis.data.synthetic import write
    from analysis.pipeline.run import run_evaluation

    write(generate(2, provinces=PROVINCES[:3], indicators=[11, 12]), tmp_path / "data")
    (tmp_path / "pairs.csv").write_text("indicator,comparison\n11,12\n")
    run_evaluation(
        tmp_path / "data",
        tmp_path / "out",
        tables_only=True,
        robustness=False,
        report_langs=(),
        comparisons=tmp_path / "pairs.csv",
        echo=lambda *_: None,
    )
    national = pd.read_csv(tmp_path / "out" / "tables" / "controlled_national.csv")
    assert set(national["measure"]) == {"level_change", "slope_change", "effect_end_absolute", "effect_end_relative"}
    assert (national["k"] == 3).all() and (national["comparison"] == 12).all()
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert any(item["role"] == "comparisons" for item in manifest["inputs"])


# -- comparison series outside the annex ------------------------------------------------------

CMI_SERIES = "28 in hospitals outside the first wave"


def _series_table(data) -> pd.DataFrame:
    """The synthetic comparison series as :func:`read_comparison_series` returns them."""
    return data.comparison_series.assign(
        month=pd.PeriodIndex(data.comparison_series["month"], freq="M"),
        numerator=data.comparison_series["numerator"].astype(float),
        denominator=data.comparison_series["denominator"].astype(float),
    )


@pytest.mark.parametrize(
    "text,message",
    [
        (
            "indicator,comparison\n28,CMI elsewhere\n",
            r"row 2, column 'comparison': 'CMI elsewhere' is neither an annex "
            r"indicator number nor the name of a series in .*series found: "
            r".*'28 in hospitals outside the first wave'",
        ),
        (
            f"indicator,comparison\n14,{CMI_SERIES}\n",
            r"row 2: indicator 14 is a proportion and the comparison series "
            r"'28 in hospitals outside the first wave' a mean; a comparison "
            r"series must have the same measure",
        ),
        ("indicator,comparison\n28,14\n", r"row 2: indicator 28 is a mean and 14 a proportion"),
    ],
)
def test_comparisons_naming_unknown_or_mismatched_series_are_refused(tmp_path, text, message):
    data = generate(1, provinces=["340000"], indicators=[14, 28])
    (tmp_path / "comparisons.csv").write_text(text)
    with pytest.raises(ValueError, match=message):
        read_comparisons(tmp_path / "comparisons.csv", series=_series_table(data), series_file="comparison_series.csv")


def test_a_series_name_without_a_comparison_series_table_is_refused(tmp_path):
    (tmp_path / "comparisons.csv").write_text(f"indicator,comparison\n28,{CMI_SERIES}\n")
    with pytest.raises(ValueError, match=r"nor the name of a series in comparison_series.csv \(series found: none\)"):
        read_comparisons(tmp_path / "comparisons.csv")


def test_names_and_numbers_are_read_as_such(tmp_path):
    data = generate(1, provinces=["340000"], indicators=[28])
    (tmp_path / "comparisons.csv").write_text(f"indicator,comparison\n28,{CMI_SERIES}\n11,12\n")
    pairs = read_comparisons(tmp_path / "comparisons.csv", series=_series_table(data))
    assert pairs["indicator"].tolist() == [28, 11] and pairs["comparison"].tolist() == [CMI_SERIES, 12]


def test_a_province_without_its_comparison_series_is_reported_and_the_others_go_on():
    data = generate(4, provinces=PROVINCES[:3], indicators=[28])
    starts = {r.province: pd.Period(r.start_month, "M") for r in data.plan_dates.itertuples()}
    series = _series_table(data)
    series = series[series["province"] != PROVINCES[1]]
    effects, failures = controlled_effects(data.panel, data.comparisons, starts=starts, series=series)
    assert failures[["province", "comparison"]].values.tolist() == [[PROVINCES[1], CMI_SERIES]]
    assert f"province {PROVINCES[1]} has no comparison series '{CMI_SERIES}'" == failures["message"].iat[0]
    assert set(effects["province"]) == {PROVINCES[0], PROVINCES[2]} and (effects["comparison"] == CMI_SERIES).all()


def test_national_controlled_keeps_names_and_numbers_of_comparisons():
    data = generate(4, provinces=PROVINCES[:3], indicators=[11, 12, 28])
    starts = {r.province: pd.Period(r.start_month, "M") for r in data.plan_dates.itertuples()}
    pairs = pd.DataFrame({"indicator": [28, 11], "comparison": pd.Series([CMI_SERIES, 12], dtype=object)})
    effects, failures = controlled_effects(data.panel, pairs, starts=starts, series=_series_table(data))
    national = national_controlled(effects)
    assert failures.empty and national[["indicator", "comparison"]].drop_duplicates().values.tolist() == [
        [11, 12],
        [28, CMI_SERIES],
    ]


#: Seeds of the known-truth check of the synthetic comparison series.
TRUTH_SEEDS = range(100, 106)


def test_the_synthetic_comparison_series_remove_the_drg_step_of_indicator_28():
    """Indicator 28 (CMI) has a DRG/DIP step (+2% x U(0.5, 1.5)) larger than the plan's level
    change (+0.7% x heterogeneity): the single-series ITS credits the plan with part of it, the
    controlled ITS against the synthetic comparison series (same step, no plan) does not. The
    target is the mean of the provinces' true level changes (``truth.csv``)."""
    from analysis.data.contract import validate_panel

    errors, covered = [], []
    for seed in TRUTH_SEEDS:
        data = generate(seed, indicators=[28])
        starts = {r.province: pd.Period(r.start_month, "M") for r in data.plan_dates.itertuples()}
        panel = validate_panel(data.panel)
        effects, failures = controlled_effects(panel, data.comparisons, starts=starts, series=_series_table(data))
        assert failures.empty
        controlled = national_controlled(effects).set_index("measure").loc["level_change"]
        single = national_effects(fit_panel(panel, starts=starts).effects).set_index("measure").loc["level_change"]
        truth = data.truth["level_change"].mean()
        errors.append((controlled["estimate"] - truth, single["estimate"] - truth))
        covered.append(controlled["ci_low"] <= truth <= controlled["ci_high"])
    errors = np.array(errors)
    # Measured over seeds 100-139: bias +0.0005 controlled, +0.0081 single-series (truth about
    # 0.0055); the controlled interval covered the true mean in 40 of 40, the single one in 10.
    assert np.abs(errors[:, 0]).mean() < 0.5 * np.abs(errors[:, 1]).mean(), errors
    assert abs(errors[:, 0].mean()) < 0.003 and errors[:, 1].mean() > 0.005, errors
    # 6 seeds at 95%: 5 or more covered has probability 0.97.
    assert sum(covered) >= 5, covered
