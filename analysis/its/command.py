"""The ``fit`` command: one ITS model per file (or per group of a long file) from a table.

Turns command-line options into a design and a model, fits it, and returns JSON-ready
records with the stable term names of the command-line contract.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from analysis.its.autoregressive import parse_order
from analysis.its.design import ITSDesign
from analysis.its.model import SegmentedRegression, check_covariates

#: Internal coefficient names -> names in the command-line contract.
TERM_NAMES = {"const": "intercept", "time": "pre_slope", "group": "diff_intercept", "group_time": "diff_pre_slope"}
QUASI = {"quasipoisson": "poisson", "quasibinomial": "binomial"}
#: --errors values -> covariance estimators of the GLM fit.
COVARIANCE_ERRORS = {"newey-west": "newey-west", "latent-ar1": "latent-ar1"}
FAMILIES = ("gaussian", "poisson", "quasipoisson", "negbin", "binomial", "quasibinomial")
ERRORS = ("independent", "ols", "newey-west", "latent-ar1", "prais-winsten", "reml-ar1", "arima")


class CommandError(ValueError):
    """Options or data that the fit command cannot use; the message says what to change."""


@dataclass(frozen=True, kw_only=True)
class FitOptions:
    """Options of ``python -m analysis fit`` (see ``--help``)."""

    outcome: str
    interventions: tuple[str, ...]
    time: str | None = None
    family: str | None = None
    offset: str | None = None
    trials: str | None = None
    errors: str | None = None
    lags: int | None = None
    stata_newey: bool = False
    seasonality: str = "none"
    slope_change: bool = True
    first_post_time: int = 0
    lagged_residual: bool = False
    exclude: tuple[str, ...] = ()
    group: str | None = None
    treated: str | None = None
    design: str = "segmented"
    level: float = 0.95
    covariates: tuple[str, ...] = ()
    arima_order: str | tuple[int, ...] = (1, 0, 0)
    seasonal_order: str | tuple[int, ...] = (0, 0, 0, 0)
    spring_festival: bool = False
    shocks: tuple[str, ...] = ()
    calendar: str = "none"
    extra: dict = field(default_factory=dict)

    def calendar_terms(self) -> dict:
        """Spring Festival and shock options of the design: off unless given, or the
        ``calendar``'s terms where it is given and they are not."""
        given = self.calendar != "none"
        return {
            "spring_festival": None if given and not self.spring_festival else self.spring_festival,
            "shocks": None if given and not self.shocks else tuple(self.shocks),
            "calendar": self.calendar,
        }

    def resolved_family(self) -> str:
        if self.family is not None:
            return self.family
        if self.offset and self.trials:
            raise CommandError("give either --offset (a rate) or --trials (a proportion), not both")
        return "quasipoisson" if self.offset else "quasibinomial" if self.trials else "gaussian"

    def resolved_errors(self) -> str:
        if self.errors is not None:
            return self.errors
        # With the lagged residual the adjustment is the covariate itself (Bryant et al.);
        # otherwise the default supported by the coverage study (docs/coverage.md).
        return "independent" if self.lagged_residual else "latent-ar1"


def _column(frame: pd.DataFrame, name: str | None, what: str, source: str) -> pd.Series:
    if name not in frame.columns:
        raise CommandError(f"{source}: no column {name!r} for {what}; columns are {list(frame.columns)}")
    return frame[name]


def _time_values(frame: pd.DataFrame, options: FitOptions, source: str) -> pd.Series:
    if options.time is not None:
        return _column(frame, options.time, "--time", source)
    if "time" in frame.columns:
        return frame["time"]
    raise CommandError(f"{source}: no --time given and no column named 'time'")


def _interruption(value: str) -> int | str:
    text = str(value).strip()
    return int(text) if text.lstrip("-").isdigit() else text


