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
# # 5 · From provinces to the nation: meta-analysis, heterogeneity, multiplicity（从省到全国）
#
# Each province gives one estimate of the plan's effect on an indicator, with its own
# uncertainty. The national question, *did the plan work on average, and does it work
# everywhere?*, is answered by combining them: a **meta-analysis** across provinces.
#
# You will
#
# 1. fit six indicators in all 32 provinces with the pipeline's own functions,
# 2. pool one indicator by fixed-effect and random-effects meta-analysis and compare with the
#    known national truth,
# 3. read **heterogeneity**: τ², I² and the **prediction interval**,
# 4. see why testing 6 indicators × 32 provinces calls for a **multiplicity** policy.

# %%
# %matplotlib inline
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from statsmodels.stats.multitest import multipletests

from analysis.data.synthetic import generate
from analysis.evaluation.fit_panel import fit_panel
from analysis.registry import get_indicator
from analysis.report import figures
from analysis.report.fonts import use_cjk_font
from analysis.synthesis.national import national_effects, pooling_inputs
from analysis.synthesis.pooling import pool

use_cjk_font()
warnings.filterwarnings("ignore", message="IProgress not found")  # progress bars are off anyway
pd.set_option("display.precision", 4)

# %% [markdown]
# ## Fit every province
#
# `fit_panel` is what `python -m analysis run` uses: one segmented regression per province and
# indicator, with each province's own start, a 3-month wash-in, calendar terms and the latent
# AR(1) covariance; it returns tidy tables.

# %%
numbers = [9, 12, 29, 30, 34, 37]
data = generate(seed=2023, indicators=numbers)
starts = {row.province: pd.Period(row.start_month, "M") for row in data.plan_dates.itertuples()}
results = fit_panel(data.panel, starts=starts)
effects = results.effects
relative = effects[effects["measure"] == "effect_end_relative"]
print(f"{len(results.diagnostics)} series fitted, {len(results.failures)} failures")
relative[relative["indicator"] == 30][["province", "estimate", "ci_low", "ci_high", "p_value"]].head()

# %% [markdown]
# ## Pooling one indicator by hand
#
# Indicator 30, surgical complications (手术并发症发生率; lower is better). Relative effects
# (ratio − 1) are pooled as **log ratios**, whose sampling distribution is closer to normal;
# `pooling_inputs` converts each province's estimate and interval to that scale.
#
# - **Fixed effect** (`fe`): one common true effect; weights $1/s_i^2$.
# - **Random effects** (`reml`, `dl`): true effects vary between provinces with variance τ²;
#   weights $1/(s_i^2 + \tau^2)$. REML estimates τ² with less bias than DerSimonian-Laird.
# - **Hartung-Knapp-Sidik-Jonkman** (`hksj=True`): a t interval with an adjusted standard error,
#   which keeps coverage near 95% when there are few provinces or τ² is poorly estimated.

# %%
inputs = pooling_inputs(effects)
rel30 = inputs[(inputs["indicator"] == 30) & (inputs["measure"] == "effect_end_relative")]
true_log = np.log1p(data.truth.loc[data.truth["indicator"] == 30, "effect_end_relative"].to_numpy())
rows = []
for label, options in (
    ("fixed effect", {"method": "fe"}),
    ("random effects, DL", {"method": "dl"}),
    ("random effects, REML", {"method": "reml"}),
    ("random effects, REML + HKSJ", {"method": "reml", "hksj": True}),
):
    res = pool(rel30["pool_estimate"], rel30["pool_se"], **options)
    rows.append(
        {
            "model": label,
            "effect %": 100 * np.expm1(res.estimate),
            "95% CI": f"{100 * np.expm1(res.ci_low):+.1f} to {100 * np.expm1(res.ci_high):+.1f}",
            "τ": res.tau,
            "I² %": res.i2,
            "95% PI": f"{100 * np.expm1(res.pi_low):+.1f} to {100 * np.expm1(res.pi_high):+.1f}",
        }
    )
rows.append(
    {
        "model": "truth (mean and SD of the 32 true effects)",
        "effect %": 100 * np.expm1(true_log.mean()),
        "τ": true_log.std(ddof=1),
    }
)
pd.DataFrame(rows).set_index("model")

# %% [markdown]
# How to read the rows:
#
# - the **fixed-effect** interval ignores that provinces differ; it answers a question nobody
#   asked (what is *the* common effect?) and is over-confident about the average when they do;
# - a random-effects model whose τ² is estimated as zero (it can happen, with DerSimonian-Laird
#   especially) gives the fixed-effect answer back;
# - the **prediction interval** is where a single province's true effect is expected to lie:
#   the honest answer to "will it work in my province?". It is much wider than the CI of the mean.
#
# The truth row is the plain mean of the 32 provinces' true effects; the pooled estimate weights
# precise (large) provinces more, so with real heterogeneity the two need not coincide.
#
# The pipeline does the same for every indicator and measure (`national_effects`), and the
# report draws each indicator as a forest plot:

# %%
national = national_effects(effects)
figures.show(figures.indicator_forest(effects, national, indicator=30, lang="en"))

# %% [markdown]
# ## Heterogeneity: τ², I² and the prediction interval
#
# - **τ²** (τ): the variance (SD) of the true effects between provinces, on the log-ratio scale:
#   τ = 0.1 means provinces' true effects typically differ by about ±10%.
# - **I²**: the share of the observed spread that is due to real differences rather than sampling
#   error. It depends on how precise the provinces are: with very precise estimates even small
#   τ² gives a large I². Report τ and the prediction interval, not I² alone.

