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
# # 1 · Interrupted time series from scratch（从零开始的中断时间序列）
#
# An interrupted time series (ITS) asks: *after the plan started, did the indicator move away
# from where its own past said it was heading?* The answer is a comparison between what we
# observe and a **counterfactual**, the path the series would have followed without the plan,
# extrapolated from the pre-plan trend.
#
# In this notebook you will
#
# 1. take one synthetic series whose true plan effect is known,
# 2. build the segmented-regression design by hand and fit it with ordinary least squares,
# 3. check that `analysis.its.SegmentedRegression` gives the same coefficients,
# 4. read the **level change** and **slope change**, draw the counterfactual and compute the
#    effect at the end of the plan (2025-09), and compare everything with the truth.
#
# Everything runs on synthetic data from `analysis.data.synthetic.generate`; the numbers are
# illustrations, not facts about Chinese hospitals.

# %%
# %matplotlib inline
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from analysis.data.synthetic import generate
from analysis.its import ITSDesign, SegmentedRegression
from analysis.registry import get_indicator
from analysis.report.fonts import use_cjk_font

use_cjk_font()  # Chinese labels render with Noto Sans CJK SC (and fail loudly without it)
pd.set_option("display.precision", 4)

# %% [markdown]
# ## The data: one province, one indicator, known truth
#
# Indicator 9 is the average ambulance response time in minutes (平均急救响应时间); lower is
# better. `generate` returns the panel in the package's data contract, each province's plan
# start, and the **truth** behind every series.

# %%
data = generate(seed=11, provinces=["340000"], indicators=[9])
indicator = get_indicator(9)
series = data.panel.copy()
months = pd.PeriodIndex(series["month"], freq="M")
y = series["value"].to_numpy(float)
start = pd.Period(data.plan_dates.loc[0, "start_month"], "M")
truth = data.truth.iloc[0]
print(f"{indicator.name_en} ({indicator.name_zh}), unit: {indicator.unit}, better: {indicator.direction}")
print(f"Anhui's plan start: {start}; {len(series)} months from {months[0]} to {months[-1]}")
truth[["level_change", "slope_change", "effect_end_absolute", "effect_end_relative", "washin_months"]]

# %%
fig, ax = plt.subplots(figsize=(9, 3.2))
ax.plot(months.to_timestamp(), y, "o-", ms=3, lw=0.8, color="#4D4D4D", label="observed")
ax.axvline(start.to_timestamp(), color="#CC79A7", label="plan start (Anhui)")
ax.set_ylabel("response time (minutes)")
ax.set_title("Indicator 9 in Anhui: monthly mean ambulance response time")
ax.legend(frameon=False)
plt.show()

# %% [markdown]
# ## The segmented regression, by hand
#
# The classic ITS model (Wagner et al. 2002) for month $t$ is
#
# $$Y_t = \beta_0 + \beta_1\,\text{time}_t + \beta_2\,\text{level}_t + \beta_3\,\text{slope}_t + \text{calendar terms} + e_t$$
#
# - $\text{time}_t$: months since the start (negative before it), so $\beta_1$ is the pre-plan trend;
# - $\text{level}_t = 1$ from the start month on: $\beta_2$ is the **level change** (an immediate jump);
# - $\text{slope}_t$ = months since the start (0 before): $\beta_3$ is the **slope change** per month.
#
# Real monthly data also need calendar terms: month-of-year dummies (seasonality), the number of
# Spring Festival holiday days in the month (the holiday moves between January and February) and
# one dummy per COVID-19 shock month. And provinces did not switch on their plan overnight: a
# 3-month **wash-in** after the start is left out of the fit.
#
# First the four core columns, built with numpy:

# %%
t = np.array([(m - start).n for m in months], dtype=float)  # months since the start
core = pd.DataFrame(
    {"const": 1.0, "time": t, "level_change": (t >= 0).astype(float), "slope_change": np.where(t >= 0, t, 0.0)},
    index=months.astype(str),
)
core.loc["2023-05":"2023-10"]

# %% [markdown]
# `ITSDesign` builds the same columns, plus the calendar terms, so you never have to; its
# `fit_mask` says which months enter the fit (all but the wash-in).

# %%
design = ITSDesign(interruption=start, washin=3, calendar="china")
X = design.matrix(months)
assert np.allclose(X[["const", "time", "level_change", "slope_change"]].to_numpy(), core.to_numpy())
print(f"{X.shape[1]} columns:", ", ".join(X.columns))
fit_rows = design.fit_mask(months)
print(f"months fitted: {fit_rows.sum()} of {len(months)} (the wash-in {start}..{start + 2} is left out)")

# %% [markdown]
# Ordinary least squares is one line of linear algebra: $\hat\beta = (X'X)^{-1}X'y$ on the fitted rows.

# %%
beta_by_hand, *_ = np.linalg.lstsq(X.to_numpy()[fit_rows], y[fit_rows], rcond=None)
beta_by_hand = pd.Series(beta_by_hand, index=X.columns)
beta_by_hand[["const", "time", "level_change", "slope_change"]]

