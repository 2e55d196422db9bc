# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 3 · Counts, rates and proportions; seasonality and the moving Spring Festival（计数、率与比例；季节性与春节）
#
# Most of the plan's indicators are not averages but **events out of a denominator**: deaths
# among surgical patients (a proportion, ‰), bloodstream infections per 1000 catheter-days (a
# rate). Modelling the percentage with a straight line throws away what we know about how such
# numbers vary. This notebook shows
#
# 1. rates as Poisson counts with the denominator as **exposure** (an offset),
# 2. **overdispersion**: more variation than Poisson allows, and what to do about it,
# 3. proportions with a **binomial** model on the logit scale, and effects back in ‰ and in
#    events averted,
# 4. **seasonality** and the **Spring Festival**, which moves between January and February and
#    that month-of-year dummies alone cannot capture.

# %%
# %matplotlib inline
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from analysis.data.synthetic import generate
from analysis.its import ITSDesign, SegmentedRegression, diagnose
from analysis.its.compare import compare_methods, side_by_side
from analysis.registry import get_indicator, timeline

pd.set_option("display.precision", 4)

# %% [markdown]
# ## Two indicators of Shanghai, with known truth
#
# The registry says what each indicator is and which model family fits it.

# %%
data = generate(seed=3, provinces=["310000"], indicators=[32, 34])
start = pd.Period(data.plan_dates.loc[0, "start_month"], "M")
truth = data.truth.set_index("indicator")
pd.DataFrame(
    [
        {
            "indicator": n,
            "name": get_indicator(n).name_en,
            "measure": get_indicator(n).measure,
            "unit": get_indicator(n).unit,
            "family": get_indicator(n).family,
            "true effect 2025-09 (ratio − 1)": truth.loc[n, "effect_end_relative"],
        }
        for n in (32, 34)
    ]
)

# %%
crbsi = data.panel[data.panel["indicator"] == 34].reset_index(drop=True)
months = pd.PeriodIndex(crbsi["month"], freq="M")
infections = crbsi["numerator"].to_numpy(float)
catheter_days = crbsi["denominator"].to_numpy(float)
when = months.to_timestamp()
fig, axes = plt.subplots(1, 2, figsize=(11, 3))
axes[0].plot(when, catheter_days / 1000, color="#4D4D4D")
axes[0].set_ylabel("catheter-days (thousands)")
axes[0].set_title("Exposure: catheter-days per month")
axes[1].plot(when, 1000 * infections / catheter_days, "o-", ms=3, lw=0.8, color="#0072B2")
axes[1].set_ylabel("infections per 1000 catheter-days")
axes[1].set_title("CRBSI rate")
for ax in axes:
    ax.axvline(start.to_timestamp(), color="#CC79A7")
plt.show()

# %% [markdown]
# ## Rates: Poisson with an offset
#
# Infections $Y_t$ are counts; with $E_t$ catheter-days the Poisson model is
#
# $$\log E[Y_t] = \log E_t + \beta_0 + \beta_1\,\text{time}_t + \beta_2\,\text{level}_t + \beta_3\,\text{slope}_t + \dots$$
#
# $\log E_t$ enters with coefficient 1 (an **offset**), so the model is for the *rate*
# $Y_t/E_t$, and $e^{\beta_2}$ is the rate ratio at the start of the plan. Without the offset
# the model describes counts, and anything that changes the exposure (the spring-2022
# lockdown in Shanghai, growing hospital activity) is confounded with the plan.

# %%
design = ITSDesign(interruption=start, washin=3, calendar="china")
rate_model = SegmentedRegression(infections, time=months, design=design, family="poisson", exposure=catheter_days)
count_model = SegmentedRegression(
    infections, time=months, design=design, family="poisson", exposure=np.ones(len(months))
)
rows = []
for label, model in (("rate (offset: catheter-days)", rate_model), ("count (no offset)", count_model)):
    res = model.fit(cov_type="latent-ar1")
    c = res.coefficient("level_change")
    rows.append(
        {
            "model": label,
            "level change (log)": c.estimate,
            "rate ratio at start": np.exp(c.estimate),
            "95% CI": f"{np.exp(c.ci_low):.2f} – {np.exp(c.ci_high):.2f}",
        }
    )
