"""Multiplicity adjustments against a published example, hand computation, statsmodels and a
simulation of the false discovery rate.

References
----------
* Benjamini & Hochberg (1995, J R Stat Soc B 57:289-300), section 4: 15 p-values from a
  trial of thrombolytic treatment; the step-up procedure at q = 0.05 rejects the 4
  smallest, where Bonferroni-type procedures (Holm) reject 3.
* R's ``p.adjust``: BH adjusted value of the i-th smallest of m p-values is
  ``min_{j >= i} min(1, m p_(j) / j)``; Holm's ``max_{j <= i} min(1, (m - j + 1) p_(j))``.
  NAs are kept and not counted in m.
* statsmodels' ``multipletests`` (``fdr_bh``, ``holm``): an independent implementation.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.multitest import multipletests

from analysis.synthesis.multiplicity import adjust_pvalues, benjamini_hochberg, holm

BH1995 = [
    0.0001,
    0.0004,
    0.0019,
    0.0095,
    0.0201,
    0.0278,
    0.0298,
    0.0344,
    0.0459,
    0.3240,
    0.4262,
    0.5719,
    0.6528,
    0.7590,
    1.0000,
]


def test_published_example_of_benjamini_and_hochberg():
    p = np.array(BH1995)
    assert (benjamini_hochberg(p) <= 0.05).sum() == 4
    assert (holm(p) <= 0.05).sum() == 3


def test_hand_computed_values():
    # sorted 0.01, 0.03, 0.04, 0.20 (m = 4): BH 0.04, min(0.06, 0.0533), 0.0533, 0.20
    np.testing.assert_allclose(benjamini_hochberg([0.01, 0.04, 0.03, 0.20]), [0.04, 0.16 / 3, 0.16 / 3, 0.20])
    # Holm: 0.04, max(0.04, 0.09), max(0.09, 0.08), max(0.09, 0.20)
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03, 0.20]), [0.04, 0.09, 0.09, 0.20])
    # ties and the cap at 1
    np.testing.assert_allclose(benjamini_hochberg([0.5, 0.5, 0.9]), [0.75, 0.75, 0.9])
    np.testing.assert_allclose(holm([0.5, 0.5, 0.9]), [1.0, 1.0, 1.0])


@pytest.mark.parametrize("seed", range(5))
def test_agrees_with_statsmodels(seed):
    rng = np.random.default_rng(seed)
    p = np.concatenate([rng.uniform(size=80), rng.uniform(0, 0.01, size=20), [0.03, 0.03, 0.03]])
    rng.shuffle(p)
    np.testing.assert_allclose(benjamini_hochberg(p), multipletests(p, method="fdr_bh")[1], rtol=1e-12)
    np.testing.assert_allclose(holm(p), multipletests(p, method="holm")[1], rtol=1e-12)


def test_missing_p_values_stay_missing_and_are_not_counted():
    p = np.array([0.01, np.nan, 0.04, 0.03, np.nan, 0.2])
    out = benjamini_hochberg(p)
    assert np.isnan(out[[1, 4]]).all()
    np.testing.assert_allclose(out[[0, 2, 3, 5]], multipletests(p[[0, 2, 3, 5]], method="fdr_bh")[1])
    np.testing.assert_allclose(holm(p)[[0, 2, 3, 5]], multipletests(p[[0, 2, 3, 5]], method="holm")[1])
    assert np.isnan(benjamini_hochberg([np.nan])).all() and benjamini_hochberg([]).size == 0


def test_rejects_values_that_are_not_p_values():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        benjamini_hochberg([0.1, 1.2])


def test_false_discovery_rate_is_controlled_by_simulation():
    """Independent tests, 10% non-null: the FDR of BH at q = 0.05 is m0/m * q = 0.045 for
    independent p-values (Benjamini & Hochberg 1995, Theorem 1, with equality for
    continuous null p-values). Unadjusted testing at 0.05 is far above it."""
    rng = np.random.default_rng(20231)
    reps, m, q = 3000, 200, 0.05
    m1 = m // 10
    fdp_bh, fdp_raw = np.empty(reps), np.empty(reps)
    null = np.arange(m) >= m1
    for r in range(reps):
        z = rng.standard_normal(m)
        z[:m1] += 3.0
        p = 2 * (1 - _norm_cdf(np.abs(z)))
        for store, reject in ((fdp_bh, benjamini_hochberg(p) <= q), (fdp_raw, p <= q)):
            store[r] = (reject & null).sum() / max(reject.sum(), 1)
    fdr, mc_se = fdp_bh.mean(), fdp_bh.std(ddof=1) / np.sqrt(reps)
    assert abs(fdr - q * 0.9) < 4 * mc_se, (fdr, mc_se)
    assert fdr <= q + 2 * mc_se
    assert fdp_raw.mean() > 0.2  # the simulation can tell controlled from uncontrolled


def _norm_cdf(x):
    from scipy.special import ndtr

    return ndtr(x)


def _effects():
    rows = []
    for province in ("110000", "340000"):
        for indicator, p in zip((11, 12, 31, 33), (0.001, 0.02, 0.04, 0.03)):
            for measure, factor in (("level_change", 1.0), ("effect_end_relative", 2.0)):
                rows.append(
                    {
                        "province": province,
                        "indicator": indicator,
                        "measure": measure,
                        "p_value": min(1.0, p * factor * (1.5 if province == "340000" else 1.0)),
                    }
                )
    return pd.DataFrame(rows)


def test_table_families_are_measures_for_bh_and_province_measures_for_holm():
    effects = _effects()
    out = adjust_pvalues(effects, primary=(11, 12, 31))
    for _measure, group in out.groupby("measure"):
        np.testing.assert_allclose(group["p_bh"], multipletests(group["p_value"], method="fdr_bh")[1])
    for _key, group in out.groupby(["province", "measure"]):
        primary = group[group["indicator"] != 33]
        np.testing.assert_allclose(primary["p_holm"], multipletests(primary["p_value"], method="holm")[1])
        assert group.loc[group["indicator"] == 33, "p_holm"].isna().all()
    assert list(out.columns[:4]) == list(effects.columns) and len(out) == len(effects)


def test_national_table_holm_family_is_the_measure():
    national = _effects().drop(columns="province").drop_duplicates(["indicator", "measure"])
    out = adjust_pvalues(national, primary=[11, 12])
    lc = out[(out["measure"] == "level_change") & out["indicator"].isin([11, 12])]
    np.testing.assert_allclose(lc["p_holm"], multipletests(lc["p_value"], method="holm")[1])


def test_no_primary_indicators_and_bad_columns():
    out = adjust_pvalues(_effects(), primary=())
    assert out["p_holm"].isna().all() and out["p_bh"].notna().all()
    with pytest.raises(ValueError, match="p_value"):
        adjust_pvalues(_effects().drop(columns="p_value"), primary=())
    with pytest.raises(ValueError, match="bh_by"):
        adjust_pvalues(_effects(), primary=(), bh_by=["family"])
