"""Synthetic provincial panel with a known truth, for testing the ITS pipeline end to end.

The generator draws monthly counts for every province x quantitative indicator (annex 9-39)
from an explicit model, and returns the model itself (``truth``, ``truth_monthly``) next to
the data, so that an estimator's level change, slope change and end-of-plan effect can be
compared with the values that produced the data.

The model on the linear-predictor scale (logit for proportions, log for rates, identity in
display units for means) is::

    eta_t = a + b (t - t_ref) + season[month] + c_sf SF_t + covid_t + plan_t + drg_t
    plan_t = ramp_t (L + S (t - start)),  ramp_t = min(1, (t - start + 1) / W),  t >= start

with AR(1) noise ``u_t`` added before the counts are drawn (Binomial for proportions,
Poisson with the denominator as exposure for rates). ``t_ref`` is 2021-01, so ``a`` is the
level in the middle of the 2019-2022 baseline described in the calibration notes.

For each DRG/DIP-affected indicator (``drg`` in the specification: 14, 28, 38) the generator
also draws one *comparison series* per province: the same indicator in hospitals outside the
plan's first wave, with the treated series' counterfactual (same DRG/DIP step in the same
month and of the same size on the model scale, same seasonality and COVID shocks), a small
offset of baseline and trend, its own AR(1) noise and sampling, and no plan effect. They are
what a controlled ITS (:mod:`analysis.synthesis.controls`) needs to remove the co-intervention.

All magnitudes are ESTIMATES for realism (``/work/shared/domain/calibration.md`` §6-7), not
facts about China's hospitals; never report them as such.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.signal import lfilter
from scipy.special import expit, logit

from analysis import registry
from analysis.registry import timeline

__all__ = ["COMPARISON_COLUMNS", "COMPARISON_TRUTH_COLUMNS", "DRG_INDICATORS", "EVALUATION_MONTH", "REFERENCE_MONTH",
           "SyntheticData", "generate", "mean_plan_effect", "write"]

#: Centre of the secular trend: the middle of the 2019-2022 baseline in calibration.md.
REFERENCE_MONTH = pd.Period("2021-01", "M")
#: Month at which the end-of-plan effect is defined (last month of implementation).
EVALUATION_MONTH = timeline.IMPLEMENTATION_END
#: The cumulative effect starts this many months after the province's start, so that
#: the wash-in months (at most 3) are not counted as a full effect.
CUMULATIVE_LAG = 3

# ---------------------------------------------------------------------------------------
# Provinces: size, start of the plan, DRG/DIP reform
# ---------------------------------------------------------------------------------------

#: 2020 census population (millions). Xinjiang is shown without the XPCC (~3.2 million),
#: which reports as a separate unit.
_POPULATION_2020: dict[str, float] = {
    "110000": 21.89, "120000": 13.87, "130000": 74.61, "140000": 34.92, "150000": 24.05,
    "210000": 42.59, "220000": 24.07, "230000": 31.85, "310000": 24.87, "320000": 84.75,
    "330000": 64.57, "340000": 61.03, "350000": 41.54, "360000": 45.19, "370000": 101.53,
    "410000": 99.37, "420000": 57.75, "430000": 66.45, "440000": 126.01, "450000": 50.13,
    "460000": 10.08, "500000": 32.05, "510000": 83.67, "520000": 38.56, "530000": 47.21,
    "540000": 3.65, "610000": 39.53, "620000": 25.02, "630000": 5.92, "640000": 7.20,
    "650000": 22.65, "660000": 3.20,
}  # fmt: skip

#: Provinces whose own start month is known (Anhui's plan was reported on 2023-08-23).
_KNOWN_START: dict[str, str] = {"340000": "2023-08"}
#: Provincial plans were issued 2023-06..2023-10, mostly 2023-07..09 (calibration.md §7).
_START_MONTHS = tuple(pd.Period(m, "M") for m in ("2023-06", "2023-07", "2023-08", "2023-09", "2023-10"))
_START_PROBS = (0.15, 0.25, 0.25, 0.20, 0.15)
#: DRG/DIP actual payment began in >=40% / 30% / 30% of pooling areas in 2022 / 2023 / 2024
#: (calibration.md §5d); one step per province, year drawn with these weights.
_DRG_YEARS = (2022, 2023, 2024)
_DRG_YEAR_PROBS = (0.4, 0.3, 0.3)
#: Remote units where ambulance response times are 20-30 minutes (calibration.md §7).
_REMOTE = frozenset({"540000", "630000", "660000"})
_REMOTE_RESPONSE_OFFSET = 10.0

# ---------------------------------------------------------------------------------------
# Volumes (denominators)
# ---------------------------------------------------------------------------------------

#: Nationwide volume multipliers: first wave, the 2022 spring waves and the exit wave
#: (calibration.md §5b, §7); recovery by 2020-06.
_NATIONAL_DISRUPTION: dict[str, float] = {
    "2020-01": 0.85, "2020-02": 0.55, "2020-03": 0.75, "2020-04": 0.92, "2020-05": 0.97,
    "2022-04": 0.95, "2022-05": 0.95, "2022-12": 0.85, "2023-01": 0.95,
}  # fmt: skip
#: Regional lockdowns replace the national multiplier (denominators only, not eta).
_REGIONAL_DISRUPTION: dict[str, dict[str, float]] = {
    "420000": {"2020-02": 0.30, "2020-03": 0.40, "2020-04": 0.55, "2020-05": 0.85},  # Hubei
    "310000": {"2022-04": 0.50, "2022-05": 0.50},  # Shanghai
    "220000": {"2022-03": 0.70, "2022-04": 0.70},  # Jilin
}

#: Inpatient month-of-year pattern on the log scale (Chengdu seasonal index, calibration.md
#: §6: June dip, Q4 peak); the Spring Festival trough is modelled separately by SF days.
_INPATIENT_SEASON = np.array([-0.02, -0.01, 0.0, 0.0, -0.01, -0.03, -0.01, 0.0, 0.0, 0.02, 0.04, 0.05])


@dataclass(frozen=True)
class _VolumeKind:
    """How a kind of hospital activity responds to calendar and disruptions."""

    growth: float  # log growth per year
    sf_per_day: float  # log change per Spring Festival holiday day in the month
    disruption: float  # exponent applied to the COVID volume multipliers
    season: str  # month-of-year shape
    season_amp: float
    noise: float  # SD of extra month-to-month log noise (Poisson alone is far too smooth)


# SF month ~ 75-80% of adjacent months for inpatients (SEEN MoM -20.8%, -25.9%); elective
# surgery dips more (-30 to -40%); emergencies hardly at all. Elective work also collapsed
# more in COVID waves, hence the exponents above and below 1.
_KINDS: dict[str, _VolumeKind] = {
    "volume": _VolumeKind(np.log(1.04), np.log(0.78) / 7, 1.0, "inpatient", 1.0, 0.03),
    "elective": _VolumeKind(np.log(1.04), np.log(0.64) / 7, 1.5, "inpatient", 1.0, 0.03),
    "surgery": _VolumeKind(np.log(1.04), np.log(0.72) / 7, 1.25, "inpatient", 1.0, 0.03),
    "emergency": _VolumeKind(np.log(1.03), -0.005, 0.5, "winter", 0.06, 0.04),
    "outpatient": _VolumeKind(np.log(1.04), np.log(0.75) / 7, 1.0, "summer", 0.03, 0.03),
    "administrative": _VolumeKind(np.log(1.02), 0.0, 0.0, "none", 0.0, 0.02),
    "hospitals": _VolumeKind(np.log(1.01), 0.0, 0.0, "none", 0.0, 0.002),
}


@dataclass(frozen=True)
class _Pool:
    """A denominator shared by indicators (e.g. surgical patients for 30, 31 and 32)."""

    key: int  # stable id for the random stream
    national: float  # national monthly count in monitored hospitals at REFERENCE_MONTH
    kind: str


# Monitored-hospital counts, not all institutions: the quality-control systems sample
# hospitals, which is why rare outcomes (31, 32, 35) have only a few events a month in the
# smallest provinces. Magnitudes are ESTIMATES.
_POOLS: dict[str, _Pool] = {
    "emergency_calls": _Pool(1, 2_000_000, "emergency"),
    "cardiac_arrest_attempts": _Pool(2, 15_000, "emergency"),
    "stemi_patients": _Pool(3, 25_000, "emergency"),
    "stroke_within_6h": _Pool(4, 50_000, "emergency"),
    "hospitals": _Pool(5, 30_000, "hospitals"),
    "elective_operations": _Pool(6, 2_000_000, "elective"),
    "cancer_first_treatment": _Pool(7, 200_000, "volume"),
    "inpatients": _Pool(8, 2_500_000, "volume"),
    "pain_assessment_due": _Pool(9, 5_000_000, "volume"),
    "prescriptions": _Pool(10, 150_000_000, "outpatient"),
    "prescriptions_reviewed": _Pool(11, 130_000_000, "outpatient"),
    "iv_infusion_patients": _Pool(12, 1_500_000, "volume"),
    "critical_values": _Pool(13, 3_000_000, "volume"),
    "rehabilitation_eligible": _Pool(14, 800_000, "volume"),
    "eqa_items": _Pool(15, 60_000, "administrative"),
    "grade4_surgery": _Pool(16, 400_000, "elective"),
    "cancer_patients": _Pool(17, 300_000, "volume"),
    "discharges": _Pool(18, 10_000_000, "volume"),
    "tcm_discharges": _Pool(19, 2_000_000, "volume"),
    "icu_patients": _Pool(20, 300_000, "emergency"),
    "surgical_patients": _Pool(21, 500_000, "surgery"),
    "cancer_followed_up": _Pool(22, 100_000, "volume"),
    "catheter_days": _Pool(23, 1_500_000, "emergency"),
    "outpatient_records": _Pool(24, 100_000_000, "outpatient"),
    "front_pages_checked": _Pool(25, 500_000, "administrative"),
    "records_due": _Pool(26, 5_000_000, "volume"),
}
#: Hospitals are not proportional to population: small provinces have more per head.
_HOSPITAL_SIZE_EXPONENT = 0.75

# ---------------------------------------------------------------------------------------
# Indicators: the true model's national parameters
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Spec:
    """National parameters of one indicator; all on the eta scale unless stated.

    ``level`` is on the natural scale (probability, events per unit of exposure, or display
    units for means) at REFERENCE_MONTH. ``trend``, ``slope_change`` are per year;
    ``level_change`` and ``slope_change`` are magnitudes in the direction of improvement.
    ``noise_sd`` is the marginal (stationary) SD of the AR(1) noise. ``covid`` lists the
    shocks in the five months of ``timeline.COVID_SHOCK_MONTHS``. ``drg`` is the centre of the
    DRG/DIP step (0 when the indicator is not affected).
    """

    level: float
    trend: float
    between_sd: float
    level_change: float
    slope_change: float
    noise_sd: float
    pool: str
    season_amp: float = 0.0
    season: str = "none"
    sf: float = 0.0
    covid: tuple[float, float, float, float, float] = (0.0, 0.0, 0.0, 0.0, 0.0)
    drg: float = 0.0


# Conversions used below (comments give the display-scale meaning): on the logit scale a
# change of d pp at level p is about d / (p (1 - p)); for rare events logit ~ log, so a
# relative change r is log(1 + r). Between-province SDs near a ceiling are set directly on
# the logit scale, because the delta method overstates them there.
_SPECS: dict[int, _Spec] = {
    # 9 response time (min): 15, -0.3/yr, SD 3; plan -0.7 min level, -0.25 min/yr slope.
    9: _Spec(15.0, -0.30, 3.0, 0.70, 0.25, 0.60, "emergency_calls", 0.4, "winter", 0.05,
             (1.0, 3.0, 1.0, 4.0, 1.5)),
    # 10 cardiac arrest ROSC 30%, +1 pp/yr, SD 6 pp; plan +1.5 pp, +0.5 pp/yr; winter worse.
    10: _Spec(0.30, 0.048, 0.29, 0.07, 0.024, 0.08, "cardiac_arrest_attempts", -0.05, "winter",
              0.0, (0.0, -0.15, -0.05, -0.30, -0.15)),
    # 11 STEMI reperfusion 60%, +2 pp/yr, SD 8 pp; plan +3 pp, +1 pp/yr (2020 collapse).
    11: _Spec(0.60, 0.083, 0.33, 0.125, 0.042, 0.05, "stemi_patients",
              covid=(-0.10, -0.50, -0.20, -0.30, -0.10)),
    # 12 stroke reperfusion 30%, +2 pp/yr, SD 7 pp; plan +2 pp, +1.2 pp/yr.
    12: _Spec(0.30, 0.095, 0.33, 0.10, 0.06, 0.05, "stroke_within_6h",
              covid=(-0.10, -0.40, -0.15, -0.25, -0.10)),
    # 13 hospitals with day care 35% (ASSUMED), +4 pp/yr.
    13: _Spec(0.35, 0.176, 0.50, 0.12, 0.08, 0.03, "hospitals"),
    # 14 day surgery share 15.5% (13 -> 18 over 2019-22), +1.7 pp/yr, SD 5.5 pp; plan +1 pp,
    # +1 pp/yr; DRG/DIP +0.5 pp; the remaining SF-month operations are less often day cases.
    14: _Spec(0.155, 0.13, 0.42, 0.07, 0.06, 0.05, "elective_operations", 0.03, "summer",
              -0.015, (0.0, -0.30, -0.10, -0.15, -0.05), drg=0.035),
    # 15-25, 27, 36, 39: process measures not in calibration.md; levels ASSUMED.
    15: _Spec(0.70, 0.143, 0.40, 0.18, 0.09, 0.04, "cancer_first_treatment"),
    16: _Spec(0.55, 0.160, 0.50, 0.12, 0.08, 0.05, "inpatients"),
    17: _Spec(0.75, 0.107, 0.40, 0.12, 0.06, 0.04, "pain_assessment_due"),
    # 18 prescription review 90% in 2021 (~87% in 2019), +1.4 pp/yr; ceiling -> logit.
    18: _Spec(0.90, 0.150, 0.40, 0.30, 0.12, 0.05, "prescriptions"),
    19: _Spec(0.92, 0.136, 0.40, 0.20, 0.08, 0.04, "prescriptions_reviewed"),
    20: _Spec(0.80, 0.094, 0.40, 0.15, 0.08, 0.04, "iv_infusion_patients"),
    21: _Spec(0.93, 0.154, 0.40, 0.20, 0.10, 0.05, "critical_values"),
    22: _Spec(0.35, 0.088, 0.50, 0.12, 0.08, 0.05, "rehabilitation_eligible"),
    23: _Spec(0.94, 0.089, 0.35, 0.15, 0.06, 0.06, "eqa_items"),
    24: _Spec(0.60, 0.125, 0.45, 0.15, 0.08, 0.05, "grade4_surgery"),
    25: _Spec(0.65, 0.088, 0.45, 0.12, 0.07, 0.05, "cancer_patients"),
    # 26 adverse-event reports 1.5 per 100 discharges, +0.1/yr, SD 0.6; plan ~+6%, +3%/yr
    # (about +0.3 per 100 at 2025-09); year-end reporting pushes (Q4).
    26: _Spec(0.015, 0.065, 0.40, 0.06, 0.03, 0.08, "discharges", 0.05, "q4",
              covid=(0.0, -0.20, -0.10, -0.15, -0.05)),
    27: _Spec(0.55, 0.040, 0.40, 0.08, 0.04, 0.04, "tcm_discharges"),
    # 28 CMI 1.00, +1%/yr, SD 0.08; plan +0.7%, +0.3%/yr; DRG/DIP step +1-3%; sicker case
    # mix when elective work stops (SF, COVID).
    28: _Spec(1.00, 0.010, 0.08, 0.007, 0.003, 0.015, "discharges", 0.01, "winter", 0.002,
              (0.02, 0.05, 0.02, 0.03, 0.02), drg=0.02),
    # 29 ICU mortality 10%, -1%/yr, SD 2.5 pp; plan -0.4 pp, -2%/yr; winter +8%; exit wave
    # +48% (2022-12) and +30% (2023-01) relative.
    29: _Spec(0.10, -0.011, 0.28, 0.045, 0.022, 0.06, "icu_patients", 0.08, "winter", 0.01,
              (0.05, 0.15, 0.05, 0.45, 0.30)),
    # 30 surgical complications 0.9%, -2%/yr, SD 0.3 pp; plan -7%, -3%/yr.
    30: _Spec(0.009, -0.020, 0.33, 0.07, 0.03, 0.05, "surgical_patients", 0.02, "winter", 0.005,
              (0.0, 0.05, 0.0, 0.10, 0.05)),
    # 31 unplanned return to OR 2.5 permille, flat (SEEN "no clear improvement"); -5%, -5%/yr.
    31: _Spec(0.0025, 0.0, 0.32, 0.05, 0.05, 0.06, "surgical_patients",
              covid=(0.0, 0.0, 0.0, 0.05, 0.0)),
    # 32 perioperative mortality 2 permille, -3%/yr, CV 30%; plan -7%, -2%/yr; exit wave +57%.
    32: _Spec(0.0020, -0.030, 0.30, 0.07, 0.02, 0.06, "surgical_patients", 0.08, "winter",
              0.015, (0.05, 0.10, 0.05, 0.45, 0.30)),
    # 33 cancer survival time (months, ASSUMED 40), +0.6/yr; plan +0.6, +0.4/yr.
    33: _Spec(40.0, 0.60, 6.0, 0.60, 0.40, 1.2, "cancer_followed_up"),
    # 34 CRBSI 0.9 per 1000 catheter-days, -5%/yr, SD 0.3; plan -11%, -4%/yr.
    34: _Spec(0.0009, -0.051, 0.33, 0.12, 0.04, 0.06, "catheter_days", 0.03, "winter",
              covid=(0.0, 0.05, 0.0, 0.25, 0.15)),
    # 35 pressure injury 0.025%, -3%/yr, SD 0.01 pp; plan -7%, -3%/yr.
    35: _Spec(0.00025, -0.030, 0.40, 0.07, 0.03, 0.08, "inpatients", 0.05, "winter",
              covid=(0.0, 0.05, 0.0, 0.25, 0.15)),
    36: _Spec(0.75, 0.210, 0.60, 0.15, 0.10, 0.04, "outpatient_records"),
    # 37 structured records 30%, +5 pp/yr (logit-linear = S-curve), SD 15 pp; plan +5 pp.
    37: _Spec(0.30, 0.240, 0.71, 0.20, 0.10, 0.05, "outpatient_records"),
    # 38 coding accuracy 90%, +0.5 pp/yr, SD 3 pp; plan +1.5 pp; DRG/DIP +1 pp.
    38: _Spec(0.90, 0.056, 0.33, 0.18, 0.05, 0.04, "front_pages_checked", drg=0.11),
    39: _Spec(0.88, 0.095, 0.40, 0.15, 0.08, 0.04, "records_due"),
}  # fmt: skip

#: Province-specific pre-trends vary by half the national trend plus a floor, so flat
#: national trends (31) still differ between provinces.
_TREND_SD_FRACTION = 0.5
_TREND_SD_FLOOR = 0.02  # per year on the logit/log scale; for means 0.5% of the level
#: Heterogeneity of the plan effect: LogNormal(0, 0.5) in total, split into a province
#: component (a province that implements well does so across indicators) and a series one.
_EFFECT_SD_PROVINCE = 0.3
_EFFECT_SD_SERIES = 0.4
_P_ZERO = 0.15
_P_WRONG = 0.08
#: Indicators that carry the DRG/DIP payment-reform step when co-interventions are on.
DRG_INDICATORS: tuple[int, ...] = tuple(sorted(n for n, spec in _SPECS.items() if spec.drg != 0.0))


def mean_plan_effect(number: int) -> tuple[float, float]:
    """Mean level change and slope change (per month) of the plan over the generator's
    provinces and series, on the model's link scale (display units for means).

    A series' plan effect is ``d * h * (L, S / 12)`` with ``(L, S)`` the indicator's national
    level change and yearly slope change in the direction of improvement, ``d`` equal to 0
    (probability 0.15), to minus the improvement sign (0.08) or to the sign (the rest), and
    ``h = exp(0.3 z_province + 0.4 z_series)`` with independent standard normal ``z``. Hence
    the mean is ``sign * (L, S / 12) * (1 - 0.15 - 2 * 0.08) * exp((0.3^2 + 0.4^2) / 2)``.

    Examples
    --------
    >>> [round(value, 4) for value in mean_plan_effect(9)]
    [-0.5473, -0.0163]
    """
    spec = _SPECS[int(number)]
    scale = registry.get_indicator(int(number)).improvement_sign() * (1 - _P_ZERO - 2 * _P_WRONG) * np.exp(
        (_EFFECT_SD_PROVINCE**2 + _EFFECT_SD_SERIES**2) / 2)
    return float(scale * spec.level_change), float(scale * spec.slope_change / 12)


#: Provinces differ in how hard the COVID waves hit (LogNormal SD on the shock).
_COVID_SD = 0.25
_PHI_RANGE = (0.3, 0.6)
#: Comparison series (hospitals outside the plan's first wave): their share of the pool's
#: volume, and how far their baseline and pre-trend stray from the treated series', as a
#: fraction of the between-province SDs.
_COMPARISON_NAME = "{number} in hospitals outside the first wave"
_COMPARISON_VOLUME_SHARE = 0.5
_COMPARISON_OFFSET_FRACTION = 0.25
#: Random-stream keys of the comparison series and of their denominators (new keys, so
#: that every other stream, and so every other table, is unchanged).
_COMPARISON_KEY = 2000
_COMPARISON_POOL_KEY = 3000
COMPARISON_COLUMNS = ["province", "series", "measure", "month", "numerator", "denominator", "value"]
COMPARISON_TRUTH_COLUMNS = ["province", "series", "indicator", "measure", "level_change", "slope_change", "phi",
                            "sigma", "baseline_eta", "pre_trend", "drg_month", "drg_step"]


@dataclass(frozen=True)
class SyntheticData:
    """A synthetic panel in the data contract, with the model that generated it.

    Attributes
    ----------
    panel : pandas.DataFrame
        The data contract: ``province`` (GB/T code), ``indicator`` (annex number), ``month``
        ('YYYY-MM'), ``numerator`` and ``denominator`` (nullable Int64) and ``value`` (float,
        the monthly mean for ``mean`` indicators, NaN otherwise).
    plan_dates : pandas.DataFrame
        ``province`` and ``start_month`` ('YYYY-MM'): each province's own start of the plan.
    truth : pandas.DataFrame
        One row per province x indicator: plan parameters (``level_change``, ``slope_change``
        on the eta scale, per month), noise (``phi``, ``sigma``), flags and the true
        end-of-plan effects at 2025-09.
    truth_monthly : pandas.DataFrame
        One row per province x indicator x month: noise-free linear predictor with and
        without the plan, the same in display units, and the plan and DRG/DIP terms.
    seed : int
        The seed that reproduces all the tables.
    comparison_series : pandas.DataFrame
        The comparison series outside the annex, in the format of ``comparison_series.csv``
        (:mod:`analysis.data.comparison_series`): ``province``, ``series``, ``measure``,
        ``month``, ``numerator``, ``denominator``, ``value``. Empty when no DRG/DIP-affected
        indicator is generated.
    comparisons : pandas.DataFrame
        ``indicator``, ``comparison``: each affected indicator and its comparison series.
    comparison_truth : pandas.DataFrame
        One row per province x comparison series: ``indicator`` (the series it mirrors),
        ``level_change`` and ``slope_change`` (0: no plan effect), ``phi``, ``sigma``,
        ``baseline_eta``, ``pre_trend``, ``drg_month`` and ``drg_step`` (those of the
        treated series).
    """

    panel: pd.DataFrame
    plan_dates: pd.DataFrame
    truth: pd.DataFrame
    truth_monthly: pd.DataFrame
    seed: int
    comparison_series: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=COMPARISON_COLUMNS))
    comparisons: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["indicator", "comparison"]))
    comparison_truth: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=COMPARISON_TRUTH_COLUMNS))


# ---------------------------------------------------------------------------------------
# Random streams
# ---------------------------------------------------------------------------------------


def _stream(seed: int, province_index: int, key: int) -> np.random.Generator:
    """Child generator for one (province, key); keys: 0 province, 9-39 series, 1000+ pools,
    2000+ comparison series, 3000+ their denominators (2000 + annex number, 3000 + annex number).

    Keyed streams make every series independent of which other provinces or indicators
    are generated, so a small test panel reproduces the full panel's values exactly.
    """
    return np.random.default_rng(np.random.SeedSequence([seed, province_index, key]))


@dataclass(frozen=True)
class _ProvinceDraws:
    start: pd.Period
    washin: int
    drg_month: pd.Period
    access: float
    effect_z: float


def _province_draws(seed: int, index: int, code: str) -> _ProvinceDraws:
    rng = _stream(seed, index, 0)
    start = _START_MONTHS[rng.choice(len(_START_MONTHS), p=_START_PROBS)]
    washin = int(rng.integers(1, 4))
    drg_year = _DRG_YEARS[rng.choice(len(_DRG_YEARS), p=_DRG_YEAR_PROBS)]
    drg_month = pd.Period(year=drg_year, month=int(rng.integers(1, 13)), freq="M")
    access = float(rng.uniform(0.85, 1.15))
    effect_z = float(rng.standard_normal())
    if code in _KNOWN_START:
        start = pd.Period(_KNOWN_START[code], "M")
    return _ProvinceDraws(start, washin, drg_month, access, effect_z)


# ---------------------------------------------------------------------------------------
# Calendar
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Calendar:
    months: pd.PeriodIndex
    t: np.ndarray  # months since REFERENCE_MONTH
    moy: np.ndarray  # 0-11
    sf_days: np.ndarray
    covid: np.ndarray  # (5, n) indicators of the COVID shock months

    @classmethod
    def of(cls, months: pd.PeriodIndex) -> _Calendar:
        ordinals = np.asarray(months.asi8, dtype=np.int64)
        covid = np.vstack([ordinals == m.ordinal for m in timeline.COVID_SHOCK_MONTHS]).astype(float)
        return cls(
            months=months,
            t=(ordinals - REFERENCE_MONTH.ordinal).astype(float),
            moy=np.asarray(months.month, dtype=np.int64) - 1,
            sf_days=timeline.spring_festival_days(months).to_numpy(dtype=float),
            covid=covid,
        )


def _season_shape(name: str) -> np.ndarray:
    """Twelve month effects summing to zero (the model's identifiability constraint)."""
    cos = np.cos(2 * np.pi * np.arange(12) / 12)  # peak in January
    shape = {
        "none": np.zeros(12),
        "winter": cos,
        "summer": -cos,
        "q4": np.r_[np.zeros(9), np.ones(3)],
        "inpatient": _INPATIENT_SEASON,
    }[name]
    return shape - shape.mean()


def _disruption(code: str, calendar: _Calendar) -> np.ndarray:
    """Log volume multiplier of COVID waves and regional lockdowns for one province."""
    table = {**_NATIONAL_DISRUPTION, **_REGIONAL_DISRUPTION.get(code, {})}
    labels = calendar.months.strftime("%Y-%m")
    return np.log(np.array([table.get(m, 1.0) for m in labels]))


# ---------------------------------------------------------------------------------------
# Denominators
# ---------------------------------------------------------------------------------------


def _population_share() -> dict[str, float]:
    total = sum(_POPULATION_2020.values())
    return {code: pop / total for code, pop in _POPULATION_2020.items()}


def _hospital_share() -> dict[str, float]:
    weights = {code: s**_HOSPITAL_SIZE_EXPONENT for code, s in _population_share().items()}
    total = sum(weights.values())
    return {code: w / total for code, w in weights.items()}


def _pool_denominator(
    seed: int, index: int, code: str, pool: _Pool, prov: _ProvinceDraws, calendar: _Calendar
) -> np.ndarray:
    """Monthly denominator of one pool in one province (always >= 1)."""
    rng = _stream(seed, index, 1000 + pool.key)
    kind = _KINDS[pool.kind]
    pool_access = float(rng.lognormal(0.0, 0.1))
    noise = rng.normal(0.0, kind.noise, size=len(calendar.t))
    log_mean = (
        kind.growth * calendar.t / 12
        + kind.season_amp * _season_shape(kind.season)[calendar.moy]
        + kind.sf_per_day * calendar.sf_days
        + kind.disruption * _disruption(code, calendar)
        + noise
    )
    if pool.kind == "hospitals":
        # Hospital counts change slowly: no Poisson noise, only the small drift above.
        size = pool.national * _hospital_share()[code] * prov.access * pool_access
        return np.maximum(np.rint(size * np.exp(log_mean)), 1).astype(np.int64)
    size = pool.national * _population_share()[code] * prov.access * pool_access
    return np.maximum(rng.poisson(size * np.exp(log_mean)), 1).astype(np.int64)


# ---------------------------------------------------------------------------------------
# Series
# ---------------------------------------------------------------------------------------

_INVERSE_LINK = {"proportion": expit, "rate": np.exp, "mean": lambda x: x}
_LINK = {"proportion": logit, "rate": np.log, "mean": lambda x: x}


def _simulate_series(
    rng: np.random.Generator,
    code: str,
    indicator: registry.Indicator,
    prov: _ProvinceDraws,
    denominator: np.ndarray,
    calendar: _Calendar,
    panel: slice,
    co_interventions: bool,
) -> tuple[dict[str, np.ndarray], dict[str, object]]:
    """Draw one province x indicator series on ``calendar``; observe it on ``panel``."""
    spec = _SPECS[indicator.number]
    measure = indicator.measure
    sign = indicator.improvement_sign()

    # A fixed order of draws keeps each stream stable whatever else is generated.
    category = rng.random()
    effect_z = rng.standard_normal()
    level_z = rng.standard_normal()
    trend_z = rng.standard_normal()
    phi = float(rng.uniform(*_PHI_RANGE))
    covid_z = rng.standard_normal()
    drg_factor = rng.uniform(0.5, 1.5)

    a = float(_LINK[measure](spec.level)) + spec.between_sd * level_z
    if indicator.number == 9 and code in _REMOTE:
        a += _REMOTE_RESPONSE_OFFSET
    floor = _TREND_SD_FLOOR * (spec.level if measure == "mean" else 1.0)
    b = (spec.trend + (_TREND_SD_FRACTION * abs(spec.trend) + floor) * trend_z) / 12

    zero_effect = bool(category < _P_ZERO)
    wrong_direction = bool(_P_ZERO <= category < _P_ZERO + _P_WRONG)
    heterogeneity = np.exp(_EFFECT_SD_PROVINCE * prov.effect_z + _EFFECT_SD_SERIES * effect_z)
    effect_sign = 0.0 if zero_effect else (-sign if wrong_direction else sign)
    level_change = effect_sign * spec.level_change * heterogeneity
    slope_change = effect_sign * spec.slope_change / 12 * heterogeneity

    since_start = calendar.t - (prov.start.ordinal - REFERENCE_MONTH.ordinal)
    ramp = np.clip((since_start + 1) / prov.washin, 0.0, 1.0)
    plan = np.where(since_start >= 0, ramp * (level_change + slope_change * since_start), 0.0)

    drg_affected = co_interventions and spec.drg != 0.0
    drg_step = spec.drg * drg_factor if drg_affected else 0.0
    drg = np.where(calendar.months >= prov.drg_month, drg_step, 0.0)

    covid = np.exp(_COVID_SD * covid_z) * (np.asarray(spec.covid) @ calendar.covid)
    eta = (
        a
        + b * calendar.t
        + spec.season_amp * _season_shape(spec.season)[calendar.moy]
        + spec.sf * calendar.sf_days
        + covid
        + plan
        + drg
    )

    # AR(1) noise started from its stationary distribution, so early months are not
    # artificially quiet.
    sigma = spec.noise_sd * np.sqrt(1 - phi**2)
    n = panel.stop - panel.start
    innovations = sigma * rng.standard_normal(n)
    innovations[0] *= 1 / np.sqrt(1 - phi**2)
    noise = lfilter([1.0], [1.0, -phi], innovations)

    latent = eta[panel] + noise
    if measure == "proportion":
        numerator = rng.binomial(denominator, expit(latent)).astype(np.int64)
        value = np.full(n, np.nan)
    elif measure == "rate":
        numerator = rng.poisson(denominator * np.exp(latent)).astype(np.int64)
        value = np.full(n, np.nan)
    else:
        numerator = np.zeros(n, dtype=np.int64)  # masked to <NA> in the panel
        # Guard only: with these parameters the mean is far from zero.
        value = np.maximum(np.round(latent, 3), 0.001)

    inverse = _INVERSE_LINK[measure]
    with_plan = inverse(eta)
    counterfactual = inverse(eta - plan)

    scale = 1.0 if measure == "mean" else indicator.scale
    end = np.flatnonzero(calendar.months == EVALUATION_MONTH)[0]
    effect_absolute = scale * (with_plan[end] - counterfactual[end])
    effect_relative = with_plan[end] / counterfactual[end] - 1
    effect_cumulative = np.nan
    first = (prov.start + CUMULATIVE_LAG).ordinal
    panel_months = calendar.months[panel]
    if measure != "mean" and panel_months[0].ordinal <= first and EVALUATION_MONTH <= panel_months[-1]:
        ordinals = np.asarray(panel_months.asi8)
        window = (ordinals >= first) & (ordinals <= EVALUATION_MONTH.ordinal)
        extra = (with_plan[panel] - counterfactual[panel])[window]
        effect_cumulative = float(np.sum(denominator[window] * extra))

    arrays = {
        "numerator": numerator,
        "denominator": denominator,
        "value": value,
        "eta_counterfactual": (eta - plan)[panel],
        "eta_with_plan": eta[panel],
        "expected_counterfactual": scale * counterfactual[panel],
        "expected_with_plan": scale * with_plan[panel],
        "plan_effect_eta": plan[panel],
        "drg_eta": drg[panel],
    }
    truth = {
        "province": code,
        "indicator": indicator.number,
        "measure": measure,
        "start_month": str(prov.start),
        "washin_months": prov.washin,
        "level_change": level_change,
        "slope_change": slope_change,
        "phi": phi,
        "sigma": sigma,
        "zero_effect": zero_effect,
        "wrong_direction": wrong_direction,
        "confounded": drg_affected,
        "effect_end_absolute": float(effect_absolute),
        "effect_end_relative": float(effect_relative),
        "effect_cumulative": effect_cumulative,
        "baseline_eta": a,
        "pre_trend": b,
        "drg_month": str(prov.drg_month) if drg_affected else None,
        "drg_step": drg_step,
    }
    return arrays, truth


def _simulate_comparison(
    rng: np.random.Generator,
    indicator: registry.Indicator,
    treated: dict[str, object],
    eta_without_plan: np.ndarray,
    denominator: np.ndarray,
    calendar: _Calendar,
) -> tuple[dict[str, np.ndarray], dict[str, object]]:
    """Draw the comparison series of one treated series, observed on ``calendar`` (the panel's).

    Its linear predictor is the treated series' without the plan (so the DRG/DIP step, the
    seasonality and the COVID shocks are the same) plus a small offset of baseline and
    trend; its AR(1) noise and its counts are its own.
    """
    spec = _SPECS[indicator.number]
    measure = indicator.measure
    level_offset = _COMPARISON_OFFSET_FRACTION * spec.between_sd * rng.standard_normal()
    floor = _TREND_SD_FLOOR * (spec.level if measure == "mean" else 1.0)
    trend_sd = _TREND_SD_FRACTION * abs(spec.trend) + floor
    trend_offset = _COMPARISON_OFFSET_FRACTION * trend_sd * rng.standard_normal() / 12
    phi = float(rng.uniform(*_PHI_RANGE))
    sigma = spec.noise_sd * np.sqrt(1 - phi**2)
    n = len(calendar.t)
    innovations = sigma * rng.standard_normal(n)
    innovations[0] *= 1 / np.sqrt(1 - phi**2)
    latent = eta_without_plan + level_offset + trend_offset * calendar.t + lfilter([1.0], [1.0, -phi], innovations)
    if measure == "proportion":
        numerator, value = rng.binomial(denominator, expit(latent)).astype(np.int64), np.full(n, np.nan)
    elif measure == "rate":
        numerator, value = rng.poisson(denominator * np.exp(latent)).astype(np.int64), np.full(n, np.nan)
    else:
        numerator, value = np.zeros(n, dtype=np.int64), np.maximum(np.round(latent, 3), 0.001)
    arrays = {"numerator": numerator, "denominator": denominator, "value": value}
    truth = {
        "province": treated["province"],
        "series": _COMPARISON_NAME.format(number=indicator.number),
        "indicator": indicator.number,
        "measure": measure,
        "level_change": 0.0,
        "slope_change": 0.0,
        "phi": phi,
        "sigma": sigma,
        "baseline_eta": float(treated["baseline_eta"]) + level_offset,
        "pre_trend": float(treated["pre_trend"]) + trend_offset,
        "drg_month": treated["drg_month"],
        "drg_step": treated["drg_step"],
    }
    return arrays, truth


def _comparison_tables(truth_rows: list[dict[str, object]], arrays: list[dict[str, np.ndarray]],
                       months: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The comparison series, the comparisons table and the comparison truth as tables."""
    truth = pd.DataFrame(truth_rows, columns=COMPARISON_TRUTH_COLUMNS)
    n = len(months)
    if not truth_rows:
        return (pd.DataFrame(columns=COMPARISON_COLUMNS), pd.DataFrame(columns=["indicator", "comparison"]), truth)
    is_mean = np.repeat(truth["measure"].to_numpy() == "mean", n)
    series = pd.DataFrame({
        "province": np.repeat(truth["province"].to_numpy(), n),
        "series": np.repeat(truth["series"].to_numpy(), n),
        "measure": np.repeat(truth["measure"].to_numpy(), n),
        "month": np.tile(months, len(truth)),
        "numerator": pd.arrays.IntegerArray(np.concatenate([a["numerator"] for a in arrays]), is_mean),
        "denominator": pd.array(np.concatenate([a["denominator"] for a in arrays]), dtype="Int64"),
        "value": np.concatenate([a["value"] for a in arrays]),
    })
    pairs = (truth[["indicator", "series"]].drop_duplicates().rename(columns={"series": "comparison"})
             .sort_values("indicator", ignore_index=True))
    return series, pairs, truth


# ---------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------


def _resolve_provinces(keys: Sequence[str] | None) -> list[tuple[int, str]]:
    everything = registry.provinces()
    if keys is None:
        return [(i, p.code) for i, p in enumerate(everything)]
    if isinstance(keys, str):
        raise TypeError("provinces must be a sequence of codes, e.g. ['340000'], not a single string")
    wanted = {registry.get_province(k).code for k in keys}
    return [(i, p.code) for i, p in enumerate(everything) if p.code in wanted]


def _resolve_indicators(numbers: Sequence[int] | None) -> list[registry.Indicator]:
    if numbers is None:
        return list(registry.quantitative_indicators())
    chosen = {registry.get_indicator(n) for n in numbers}
    status = sorted(i.number for i in chosen if not i.is_quantitative)
    if status:
        raise ValueError(f"indicators {status} are status items, not monthly series (use 9-39)")
    return sorted(chosen, key=lambda i: i.number)


def generate(
    seed: int = 2023,
    *,
    start: str = "2019-01",
    end: str = "2025-12",
    provinces: Sequence[str] | None = None,
    indicators: Sequence[int] | None = None,
    co_interventions: bool = True,
) -> SyntheticData:
    """Generate a synthetic provincial panel and the truth behind it.

    Parameters
    ----------
    seed : int, default 2023
        Non-negative seed. Each province x indicator series, each province's plan dates and
        each shared denominator draw from their own stream derived from ``seed``, so
        restricting ``provinces`` or ``indicators`` leaves the other series unchanged.
    start, end : str, default "2019-01", "2025-12"
        First and last month ('YYYY-MM') of the panel.
    provinces : sequence of str, optional
        Province codes (e.g. ``"340000"``; names are accepted too). Default: all 32 units.
    indicators : sequence of int, optional
        Annex numbers 9-39. Default: all 31 quantitative indicators.
    co_interventions : bool, default True
        Add the province-specific DRG/DIP payment-reform step (2022-01..2024-12) to
        indicators 14, 28 and 38. It is not part of the plan effect in ``truth``.

    Returns
    -------
    SyntheticData
        ``panel`` (the data contract), ``plan_dates``, ``truth``, ``truth_monthly`` and
        ``seed``. Rows are ordered by province code, indicator and month. For the selected
        DRG/DIP-affected indicators (14, 28, 38) also ``comparison_series``, ``comparisons``
        and ``comparison_truth``: one comparison series per province without the plan
        effect, drawn from random streams of their own (so every other table is the same as
        without them).

    Notes
    -----
    Proportions are drawn as Binomial(denominator, expit(eta + u)), rates as
    Poisson(denominator * exp(eta + u)) and means as eta + u, where ``u`` is AR(1) with
    ``phi`` ~ U(0.3, 0.6). The plan term is ``min(1, (k + 1) / W) (L + S k)`` for ``k``
    months since the province's start. About 15% of series have no effect and 8% an
    effect in the wrong direction. ``truth`` also holds ``baseline_eta`` (the level at
    2021-01), ``pre_trend`` (per month), ``drg_month`` and ``drg_step``. The end-of-plan
    effects are defined at 2025-09 even when the panel stops earlier; ``effect_cumulative``
    is NaN when the panel does not cover ``start + 3`` months through 2025-09.

    Examples
    --------
    >>> data = generate(seed=1, provinces=["340000"], indicators=[32])
    >>> data.panel.shape
    (84, 6)
    >>> data.plan_dates.loc[0, "start_month"]
    '2023-08'
    >>> monthly = data.truth_monthly
    >>> bool((monthly.loc[monthly["month"] < "2023-08", "plan_effect_eta"] == 0).all())
    True
    """
    if int(seed) != seed or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    seed = int(seed)
    first, last = pd.Period(start, "M"), pd.Period(end, "M")
    if last < first:
        raise ValueError(f"end ({end}) is before start ({start})")

    # Work on a grid that always contains the evaluation month, so end-of-plan effects are
    # defined for panels that stop early.
    grid = pd.period_range(min(first, EVALUATION_MONTH), max(last, EVALUATION_MONTH), freq="M")
    calendar = _Calendar.of(grid)
    offset = first.ordinal - grid[0].ordinal
    panel_slice = slice(offset, offset + (last.ordinal - first.ordinal + 1))
    panel_calendar = _Calendar.of(grid[panel_slice])
    n_months = panel_slice.stop - panel_slice.start

    chosen_provinces = _resolve_provinces(provinces)
    chosen_indicators = _resolve_indicators(indicators)

    columns: dict[str, list[np.ndarray]] = {}
    truth_rows: list[dict[str, object]] = []
    plan_rows: list[dict[str, str]] = []
    comparison_rows: list[dict[str, object]] = []
    comparison_arrays: list[dict[str, np.ndarray]] = []
    for index, code in chosen_provinces:
        prov = _province_draws(seed, index, code)
        plan_rows.append({"province": code, "start_month": str(prov.start)})
        pools: dict[str, np.ndarray] = {}
        for indicator in chosen_indicators:
            pool_name = _SPECS[indicator.number].pool
            if pool_name not in pools:
                pools[pool_name] = _pool_denominator(
                    seed, index, code, _POOLS[pool_name], prov, panel_calendar
                )
            arrays, truth = _simulate_series(
                _stream(seed, index, indicator.number),
                code,
                indicator,
                prov,
                pools[pool_name],
                calendar,
                panel_slice,
                co_interventions,
            )
            truth_rows.append(truth)
            for name, values in arrays.items():
                columns.setdefault(name, []).append(values)
            spec = _SPECS[indicator.number]
            if spec.drg != 0.0:
                pool = _POOLS[spec.pool]
                outside = _Pool(_COMPARISON_POOL_KEY - 1000 + indicator.number,
                                pool.national * _COMPARISON_VOLUME_SHARE, pool.kind)
                arrays, truth = _simulate_comparison(
                    _stream(seed, index, _COMPARISON_KEY + indicator.number),
                    indicator,
                    truth,
                    arrays["eta_counterfactual"],
                    _pool_denominator(seed, index, code, outside, prov, panel_calendar),
                    panel_calendar,
                )
                comparison_rows.append(truth)
                comparison_arrays.append(arrays)

    n_series = len(truth_rows)
    stacked = {name: np.concatenate(parts) for name, parts in columns.items()}
    keys = {
        "province": np.repeat([r["province"] for r in truth_rows], n_months),
        "indicator": np.repeat(np.array([r["indicator"] for r in truth_rows], dtype=np.int64), n_months),
        "month": np.tile(np.asarray(panel_calendar.months.strftime("%Y-%m"), dtype=object), n_series),
    }
    is_mean = np.repeat([r["measure"] == "mean" for r in truth_rows], n_months)

    panel = pd.DataFrame(
        {
            **keys,
            "numerator": pd.arrays.IntegerArray(stacked["numerator"], is_mean),
            "denominator": pd.array(stacked["denominator"], dtype="Int64"),
            "value": stacked["value"],
        }
    )
    truth_monthly = pd.DataFrame(
        {
            **keys,
            **{
                name: stacked[name]
                for name in (
                    "eta_counterfactual",
                    "eta_with_plan",
                    "expected_counterfactual",
                    "expected_with_plan",
                    "plan_effect_eta",
                    "drg_eta",
                )
            },
        }
    )
    truth = pd.DataFrame(truth_rows)
    if truth.empty:
        raise ValueError("no series selected: check provinces and indicators")
    comparison_series, comparisons, comparison_truth = _comparison_tables(
        comparison_rows, comparison_arrays, np.asarray(panel_calendar.months.strftime("%Y-%m"), dtype=object)
    )
    return SyntheticData(
        panel=panel,
        plan_dates=pd.DataFrame(plan_rows, columns=["province", "start_month"]),
        truth=truth,
        truth_monthly=truth_monthly,
        seed=seed,
        comparison_series=comparison_series,
        comparisons=comparisons,
        comparison_truth=comparison_truth,
    )


_README = """# Synthetic data (generated)

Produced by `analysis.data.synthetic.generate(seed={seed})`; regenerate rather than edit.
All parameters are ESTIMATES chosen for realism (see `/work/shared/domain/calibration.md`);
this is not real data and its numbers must never be reported as facts.

- provinces: {n_provinces}; indicators: {n_indicators}; months: {first} .. {last}
- DRG/DIP co-intervention included: {co}

| file | rows | content |
|---|---|---|
| `panel.csv` | {n_panel} | the data contract: `province` (GB/T code), `indicator` (annex number), `month` (YYYY-MM), `numerator`, `denominator` (integer counts; numerator empty for mean indicators), `value` (monthly mean for mean indicators, empty otherwise) |
| `plan_dates.csv` | {n_plan} | `province`, `start_month`: each province's own start of the plan |
| `truth.csv` | {n_truth} | one row per province x indicator: `level_change` and `slope_change` (per month) of the plan on the model scale (logit for proportions, log for rates, display units for means), `washin_months`, AR(1) `phi` and innovation SD `sigma`, flags `zero_effect`, `wrong_direction`, `confounded` (DRG/DIP step present), and the true effects at {evaluation}: `effect_end_absolute` (display units), `effect_end_relative`, `effect_cumulative` (expected extra events from start + 3 months, negative = events averted; empty for means) |
| `truth_monthly.csv` | {n_monthly} | one row per province x indicator x month: `eta_with_plan`, `eta_counterfactual` (noise-free linear predictor with and without the plan), `expected_with_plan`, `expected_counterfactual` (display units), `plan_effect_eta`, `drg_eta` |
{comparison_rows}
Observed counts: proportion ~ Binomial(denominator, expit(eta + u)); rate ~
Poisson(denominator x exp(eta + u)); mean = eta + u; u is AR(1) noise.
{comparison_text}"""

_README_COMPARISON_ROWS = """| `comparison_series.csv` | {n_series} | comparison series outside the annex (`analysis/data/comparison_series.py`): `province`, `series` (name), `measure`, `month`, `numerator`, `denominator`, `value`; for each DRG/DIP-affected indicator ({indicators}) the same indicator in hospitals outside the plan's first wave |
| `comparisons.csv` | {n_pairs} | `indicator`, `comparison`: which series each affected indicator is compared with in the controlled ITS (`python -m analysis run` uses both files when they are in the data directory) |
| `comparison_truth.csv` | {n_comparison_truth} | one row per province x comparison series: `indicator` (the series it mirrors), `level_change` and `slope_change` 0 (no plan effect), AR(1) `phi` and `sigma`, `baseline_eta`, `pre_trend`, and `drg_month`, `drg_step`: the same DRG/DIP step as the treated series (month and size on the model scale) |
"""

_README_COMPARISON_TEXT = """
A comparison series has the treated series' linear predictor without the plan (the same DRG/DIP
step, seasonality, Spring Festival and COVID terms), a baseline and pre-trend that differ by a
quarter of the between-province SDs, half the treated series' volume, and its own AR(1) noise and
sampling. The controlled ITS's difference in level change therefore estimates the plan's
`level_change` in `truth.csv`, free of the DRG/DIP step.
"""


def write(data: SyntheticData, out_dir: str | Path) -> dict[str, Path]:
    """Write the four tables as UTF-8 CSV (no index) and a README describing them.

    Parameters
    ----------
    data : SyntheticData
        Output of :func:`generate`.
    out_dir : str or pathlib.Path
        Directory to write into; created if missing. Existing files are overwritten.

    Returns
    -------
    dict of str to pathlib.Path
        ``panel``, ``plan_dates``, ``truth``, ``truth_monthly`` and ``readme``; and
        ``comparison_series``, ``comparisons`` and ``comparison_truth`` when a DRG/DIP-affected
        indicator (14, 28, 38) was generated.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     paths = write(generate(provinces=["460000"], indicators=[35]), tmp)
    ...     sorted(p.name for p in paths.values())
    ['README.md', 'panel.csv', 'plan_dates.csv', 'truth.csv', 'truth_monthly.csv']
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     paths = write(generate(provinces=["460000"], indicators=[28]), tmp)
    ...     sorted(p.name for p in paths.values() if p.name.startswith("comparison"))
    ['comparison_series.csv', 'comparison_truth.csv', 'comparisons.csv']
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tables = {
        "panel": data.panel,
        "plan_dates": data.plan_dates,
        "truth": data.truth,
        "truth_monthly": data.truth_monthly,
    }
    if len(data.comparison_series):
        tables |= {"comparison_series": data.comparison_series, "comparisons": data.comparisons,
                   "comparison_truth": data.comparison_truth}
    paths: dict[str, Path] = {}
    for name, frame in tables.items():
        paths[name] = out / f"{name}.csv"
        frame.to_csv(paths[name], index=False, encoding="utf-8")
    months = data.panel["month"]
    readme = _README.format(
        seed=data.seed,
        n_provinces=data.panel["province"].nunique(),
        n_indicators=data.panel["indicator"].nunique(),
        first=months.min(),
        last=months.max(),
        co="yes" if (data.truth["drg_step"] != 0).any() else "no (or no affected indicator selected)",
        evaluation=EVALUATION_MONTH,
        n_panel=len(data.panel),
        n_plan=len(data.plan_dates),
        n_truth=len(data.truth),
        n_monthly=len(data.truth_monthly),
        comparison_rows=_README_COMPARISON_ROWS.format(
            n_series=len(data.comparison_series),
            indicators=", ".join(str(n) for n in data.comparisons["indicator"]),
            n_pairs=len(data.comparisons),
            n_comparison_truth=len(data.comparison_truth),
        ) if len(data.comparison_series) else "",
        comparison_text=_README_COMPARISON_TEXT if len(data.comparison_series) else "",
    )
    paths["readme"] = out / "README.md"
    paths["readme"].write_text(readme, encoding="utf-8")
    return paths