rows.append(
    {
        "model": "truth",
        "level change (log)": truth.loc[34, "level_change"],
        "rate ratio at start": np.exp(truth.loc[34, "level_change"]),
        "95% CI": "",
    }
)
pd.DataFrame(rows).set_index("model")

# %% [markdown]
# ## Overdispersion
#
# A Poisson model says the variance equals the mean. Real counts vary more (between-month
# heterogeneity, the AR(1) noise of notebook 2): the **Pearson dispersion** (Pearson χ² / df)
# is then above 1 and Poisson standard errors are too small. Remedies:
#
# - `quasi`: scale the covariance by the Pearson dispersion (quasi-Poisson);
# - `negbin`: a negative binomial family, whose variance is $\mu + \mu^2/\theta$;
# - `latent-ar1`: the package default, which models extra variation *and* its autocorrelation;
# - `lagged-residual`: the lagged deviance residual as a covariate (Bryant et al. 2022).

# %%
rate_fit = rate_model.fit(cov_type="model")
print(f"Pearson dispersion of the Poisson fit: {rate_fit.pearson_dispersion:.2f}")
diagnose(rate_fit).overdispersion[["test", "estimate", "statistic", "p_value"]]

# %%
methods = compare_methods(rate_model, at="2025-09", unit_scale=1000)
side_by_side(methods, value="se").loc[["level_change", "effect_relative"]]

# %%
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    negbin = SegmentedRegression(infections, time=months, design=design, family="negbin", exposure=catheter_days).fit(
        cov_type="model"
    )
for warning in caught:  # here: no overdispersion to estimate, θ runs off to infinity
    print("warning:", warning.message)
print(
    f"negative binomial θ = {negbin.cov_details['theta']:.3g} (large θ: close to Poisson); "
    f"level change {negbin.params['level_change']:.3f} (SE {negbin.std_errors['level_change']:.3f})"
)

# %% [markdown]
# Here the dispersion is close to 1: model-based, quasi, lagged-residual and latent AR(1)
# standard errors agree (Newey-West is again the smallest, as in notebook 2), and the negative
# binomial finds nothing to add to Poisson. As the dispersion grows, model-based Poisson errors
# become too small and the others widen. Check the dispersion of every series (the pipeline
# records it in `tables/diagnostics.csv`).
#
# ## Proportions: binomial on the logit scale
#
# Perioperative deaths $Y_t$ among $n_t$ surgical patients: $Y_t \sim \text{Binomial}(n_t, p_t)$
# with $\operatorname{logit} p_t$ linear in the ITS terms. The coefficients are log odds ratios;
# `effect_at(..., unit_scale=1000)` turns the fitted probabilities into ‰, and
# `cumulative_effect` counts the deaths averted with the observed denominators.

# %%
deaths_rows = data.panel[data.panel["indicator"] == 32].reset_index(drop=True)
deaths = deaths_rows["numerator"].to_numpy(float)
surgeries = deaths_rows["denominator"].to_numpy(float)
mortality = SegmentedRegression(deaths, time=months, design=design, family="binomial", trials=surgeries)
mortality_fit = mortality.fit()
absolute, relative = mortality_fit.effect_at("2025-09", unit_scale=1000)
window = pd.period_range(start + 3, "2025-09", freq="M")  # from the end of the wash-in
averted = mortality_fit.cumulative_effect(window)
pd.DataFrame(
    {
        "estimate": [absolute.estimate, relative.estimate, averted.estimate],
        "ci_low": [absolute.ci_low, relative.ci_low, averted.ci_low],
        "ci_high": [absolute.ci_high, relative.ci_high, averted.ci_high],
        "truth": [
            truth.loc[32, "effect_end_absolute"],
            truth.loc[32, "effect_end_relative"],
            truth.loc[32, "effect_cumulative"],
        ],
    },
    index=["effect in 2025-09 (‰)", "effect in 2025-09 (ratio − 1)", f"extra deaths {window[0]}..{window[-1]}"],
)

# %% [markdown]
# A negative number of extra deaths is deaths averted. With about ten deaths a month, one
# province's interval is wide; the national picture comes from pooling provinces (notebook 5).
#
# ## Seasonality and the moving Spring Festival
#
# Elective surgery collapses during the Spring Festival holiday, which falls in January in some
# years and February in others. A February dummy cannot follow it; the number of holiday days
# in each month can.

