"""Outcome families: link functions and the quantities the covariance estimators need.

Fitting uses statsmodels' GLM; this module adds the pieces statsmodels does not expose in
one place: the inverse link and its derivative for effect contrasts, and each
observation's sampling information on the linear-predictor scale.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import statsmodels.api as sm
from scipy.special import expit


@dataclass(frozen=True)
class Family:
    """A GLM family as used by the ITS models.

    Attributes
    ----------
    name : str
        ``gaussian``, ``binomial`` or ``poisson``.
    link : str
        Name of the link scale on which level and slope changes are reported.
    has_sampling_variance : bool
        True for count families, whose binomial or Poisson sampling variance is known
        given the mean; the covariance estimators then model only the extra variation.
    """

    name: str
    link: str
    has_sampling_variance: bool
    inverse: Callable[[np.ndarray], np.ndarray]
    inverse_derivative: Callable[[np.ndarray], np.ndarray]

    def statsmodels_family(self) -> sm.families.Family:
        """The matching statsmodels family with its canonical link."""
        return {
            "gaussian": sm.families.Gaussian,
            "binomial": sm.families.Binomial,
            "poisson": sm.families.Poisson,
        }[self.name]()

    def mean_counts(self, eta: np.ndarray, size: np.ndarray | None) -> np.ndarray:
        """Expected outcome on the data scale: counts for count families, values otherwise."""
        mean = self.inverse(eta)
        return mean * size if size is not None else mean

    def information(self, eta: np.ndarray, size: np.ndarray | None) -> np.ndarray:
        """IRLS weight ``(dmu/deta)^2 / Var(y)`` per observation (1 for Gaussian).

        For canonical links this is ``n p (1-p)`` (binomial) and ``mu`` (Poisson); its
        inverse is the sampling variance of the working response on the link scale.
        """
        if self.name == "gaussian":
            return np.ones_like(eta)
        return self.inverse_derivative(eta) * size


def _expit_derivative(eta: np.ndarray) -> np.ndarray:
    p = expit(eta)
    return p * (1 - p)


FAMILIES: dict[str, Family] = {
    "gaussian": Family("gaussian", "identity", False, lambda e: np.asarray(e, float), np.ones_like),
    "binomial": Family("binomial", "logit", True, expit, _expit_derivative),
    "poisson": Family("poisson", "log", True, np.exp, np.exp),
}


def get_family(name: str) -> Family:
    """Look up a family by name (``gaussian``, ``binomial``, ``poisson``)."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise ValueError(f"unknown family {name!r}; choose one of {sorted(FAMILIES)}") from None