# %% [markdown]
# ## The same model with `SegmentedRegression`
#
# The package's model does the bookkeeping (design, wash-in, families, standard errors,
# effects, counterfactuals). With a Gaussian outcome its coefficients are exactly the OLS ones.

# %%
model = SegmentedRegression(y, time=months, design=design)
result = model.fit(cov_type="model")  # model-based (OLS) standard errors, for now: see notebook 2
assert np.allclose(result.params.to_numpy(), beta_by_hand[result.params.index].to_numpy())
result.summary_frame().set_index("measure").loc[["level_change", "slope_change"]]

# %% [markdown]
# How close are we to the truth? The synthetic plan effect ramps up over the wash-in and then
# follows $L + S\,k$ for $k$ months since the start, so the fitted level and slope change estimate
# $L$ and $S$ directly.

# %%
comparison = pd.DataFrame(
    {
        "true": [truth["level_change"], truth["slope_change"]],
        "estimate": [result.params["level_change"], result.params["slope_change"]],
        "ci_low": [result.coefficient("level_change").ci_low, result.coefficient("slope_change").ci_low],
        "ci_high": [result.coefficient("level_change").ci_high, result.coefficient("slope_change").ci_high],
    },
    index=["level change (minutes)", "slope change (minutes per month)"],
)
comparison

# %% [markdown]
# ## The counterfactual and the effect at the end of the plan
#
# The counterfactual switches the level and slope terms off and keeps everything else
# (trend, season, holiday, shocks). `predictions()` returns both paths with 95% confidence
# bands; `effect_at()` compares them in one month, as a difference (absolute) and a ratio − 1
# (relative).

# %%
paths = result.predictions()
fig, ax = plt.subplots(figsize=(9, 3.6))
when = pd.PeriodIndex(paths["month"], freq="M").to_timestamp()
after = (paths["phase"] != "pre").to_numpy()
ax.plot(when, paths["observed"], "o", ms=3, color="#4D4D4D", label="observed")
ax.plot(when, paths["fitted"], color="#0072B2", lw=1.4, label="fitted")
ax.plot(when[after], paths["counterfactual"][after], "--", color="#E69F00", lw=1.4, label="counterfactual (no plan)")
ax.fill_between(
    when[after],
    paths["counterfactual_low"][after],
    paths["counterfactual_high"][after],
    color="#E69F00",
    alpha=0.25,
    lw=0,
    label="95% CI of the counterfactual",
)
ax.axvline(start.to_timestamp(), color="#CC79A7")
ax.set_ylabel("response time (minutes)")
ax.set_title("Observed, fitted and counterfactual response time")
ax.legend(frameon=False, ncol=2)
plt.show()

# %%
absolute, relative = result.effect_at("2025-09")
pd.DataFrame(
    {
        "true": [truth["effect_end_absolute"], truth["effect_end_relative"]],
        "estimate": [absolute.estimate, relative.estimate],
        "ci_low": [absolute.ci_low, relative.ci_low],
        "ci_high": [absolute.ci_high, relative.ci_high],
    },
    index=["effect in 2025-09 (minutes)", "effect in 2025-09 (ratio − 1)"],
)

# %% [markdown]
# Read it as: *in September 2025, response times were about this many minutes (percent) lower
# than the pre-plan course predicts.* Whether the interval can be trusted depends on the
# standard errors, and model-based OLS errors ignore that monthly data are autocorrelated:
# that is the subject of notebook 2.

# %% [markdown]
# ## Exercise
#
# Anhui issued its own implementation plan in August 2023, two months after the national plan.
# Suppose an analyst ignores that, uses the **national** start (2023-06) and **no wash-in**.
#
# 1. Fit that model and compare its level change, slope change and 2025-09 effect with the ones
#    above and with the truth.
# 2. Why does the level change move the way it does?
#
# Write your code in the next cell, then compare with the solution.

# %%
# Your code here.

# %% [markdown]
# ### Solution

# %%
naive_design = ITSDesign(interruption="2023-06", washin=0, calendar="china")
naive = SegmentedRegression(y, time=months, design=naive_design).fit(cov_type="model")
naive_abs, _ = naive.effect_at("2025-09")
pd.DataFrame(
    {
        "truth": [truth["level_change"], truth["slope_change"], truth["effect_end_absolute"]],
        "own start + wash-in": [result.params["level_change"], result.params["slope_change"], absolute.estimate],
        "national start, no wash-in": [naive.params["level_change"], naive.params["slope_change"], naive_abs.estimate],
    },
    index=["level change", "slope change", "effect 2025-09"],
)

# %% [markdown]
# With the national date, June and July 2023 (no plan yet in Anhui) are counted as "after", and
# without a wash-in the months in which the effect was still building up are fitted as if it
# were complete. Both dilute the jump at the start: the level change moves towards zero and the
# slope change has to absorb the build-up. In one noisy series the end-of-plan effect may land
# nearer to or further from the truth by chance; over many provinces the wrong date biases it
# towards zero (notebook 4 shows this across provinces). Lesson: use each province's own start
# and a wash-in, and report how sensitive the results are to both.