# %%
table = national[national["measure"] == "effect_end_relative"].copy()
table["name"] = [get_indicator(int(n)).name_en for n in table["indicator"]]
true_mean = (
    data.truth.assign(log=np.log1p(data.truth["effect_end_relative"])).groupby("indicator")["log"].mean().pipe(np.expm1)
)
table["true mean %"] = 100 * table["indicator"].map(true_mean)
table["effect %"] = 100 * table["estimate"]
table["τ"] = np.sqrt(table["tau2"])
table[["indicator", "name", "effect %", "true mean %", "τ", "i2", "k", "p_value"]].set_index("indicator")

# %% [markdown]
# ## Multiplicity
#
# Six indicators nationally, and 6 × 32 = 192 provincial tests. At the 5% level, even if the
# plan did nothing at all, up to about ten provincial tests (5% of 192) would be expected to
# come out "significant" by chance. To see
# that happen, build a world with **no** effect: keep only the months before the plan and
# pretend every province started in 2021-07 (a placebo in time, notebook 4). Then count the
# "discoveries" under three policies:
#
# - no adjustment (p < 0.05),
# - **Holm**: controls the chance of any false positive (the family-wise error rate),
# - **Benjamini-Hochberg**: controls the expected share of false positives among the
#   discoveries (the false discovery rate).


# %%
def discoveries(p_values):
    p_values = np.asarray(p_values)
    return {
        "none": int((p_values < 0.05).sum()),
        "Holm (FWER)": int(multipletests(p_values, alpha=0.05, method="holm")[0].sum()),
        "Benjamini-Hochberg (FDR)": int(multipletests(p_values, alpha=0.05, method="fdr_bh")[0].sum()),
    }


pre_plan = data.panel[data.panel["month"] < "2023-06"]
placebo = fit_panel(pre_plan, starts={code: pd.Period("2021-07", "M") for code in starts}).effects
placebo_p = placebo.loc[placebo["measure"] == "level_change", "p_value"]
real_p = effects.loc[effects["measure"] == "level_change", "p_value"]
pd.DataFrame(
    {"world without effects (placebo)": discoveries(placebo_p), "the synthetic plan": discoveries(real_p)}
).rename_axis("policy").T.assign(tests=len(real_p))

# %%
fig, ax = plt.subplots(figsize=(8, 2.8))
for p_values, colour, label in ((placebo_p, "#999999", "placebo (no effects)"), (real_p, "#0072B2", "plan")):
    ranked = np.sort(np.asarray(p_values))
    ax.plot(np.arange(1, len(ranked) + 1), ranked, ".", ms=3, color=colour, label=label)
m = len(real_p)
ax.plot(np.arange(1, m + 1), 0.05 * np.arange(1, m + 1) / m, color="#D55E00", lw=1, label="BH line 0.05·i/m")
ax.axhline(0.05, color="#222222", lw=0.8, ls="--", label="0.05")
ax.set_yscale("log")
ax.set_xlabel("rank i of the p-value")
ax.set_ylabel("p-value (log scale)")
ax.set_title(f"{m} provincial tests of the level change, sorted")
ax.legend(frameon=False, fontsize=8)
plt.show()

# %% [markdown]
# In the world without effects every unadjusted "discovery" is false; Holm and
# Benjamini-Hochberg remove (almost) all of them. With real effects, Holm gives up many true
# discoveries to guarantee (almost) no false one; Benjamini-Hochberg keeps more of them while
# holding the expected share of false ones at 5%. Which policy an evaluation uses is a decision
# to make, and record, **before** looking at the results; the report states the one that was
# used.

# %% [markdown]
# ## Exercise
#
# For indicator 34 (CRBSI), pool the provincial relative effects (i) by DerSimonian-Laird
# with a Wald (normal) interval and (ii) by REML with HKSJ. Compare the two estimates of τ and
# the two 95% intervals with the true mean effect across provinces. What does each interval
# assume about τ²?
#
# Write your code in the next cell, then compare with the solution.

# %%
# Your code here.

# %% [markdown]
# ### Solution

# %%
rel34 = inputs[(inputs["indicator"] == 34) & (inputs["measure"] == "effect_end_relative")]
dl = pool(rel34["pool_estimate"], rel34["pool_se"], method="dl")
reml_hksj = pool(rel34["pool_estimate"], rel34["pool_se"], method="reml", hksj=True)
truth34 = np.expm1(np.log1p(data.truth.loc[data.truth["indicator"] == 34, "effect_end_relative"]).mean())
pd.DataFrame(
    {
        "effect %": [100 * np.expm1(dl.estimate), 100 * np.expm1(reml_hksj.estimate), 100 * truth34],
        "ci_low %": [100 * np.expm1(dl.ci_low), 100 * np.expm1(reml_hksj.ci_low), np.nan],
        "ci_high %": [100 * np.expm1(dl.ci_high), 100 * np.expm1(reml_hksj.ci_high), np.nan],
        "τ": [dl.tau, reml_hksj.tau, np.nan],
    },
    index=["DerSimonian-Laird, Wald", "REML + HKSJ", "true mean"],
)

# %% [markdown]
# The two estimators of τ² differ a little, and so do the intervals. The Wald interval treats
# the estimated τ² as if it were known and uses the normal distribution; the HKSJ interval uses
# a t distribution with k − 1 degrees of freedom and rescales the standard error by the observed
# spread of the provincial estimates around the mean, so it can come out wider or narrower than
# Wald in a given data set. Across many data sets (the meta-analysis literature's simulations)
# the Wald interval under-covers when provinces are few or heterogeneous, while HKSJ keeps close
# to 95%; that is why the package pools with REML and HKSJ by default.
