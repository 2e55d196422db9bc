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
# National summary of the interrupted time-series evaluation (全国汇总报告): provincial
# effects pooled by random-effects meta-analysis. The pipeline executes this notebook with
# papermill; every number shown is read from the run's tables, none is computed here.

# %% tags=["parameters"]
run_dir = "reports"
lang = "zh"

# %%
# %matplotlib inline
from IPython.display import HTML, display

from analysis.report import event_time_figure, figures, site, tables
from analysis.report.fonts import use_cjk_font

use_cjk_font()
run = tables.load_run(run_dir)
display(HTML(site.national_intro_html(run, lang=lang)))

# %%
display(HTML(site.heading_html(site.text("overview", lang))))
if len(run.national):
    figures.show(figures.national_overview(run.national, lang=lang, month=tables.evaluation_month(run)))

# %%
display(HTML(site.heading_html(site.text("national_effects", lang))))
display(HTML(site.table_html(tables.national_table(run, lang=lang))))

# %%
display(HTML(site.heading_html(site.text("provinces", lang))))
display(HTML(site.table_html(tables.province_summary_table(run, lang=lang))))

# %%
display(HTML(site.heading_html(site.text("forests", lang))))
for number in sorted(set(run.effects.loc[run.effects["measure"] == "effect_end_relative", "indicator"])):
    figures.show(figures.indicator_forest(run.effects, run.national, indicator=number, lang=lang))

# %%
display(HTML(site.heading_html(site.text("multiplicity", lang), note=site.text("multiplicity_note", lang))))
display(
    HTML(
        site.run_table_html(
            run_dir,
            "national_effects",
            lang=lang,
            query="measure == 'effect_end_relative'",
            columns=["indicator", "estimate", "ci_low", "ci_high", "p_value", "p_bh", "p_holm", "verdict"],
        )
    )
)

# %%
display(HTML(site.heading_html(site.text("event_time", lang), note=site.text("event_time_note", lang))))
curves = tables.read_optional(run_dir, "event_time_national")
if curves is not None and len(curves):
    for number in sorted(set(curves["indicator"])):
        figures.show(event_time_figure.event_time_figure(curves, indicator=number, lang=lang))

# %%
display(HTML(site.heading_html(site.text("cohorts", lang))))
display(
    HTML(
        site.run_table_html(
            run_dir,
            "cohort_tests",
            lang=lang,
            query="measure == 'effect_relative'",
            columns=["indicator", "event_time", "n_cohorts", "k_provinces", "statistic", "df_num", "df_den", "p_value"],
        )
    )
)

# %%
display(HTML(site.heading_html(site.text("meta_regression", lang))))
display(HTML(site.run_table_html(run_dir, "meta_regression", lang=lang)))

# %%
display(HTML(site.heading_html(site.text("power_section", lang))))
display(
    HTML(
        site.run_table_html(
            run_dir,
            "power",
            lang=lang,
            query="scope == 'national'",
            columns=["indicator", "measure", "estimate", "p_value", "detected", "k", "mde_improvement", "power"],
        )
    )
)

# %%
display(HTML(site.heading_html(site.text("targets_section", lang))))
display(HTML(site.run_table_html(run_dir, "targets", lang=lang)))

# %%
display(HTML(site.heading_html(site.text("controlled_section", lang), note=site.text("controlled_note", lang))))
display(
    HTML(
        site.run_table_html(
            run_dir,
            "controlled_national",
            lang=lang,
            hint="controlled_hint",
            columns=["indicator", "comparison", "measure", "estimate", "ci_low", "ci_high", "p_value", "k"],
        )
    )
)

# %%
display(HTML(site.heading_html(site.text("robustness_section", lang))))
for name in ("robustness", "placebo_rates", "panel_vs_meta"):
    display(HTML(site.run_table_html(run_dir, name, lang=lang, hint="robustness_hint")))

# %%
display(HTML(site.heading_html(site.text("diagnostics", lang))))
display(HTML(site.table_html(tables.diagnostics_overview(run, lang=lang))))

# %%
display(HTML(site.heading_html(site.text("failures", lang))))
failures = tables.failures_table(run, lang=lang)
display(HTML(site.table_html(failures) if len(failures) else site.note_html(site.text("no_failures", lang))))

# %%
display(HTML(site.heading_html(site.text("provenance", lang))))
display(HTML(site.provenance_html(run.manifest, lang=lang)))
