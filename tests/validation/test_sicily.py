"""Sicily smoking ban (Lopez Bernal, Cummins & Gasparrini 2017, Int J Epidemiol 46:348-355).

The tutorial's R code (github.com/gasparrini/2017_lopezbernal_IJE_codedata, Rcode.R) fits
``glm(aces ~ offset(log(stdpop)) + smokban + time, family=poisson)``, the quasi-Poisson
version, and the model with ``harmonic(month, 2, 12)`` Fourier terms. Neither the repository
nor the paper prints the model output in a form that could be checked here, so, as the
validation README allows, the package is compared with an independent computation: the same
models built by hand and fitted with statsmodels' GLM directly (not through the package),
and the quasi-Poisson dispersion computed by hand.
"""

import json

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats

from analysis.cli import main


@pytest.fixture(scope="module")
def sicily(validation_dir) -> pd.DataFrame:
    return pd.read_csv(validation_dir / "sicily_smokban.csv")


def reference(frame: pd.DataFrame, *, harmonics: bool, quasi: bool) -> tuple[float, float, float]:
    """Rate ratio of the smoking ban with its 95% interval, by statsmodels directly."""
    cols = [np.ones(len(frame)), frame["time"], frame["smokban"]]
    if harmonics:
        for k in (1, 2):
            cols += [np.sin(2 * np.pi * k * frame["month"] / 12), np.cos(2 * np.pi * k * frame["month"] / 12)]
    X = np.column_stack(cols)
    fit = sm.GLM(frame["aces"], X, family=sm.families.Poisson(), offset=np.log(frame["stdpop"])).fit()
    se = float(np.asarray(fit.bse)[2])
    crit = stats.norm.ppf(0.975)
    if quasi:
        mu = np.asarray(fit.fittedvalues)
        dispersion = np.sum((frame["aces"] - mu) ** 2 / mu) / (len(frame) - X.shape[1])  # Pearson, by hand
        se = se * np.sqrt(dispersion)
        crit = stats.t.ppf(0.975, len(frame) - X.shape[1])
    b = float(np.asarray(fit.params)[2])
    return float(np.exp(b)), float(np.exp(b - crit * se)), float(np.exp(b + crit * se))


@pytest.mark.parametrize("harmonics", [False, True])
@pytest.mark.parametrize("family, errors", [("poisson", "independent"), ("quasipoisson", "independent")])
def test_level_change_rate_ratio_matches_an_independent_fit(validation_dir, sicily, capsys, harmonics, family, errors):
    args = [
        "fit",
        str(validation_dir / "sicily_smokban.csv"),
        "--outcome",
        "aces",
        "--offset",
        "stdpop",
        "--time",
        "time",
        "--intervention",
        "37",
        "--no-slope-change",
        "--family",
        family,
        "--errors",
        errors,
        "--json",
    ]
    if harmonics:
        args += ["--seasonality", "fourier:2"]
    assert main(args) == 0
    level = next(t for t in json.loads(capsys.readouterr().out)["terms"] if t["term"] == "level_change")
    rr, low, high = reference(sicily, harmonics=harmonics, quasi=family == "quasipoisson")
    assert level["exp_estimate"] == pytest.approx(rr, rel=1e-7)
    assert level["exp_ci_low"] == pytest.approx(low, rel=1e-6)
    assert level["exp_ci_high"] == pytest.approx(high, rel=1e-6)
