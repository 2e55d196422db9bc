"""Outcome families: link functions and the quantities the covariance estimators need.

Fitting uses statsmodels' GLM; this module adds the pieces statsmodels does not expose in
one place: the inverse link and its derivative for effect contrasts, each observation's
sampling information on the linear-predictor scale, deviance residuals, and the maximum
likelihood estimate of the negative binomial shape ``theta`` (as R's ``MASS::theta.ml``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import statsmodels.api as sm
from scipy.special import digamma, expit, gammaln, polygamma, xlogy


class ThetaWarning(UserWarning):
    """The negative binomial shape could not be estimated cleanly (as R's ``theta.ml`` warns)."""


@dataclass(frozen=True)
class Family:
    """A GLM family as used by the ITS models.

    Attributes
    ----------
    name : str
        The sampling distribution: ``gaussian``, ``binomial``, ``poisson`` or ``negbin``
        (negative binomial NB2, ``Var(y) = mu + mu^2 / theta``).
    link : str
        Name of the link scale on which level and slope changes are reported.
    has_sampling_variance : bool
        True for count families, whose sampling variance is known given the mean (and,
        for ``negbin``, ``theta``); the covariance estimators then model only the extra
        variation.
    quasi : bool
        Quasi-likelihood version (``quasipoisson``, ``quasibinomial``): the same fit, with
        the Pearson-scaled covariance and ``t`` intervals by default, as R's ``summary.glm``.
    theta : float, optional
        Negative binomial shape. ``None`` in an unfitted ``negbin`` family means "estimate
        by maximum likelihood"; a fitted model's family carries the estimate.
    """

    name: str
    link: str
    has_sampling_variance: bool
    inverse: Callable[[np.ndarray], np.ndarray]
    inverse_derivative: Callable[[np.ndarray], np.ndarray]
    quasi: bool = False
    theta: float | None = None

    def __post_init__(self) -> None:
        if self.theta is not None and not (np.isfinite(self.theta) and self.theta > 0):
            raise ValueError(f"theta must be finite and positive, got {self.theta}")
        if self.theta is not None and self.name != "negbin":
            raise ValueError("only the negative binomial family has a theta")
        if self.quasi and self.name not in ("binomial", "poisson"):
            raise ValueError("quasi-likelihood versions exist for the binomial and Poisson families only")

    @property
    def label(self) -> str:
        """The name a user gives: ``quasipoisson`` for the quasi-Poisson family."""
        return f"quasi{self.name}" if self.quasi else self.name

    @property
    def default_cov_type(self) -> str:
        """Covariance estimator used when ``fit`` is not told: Pearson-scaled for quasi
        families (as R's ``summary`` of a quasi-likelihood fit), latent AR(1) otherwise."""
        return "quasi" if self.quasi else "latent-ar1"

    def with_theta(self, theta: float) -> Family:
        """The negative binomial family with its shape fixed (e.g. at the estimate)."""
        if self.name != "negbin":
            raise ValueError(f"the {self.label} family has no theta")
        return replace(self, theta=float(theta))

    def _theta(self) -> float:
        if self.theta is None:
            raise ValueError(
                "the negative binomial theta is not known before the fit; use a fitted "
                "model's family (results.family) or negative_binomial(theta=...)"
            )
        return self.theta

    def statsmodels_family(self) -> sm.families.Family:
        """The matching statsmodels family with its canonical link (log for ``negbin``)."""
        if self.name == "negbin":
            return sm.families.NegativeBinomial(alpha=1.0 / self._theta())
        return {
            "gaussian": sm.families.Gaussian,
            "binomial": sm.families.Binomial,
            "poisson": sm.families.Poisson,
        }[self.name]()

    def unbiased_mean(self, eta: np.ndarray, variance: np.ndarray) -> np.ndarray:
        """The inverse link of an estimate ``eta`` of the linear predictor, corrected for the
        bias that the curvature of the inverse link adds when ``eta`` has sampling variance
        ``variance``.

        ``inverse(eta)`` over-estimates ``inverse(eta_true)`` on average where the inverse
        link is convex (``E[exp(eta)] = exp(eta_true + v / 2)`` for a normal ``eta``). Log
        link: ``exp(eta - v / 2)``, unbiased for a normal estimate (the lognormal
        correction). Logit link: the second-order (delta-method) correction
        ``p - p (1 - p) (1 - 2 p) v / 2``, ``p = expit(eta)``, kept inside (0, 1) by
        falling back to ``p`` where it would leave it. Identity: ``eta``.

        Examples
        --------
        >>> import numpy as np
        >>> round(float(get_family("poisson").unbiased_mean(np.log(2.0), 0.04)), 4)
        1.9604
        >>> float(get_family("gaussian").unbiased_mean(2.0, 0.04))
        2.0
        """
        eta, variance = np.asarray(eta, dtype=float), np.maximum(np.asarray(variance, dtype=float), 0.0)
        if self.link == "identity":
            return eta + 0.0 * variance
        if self.link == "log":
            return np.exp(eta - variance / 2)
        p = self.inverse(eta)
        corrected = p - p * (1 - p) * (1 - 2 * p) * variance / 2
        return np.where((corrected > 0) & (corrected < 1), corrected, p)

    def mean_counts(self, eta: np.ndarray, size: np.ndarray | None) -> np.ndarray:
        """Expected outcome on the data scale: counts for count families, values otherwise."""
        mean = self.inverse(eta)
        return mean * size if size is not None else mean

    def mean_derivative(self, eta: np.ndarray, size: np.ndarray | None) -> np.ndarray:
        """``dmu/deta`` on the data scale (1 for Gaussian)."""
        if self.name == "gaussian":
            return np.ones_like(eta)
        return self.inverse_derivative(eta) * size

    def variance(self, mean: np.ndarray, size: np.ndarray | None) -> np.ndarray:
        """Sampling variance of a count given its mean (1 for Gaussian: the scale is
        estimated separately)."""
        if self.name == "gaussian":
            return np.ones_like(mean)
        if self.name == "binomial":
            return mean * (1 - mean / size)
        if self.name == "poisson":
            return mean
        return mean + mean**2 / self._theta()

    def information(self, eta: np.ndarray, size: np.ndarray | None) -> np.ndarray:
        """IRLS weight ``(dmu/deta)^2 / Var(y)`` per observation (1 for Gaussian).

        This is ``n p (1-p)`` (binomial), ``mu`` (Poisson) and ``mu / (1 + mu/theta)``
        (negative binomial with log link); its inverse is the sampling variance of the
        working response on the link scale.
        """
        if self.name == "gaussian":
            return np.ones_like(eta)
        if self.name in ("binomial", "poisson"):  # canonical links: the weight is dmu/deta
            return self.mean_derivative(eta, size)
        mean = self.mean_counts(eta, size)
        return mean / (1 + mean / self._theta())

    def deviance_residuals(self, y: np.ndarray, mean: np.ndarray, size: np.ndarray | None) -> np.ndarray:
        """Signed square roots of the unit deviances, as R's ``residuals(fit, "deviance")``."""
        y, mean = np.asarray(y, float), np.asarray(mean, float)
        if self.name == "gaussian":
            return y - mean
        if self.name == "poisson":
            unit = 2 * (xlogy(y, y / mean) - (y - mean))
        elif self.name == "binomial":
            unit = 2 * (xlogy(y, y / mean) + xlogy(size - y, (size - y) / (size - mean)))
        else:
            theta = self._theta()
            # log1p keeps the second term accurate when theta is large (the Poisson limit).
            unit = 2 * (xlogy(y, np.maximum(y, 1) / mean) - (y + theta) * np.log1p((y - mean) / (mean + theta)))
        return np.sign(y - mean) * np.sqrt(np.maximum(unit, 0.0))


def negative_binomial(theta: float | None = None) -> Family:
    """Negative binomial (NB2) family with log link; ``theta=None`` estimates the shape."""
    return Family("negbin", "log", True, np.exp, np.exp, theta=None if theta is None else float(theta))


def negbin_loglik(y: np.ndarray, mean: np.ndarray, theta: float) -> float:
    """NB2 log-likelihood, as the ``loglik`` helper of ``MASS::glm.nb``."""
    return float(
        np.sum(
            gammaln(theta + y)
            - gammaln(theta)
            - gammaln(y + 1)
            + theta * np.log(theta)
            + xlogy(y, mean + (y == 0))
            - (theta + y) * np.log(theta + mean)
        )
    )


def poisson_loglik(y: np.ndarray, mean: np.ndarray) -> float:
    """Poisson log-likelihood: the limit of :func:`negbin_loglik` as ``theta`` grows."""
    y, mean = np.asarray(y, float), np.asarray(mean, float)
    return float(np.sum(xlogy(y, mean) - mean - gammaln(y + 1)))


def overdispersion_score(y: np.ndarray, mean: np.ndarray) -> float:
    """Twice the score of the NB2 log-likelihood in ``alpha = 1 / theta`` at ``alpha = 0``.

    Expanding the NB2 log-likelihood around the Poisson limit gives
    ``loglik_NB(alpha) = loglik_Poisson + alpha / 2 * sum((y - mu)^2 - y) + O(alpha^2)``
    (the score behind Cameron & Trivedi's 1990 test for overdispersion), so this is
    ``sum((y - mu)^2 - y)``. At a Poisson maximum-likelihood fit the coefficients' own
    scores vanish, so it is also the slope of the profile likelihood: where it is not
    positive, the likelihood is maximised on the boundary ``alpha = 0`` (theta infinite,
    the Poisson model) and no finite theta exists to estimate.

    Examples
    --------
    >>> overdispersion_score(np.array([3.0, 5.0, 4.0]), np.array([4.0, 4.0, 4.0]))
    -10.0
    """
    y, mean = np.asarray(y, float), np.asarray(mean, float)
    return float(np.sum((y - mean) ** 2 - y))


def theta_ml(
    y: np.ndarray, mean: np.ndarray, *, limit: int = 25, eps: float = np.finfo(float).eps ** 0.25
) -> tuple[float, float]:
    """Maximum likelihood estimate of the NB2 shape given the means, with its standard error.

    Newton-Raphson on the profile score from the moment start ``n / sum((y/mu - 1)^2)``,
    step for step as R's ``MASS::theta.ml`` (same start, tolerance and iteration limit), so
    that the alternating fit of :func:`analysis.its.model` reproduces ``MASS::glm.nb``.
    Warns (:class:`ThetaWarning`) where R warns.
    """
    y, mean = np.asarray(y, float), np.asarray(mean, float)

    def score(th: float) -> float:
        return float(
            np.sum(digamma(th + y) - digamma(th) + np.log(th) + 1 - np.log(th + mean) - (y + th) / (mean + th))
        )

    def info(th: float) -> float:
        return float(
            np.sum(-polygamma(1, th + y) + polygamma(1, th) - 1 / th + 2 / (mean + th) - (y + th) / (mean + th) ** 2)
        )

    theta = len(y) / float(np.sum((y / mean - 1) ** 2))
    it, step, information = 0, 1.0, np.nan
    while (it := it + 1) < limit and abs(step) > eps:
        theta = abs(theta)
        information = info(theta)
        if not np.isfinite(information) or information == 0:
            # The profile is flat: theta has run off towards infinity (no overdispersion).
            # R's division gives Inf and the loop ends at its limit; so does this one.
            it = limit
            break
        step = score(theta) / information
        theta += step
    if theta < 0:
        theta = 0.0
        warnings.warn("theta.ml: estimate truncated at zero", ThetaWarning, stacklevel=2)
    if it == limit:
        warnings.warn(
            "theta.ml: iteration limit reached (the data may show no overdispersion: a Poisson model may fit as well)",
            ThetaWarning,
            stacklevel=2,
        )
    return float(theta), float(np.sqrt(1 / information)) if information > 0 else float("nan")


def _expit_derivative(eta: np.ndarray) -> np.ndarray:
    p = expit(eta)
    return p * (1 - p)


_BINOMIAL = Family("binomial", "logit", True, expit, _expit_derivative)
_POISSON = Family("poisson", "log", True, np.exp, np.exp)

FAMILIES: dict[str, Family] = {
    "gaussian": Family("gaussian", "identity", False, lambda e: np.asarray(e, float), np.ones_like),
    "binomial": _BINOMIAL,
    "poisson": _POISSON,
    "negbin": negative_binomial(),
    "quasibinomial": replace(_BINOMIAL, quasi=True),
    "quasipoisson": replace(_POISSON, quasi=True),
}


def get_family(family: str | Family) -> Family:
    """Look up a family by name (``gaussian``, ``binomial``, ``poisson``, ``negbin``,
    ``quasibinomial``, ``quasipoisson``); a :class:`Family` is returned as is."""
    if isinstance(family, Family):
        return family
    try:
        return FAMILIES[family]
    except KeyError:
        raise ValueError(f"unknown family {family!r}; choose one of {sorted(FAMILIES)}") from None