# %%
calendar = pd.period_range("2019-01", "2025-12", freq="M")
days = timeline.spring_festival_days(calendar)
table = pd.DataFrame({"year": calendar.year, "month": calendar.month, "days": days.to_numpy()})
table[table["month"] <= 2].pivot(index="year", columns="month", values="days").rename(columns={1: "Jan", 2: "Feb"})

# %% [markdown]
# The number of surgical patients (the denominator above) is itself a count series. Fit it
# with month dummies, with and without the holiday regressor, and look at the residuals of
# January and February. (Volumes of whole provinces vary far more than Poisson: use the
# quasi-Poisson family.)

# %%
residuals = {}
for spring_festival in (False, True):
    volume_design = ITSDesign(interruption=start, washin=3, spring_festival=spring_festival, calendar="china")
    fit = SegmentedRegression(
        surgeries, time=months, design=volume_design, family="quasipoisson", exposure=np.ones(len(months))
    ).fit()
    residuals[spring_festival] = fit.residuals
    if spring_festival:
        per_day = fit.params["spring_festival_days"]
        print(
            f"one holiday day changes surgical volume by {np.expm1(per_day):+.1%}; "
            f"a 7-day holiday month by {np.expm1(7 * per_day):+.0%}"
        )
# Shock months (COVID-19) have their own dummy and a residual of exactly zero: leave them out.
shock_months = pd.PeriodIndex([str(m) for m in timeline.COVID_SHOCK_MONTHS], freq="M")
winter = (residuals[False].index.month <= 2) & ~residuals[False].index.isin(shock_months)
pd.DataFrame(
    {
        "holiday days": days.reindex(residuals[False].index)[winter].to_numpy(),
        "month dummies only": residuals[False][winter].to_numpy(),
        "+ holiday days": residuals[True][winter].to_numpy(),
    },
    index=residuals[False].index[winter].astype(str),
).round(1).T

# %% [markdown]
# With month dummies only, the residuals (Pearson, in standard units) swing with the holiday:
# positive in a January without the festival, negative in the month with it, and split when
# the holiday straddles both (2025). The holiday regressor removes most of the swing. The synthetic truth for elective-heavy surgical volume is about −28% in a full holiday
# month. Left in the residuals, the swing would inflate the standard errors and, if the
# post-period happens to hold more January festivals than the pre-period, bias the effect.

# %% [markdown]
# ## Exercise
#
# 1. Refit the perioperative mortality model with two Fourier pairs instead of month dummies
#    (`seasonality="fourier:2"`) and without the holiday regressor. How do the 2025-09 relative
#    effect and its interval change?
# 2. Compute the absolute effect on the CRBSI *rate* in 2025-09, in infections per 1000
#    catheter-days, and compare it with the truth.
#
# Write your code in the next cell, then compare with the solution.

# %%
# Your code here.

# %% [markdown]
# ### Solution

# %%
fourier = ITSDesign(interruption=start, washin=3, seasonality="fourier:2", spring_festival=False, calendar="china")
fourier_fit = SegmentedRegression(deaths, time=months, design=fourier, family="binomial", trials=surgeries).fit()
_, fourier_relative = fourier_fit.effect_at("2025-09")
print(f"month dummies + holiday: {relative.estimate:+.3f} ({relative.ci_low:+.3f}, {relative.ci_high:+.3f})")
print(
    f"2 Fourier pairs:         {fourier_relative.estimate:+.3f} ({fourier_relative.ci_low:+.3f}, "
    f"{fourier_relative.ci_high:+.3f})"
)

crbsi_absolute, _ = rate_model.fit().effect_at("2025-09", unit_scale=1000)
print(
    f"CRBSI in 2025-09: {crbsi_absolute.estimate:+.3f} per 1000 catheter-days "
    f"({crbsi_absolute.ci_low:+.3f}, {crbsi_absolute.ci_high:+.3f}); "
    f"truth {truth.loc[34, 'effect_end_absolute']:+.3f}"
)

# %% [markdown]
# Mortality has only a mild season, so a smoother seasonal model with fewer parameters changes
# little (and gains a few residual degrees of freedom). The rate effect is read in the
# indicator's display unit because `unit_scale` multiplies the modelled rate per catheter-day
# by 1000, exactly as the pipeline does for the report.
