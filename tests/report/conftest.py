"""A small evaluation run (2 provinces x 3 indicators, fitted for real) written to disk.

The run is built from the synthetic generator and the pipeline's own fitting and pooling,
so the report is tested against tables of the shape the pipeline writes.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.data.contract import read_panel
from analysis.data.synthetic import generate
from analysis.evaluation.fit_panel import fit_panel
from analysis.registry import quantitative_indicators
from analysis.synthesis.national import national_effects

PROVINCES = ["340000", "540000"]
INDICATORS = [9, 11, 32]
#: A failure whose message needs escaping in HTML.
FAILURE = {
    "province": "540000",
    "indicator": 12,
    "stage": "fit",
    "error": "ValueError",
    "message": "<script>alert('x')</script> & co",
}
MANIFEST = {
    "package": {"name": "plan-its", "version": "0.1.0"},
    "code_revision": {"commit": "0123456789abcdef", "dirty": True},
    "python": "3.11.7",
    "inputs": [{"role": "panel", "path": "data/panel.csv", "sha256": "feedc0de" * 8, "rows": 504}],
    "parameters": {"washin": 3, "evaluation_month": "2025-09"},
    "started": "2025-10-01T00:00:00Z",
    "finished": "2025-10-01T00:00:09Z",
    "a_future_key": {"nested": [1, 2]},
}


def write_run(
    run_dir: Path,
    *,
    effects: pd.DataFrame,
    predictions: pd.DataFrame,
    diagnostics: pd.DataFrame,
    failures: pd.DataFrame,
    national: pd.DataFrame,
    manifest: dict,
) -> Path:
    tables = run_dir / "tables"
    tables.mkdir(parents=True, exist_ok=True)
    effects.to_csv(tables / "effects.csv", index=False)
    predictions.to_parquet(tables / "predictions.parquet", index=False)
    diagnostics.to_csv(tables / "diagnostics.csv", index=False)
    failures.to_csv(tables / "failures.csv", index=False)
    national.to_csv(tables / "national_effects.csv", index=False)
    (run_dir / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return run_dir


@pytest.fixture(scope="session")
def spec() -> dict:
    """What the small run holds: provinces, indicators, the added failure and the manifest."""
    return {"provinces": PROVINCES, "indicators": INDICATORS, "failure": FAILURE, "manifest": MANIFEST}


@pytest.fixture(scope="session")
def fitted(tmp_path_factory):
    """Pipeline results for the small panel: (PanelResults, national table)."""
    data = generate(provinces=PROVINCES, indicators=INDICATORS)
    path = tmp_path_factory.mktemp("panel") / "panel.csv"
    data.panel.to_csv(path, index=False)
    starts = {row.province: pd.Period(row.start_month, "M") for row in data.plan_dates.itertuples()}
    results = fit_panel(read_panel(path), starts=starts)
    return results, national_effects(results.effects)


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory, fitted) -> Path:
    """A run directory with every table, one failure and a manifest."""
    results, national = fitted
    failures = pd.concat([results.failures, pd.DataFrame([FAILURE])], ignore_index=True)
    return write_run(
        tmp_path_factory.mktemp("run"),
        effects=results.effects,
        predictions=results.predictions,
        diagnostics=results.diagnostics,
        failures=failures,
        national=national,
        manifest=MANIFEST,
    )


def _fake_province(province: str, *, start: str, seed: int = 0) -> dict[str, pd.DataFrame]:
    """Hand-made predictions, effects and diagnostics for all 31 quantitative indicators.

    Cheap to build (no model fit), for layout and speed checks of a full province figure.
    """
    rng = np.random.default_rng(seed)
    months = pd.period_range("2019-01", "2025-12", freq="M")
    first = pd.Period(start, "M")
    phase = np.where(months < first, "pre", np.where(months < first + 3, "washin", "post"))
    t = np.arange(len(months))
    preds, effects, diags = [], [], []
    for ind in quantitative_indicators():
        base = 50 + 0.1 * t
        cf = base.copy()
        fitted = base + np.where(phase == "pre", 0, 2.0)
        preds.append(
            pd.DataFrame(
                {
                    "province": province,
                    "indicator": ind.number,
                    "month": months.astype(str),
                    "fitted": fitted,
                    "fitted_low": fitted - 1,
                    "fitted_high": fitted + 1,
                    "counterfactual": cf,
                    "counterfactual_low": cf - 1.5,
                    "counterfactual_high": cf + 1.5,
                    "observed": fitted + rng.normal(0, 1, len(months)),
                    "phase": phase,
                }
            )
        )
        est = rng.normal(0.03, 0.05)
        effects.append(
            {
                "province": province,
                "indicator": ind.number,
                "measure": "effect_end_relative",
                "estimate": est,
                "se": 0.02,
                "ci_low": est - 0.04,
                "ci_high": est + 0.04,
                "p_value": 0.1,
                "scale": "ratio - 1",
                "unit": "ratio - 1",
                "df": 60.0,
                "window_start": "2025-09",
                "window_end": "2025-09",
                "family": "binomial",
                "cov_type": "latent-ar1",
            }
        )
        diags.append(
            {
                "province": province,
                "indicator": ind.number,
                "family": "binomial",
                "start_month": start,
                "n_months": len(months),
                "n_pre": int((phase == "pre").sum()),
                "n_post": int((phase == "post").sum()),
                "washin": 3,
                "n_params": 21,
                "phi": 0.4,
                "sigma2": 0.01,
                "pearson_dispersion": 1.1,
                "durbin_watson": 1.9,
                "ljung_box_p": 0.3,
                "converged": True,
            }
        )
    return {
        "predictions": pd.concat(preds, ignore_index=True),
        "effects": pd.DataFrame(effects),
        "diagnostics": pd.DataFrame(diags),
    }


@pytest.fixture(scope="session")
def full_province() -> dict[str, pd.DataFrame]:
    """All 31 indicators of one province (340000), hand-made."""
    return _fake_province("340000", start="2023-08")