def fit_table(frame: pd.DataFrame, options: FitOptions, *, source: str = "<table>") -> list[dict]:
    """Fit the model to ``frame`` and return one JSON-ready record (a list for uniformity)."""
    family = options.resolved_family()
    if family not in FAMILIES:
        raise CommandError(f"--family must be one of {list(FAMILIES)}, got {family!r}")
    errors = options.resolved_errors()
    if errors not in ERRORS:
        raise CommandError(f"--errors must be one of {list(ERRORS)}, got {errors!r}")
    if family != "gaussian" and errors in ("ols", "prais-winsten", "reml-ar1", "arima"):
        raise CommandError(
            f"--errors {errors} is for Gaussian models; with --family {family} use "
            "independent, newey-west, latent-ar1 or --lagged-residual"
        )
    if errors != "arima" and (
        options.arima_order not in ((1, 0, 0), "1,0,0") or any(parse_order(options.seasonal_order, seasonal=True))
    ):
        raise CommandError("--arima-order and --seasonal-order go with --errors arima")
    time = _time_values(frame, options, source)
    design = ITSDesign(
        interruptions=tuple(_interruption(t) for t in options.interventions),
        seasonality=options.seasonality,
        period=None if options.seasonality == "none" else 12,
        **options.calendar_terms(),
        exclude=tuple(_interruption(t) for t in options.exclude),
        first_post_time=options.first_post_time,
        slope_change=options.slope_change,
    )
    y = pd.to_numeric(_column(frame, options.outcome, "--outcome", source), errors="coerce")
    bad = y.index[y.isna()]
    if len(bad):
        raise CommandError(
            f"{source}: column {options.outcome!r} has missing or non-numeric values in rows "
            f"{[int(i) + 2 for i in bad[:10]]}"
        )
    kwargs: dict = {}
    base_family = QUASI.get(family, family)
    if options.offset:
        kwargs["exposure"] = _column(frame, options.offset, "--offset", source).to_numpy(float)
    if options.trials:
        kwargs["trials"] = _column(frame, options.trials, "--trials", source).to_numpy(float)
    if options.group is not None:
        if options.treated is None:
            raise CommandError("--group needs --treated VALUE (the treated unit)")
        groups = _column(frame, options.group, "--group", source).astype(str)
        if str(options.treated) not in set(groups):
            raise CommandError(f"{source}: --treated {options.treated!r} is not a value of column {options.group!r}")
        # Rows stay in file order (the order Stata's newey, force sees for itsa's model).
        kwargs["group"] = (groups == str(options.treated)).to_numpy(float)
        kwargs["series"] = groups.to_numpy()
    if options.covariates:
        kwargs["covariates"] = covariate_frame(frame, options.covariates, source)
    if family == "negbin" and "exposure" not in kwargs:
        kwargs["exposure"] = np.ones(len(y))  # counts without a denominator: offset log(1) = 0
    if options.design == "forecast":
        return [forecast_record(y, time, options, family=family, base_family=base_family, errors=errors, kwargs=kwargs)]
    model = SegmentedRegression(y.to_numpy(float), time=time.to_numpy(), design=design, family=family, **kwargs)
    if errors == "newey-west":
        # --stata-newey reproduces Stata (newey's n/(n-k) scaling; itsa's multiple-group
        # model runs newey with force, the stacked rows as one sequence).
        results = model.fit(
            cov_type="newey-west",
            lags=options.lags,
            small_sample=options.stata_newey,
            across_series=options.stata_newey,
            lagged_residual=options.lagged_residual,
        )
    elif errors in COVARIANCE_ERRORS:
        results = model.fit(cov_type=COVARIANCE_ERRORS[errors], lagged_residual=options.lagged_residual)
    elif errors in ("independent", "ols"):
        results = model.fit(cov_type="quasi" if family in QUASI else "model", lagged_residual=options.lagged_residual)
    else:
        if options.lagged_residual:
            raise CommandError(f"--lagged-residual does not combine with --errors {errors}")
        method = {"reml-ar1": "reml-ar"}.get(errors, errors)
        arima = (
            {
                "order": "auto" if options.arima_order == "auto" else parse_order(options.arima_order),
                "seasonal_order": parse_order(options.seasonal_order, seasonal=True),
            }
            if errors == "arima"
            else {}
        )
        results = model.fit(errors=method, **arima)
    out = record(results, family=family, errors=errors, level=options.level)
    if errors == "arima":
        out.update(arima_record(results, model))
    return [out]


def covariate_frame(frame: pd.DataFrame, names: Sequence[str], source: str) -> pd.DataFrame:
    """The ``--covariate`` columns, checked (:func:`analysis.its.model.check_covariates`)
    with the file's line numbers in the message (the header is line 1)."""
    columns = pd.DataFrame({name: _column(frame, name, "--covariate", source) for name in names})
    try:
        return check_covariates(columns, pd.RangeIndex(len(frame)), row_numbers=frame.index + 2)
    except ValueError as err:
        raise CommandError(f"{source}: {err}") from None


