"""Shared fixtures: paths to the shared validation data and a small simulator."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def validation_dir() -> Path:
    path = SHARED / "validation" / "data"
    if not path.is_dir():
        pytest.skip(f"shared validation data not found at {path}")
    return path


def ar1(rng: np.random.Generator, n: int, phi: float, sd: float) -> np.ndarray:
    """A stationary AR(1) series with innovation SD ``sd``."""
    u = np.empty(n)
    u[0] = rng.normal(0, sd / np.sqrt(1 - phi**2))
    for t in range(1, n):
        u[t] = phi * u[t - 1] + rng.normal(0, sd)
    return u


@pytest.fixture
def monthly_index() -> pd.PeriodIndex:
    return pd.period_range("2019-01", "2025-12", freq="M")