def arima_record(results, model: SegmentedRegression) -> dict:
    """ARMA parameters (R's names, estimate and SE), log-likelihood, AIC, and the design
    terms absorbed by differencing, for the JSON of ``--errors arima``."""
    details = results.cov_details
    arma = [{"term": k, "estimate": details[k], "se": details[f"{k}_se"]} for k in details if f"{k}_se" in details]
    absorbed = [c for c in model.design_data().X.columns if c not in results.params.index]
    out = {"arma": arma, "sigma2": details["sigma2"], "loglik": details["loglik"], "aic": details["aic"]}
    if "order_p" in details:  # --arima-order auto
        out["order"] = [int(details[k]) for k in ("order_p", "order_d", "order_q")]
        out["seasonal_order"] = [int(details[k]) for k in ("seasonal_p", "seasonal_d", "seasonal_q", "seasonal_period")]
        out["aicc_pre_period"] = details["aicc_pre_period"]
    if absorbed:
        out["absorbed_by_differencing"] = absorbed
    return out


def record(results, *, family: str, errors: str, level: float = 0.95) -> dict:
    """The JSON object of one fit: n_obs, family, errors, dispersion and terms."""
    terms = []
    exp = results.family.link in ("log", "logit")
    for name in results.params.index:
        c = results.coefficient(name, level=level)
        term = TERM_NAMES.get(name, name.replace("group_", "diff_"))
        row = {
            "term": term,
            "estimate": c.estimate,
            "se": c.se,
            "ci_low": c.ci_low,
            "ci_high": c.ci_high,
            "p_value": c.p_value,
        }
        if exp:
            row.update(
                exp_estimate=math.exp(c.estimate), exp_ci_low=math.exp(c.ci_low), exp_ci_high=math.exp(c.ci_high)
            )
        terms.append(row)
    out = {"n_obs": int(results.fit_mask.sum()), "family": family, "errors": errors, "terms": terms}
    if family != "gaussian" or errors in ("independent", "ols"):
        out["dispersion"] = results.pearson_dispersion
    return out


def forecast_record(
    y: pd.Series, time: pd.Series, options: FitOptions, *, family: str, base_family: str, errors: str, kwargs: dict
) -> dict:
    """The counterfactual-forecast design: fit on the pre-period, forecast the post-period;
    terms are the mean, cumulative and relative mean effect over the post-period."""
    from analysis.its.forecast import ForecastITS

    if len(options.interventions) != 1:
        raise CommandError("--design forecast takes exactly one --intervention")
    if options.group is not None:
        raise CommandError("--design forecast does not take --group")
    cov = {"independent": None, "ols": None}.get(errors, errors)
    if cov not in (None, "newey-west", "latent-ar1"):
        raise CommandError(f"--design forecast supports --errors independent, newey-west or latent-ar1, not {errors}")
    model = ForecastITS(
        y.to_numpy(float),
        time=time.to_numpy(),
        interruption=_interruption(options.interventions[0]),
        family=family,
        seasonality=options.seasonality,
        period=None if options.seasonality == "none" else 12,
        **options.calendar_terms(),
        **{k: v for k, v in kwargs.items() if k in ("trials", "exposure", "covariates")},
    )
    res = model.fit(cov_type=cov, level=options.level)
    terms = []
    for name, contrast in (
        ("mean_effect", res.average_effect(level=options.level)),
        ("cumulative_effect", res.cumulative_effect(level=options.level)),
        ("relative_mean_effect", res.average_effect(relative=True, level=options.level)),
    ):
        terms.append(
            {
                "term": name,
                "estimate": contrast.estimate,
                "se": contrast.se,
                "ci_low": contrast.ci_low,
                "ci_high": contrast.ci_high,
                "p_value": contrast.p_value,
            }
        )
    return {"n_obs": int(len(y)), "family": family, "errors": errors, "design": "forecast", "terms": terms}


def fit_file(frame: pd.DataFrame, options: FitOptions, *, by: str | None = None, source: str = "<table>") -> list[dict]:
    """Fit the whole table, or each group of column ``by`` separately (each record then
    carries the group value). A failing group is reported in its record, the others go on."""
    if by is None:
        return fit_table(frame, options, source=source)
    if by not in frame.columns:
        raise CommandError(f"{source}: no column {by!r} for --by; columns are {list(frame.columns)}")
    records = []
    for value, part in frame.groupby(by, sort=True):
        try:
            out = fit_table(part.reset_index(drop=True), options, source=f"{source} [{by}={value}]")[0]
        except (CommandError, ValueError) as err:
            out = {"error": str(err)}
        records.append({by: value.item() if hasattr(value, "item") else value, **out})
    return records


def parse_interventions(values: Sequence[str]) -> tuple[str, ...]:
    if not values:
        raise CommandError("give at least one --intervention T (the first post-interruption time)")
    return tuple(values)
