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
# Data quality of the evaluation's input (数据质量). The pipeline executes this notebook with
# papermill; it reads the tables the data checks wrote (`tables/series_quality.csv`,
# `tables/data_quality.csv`, `tables/row_accounting.csv`) and computes nothing itself.

# %% tags=["parameters"]
run_dir = "reports"
lang = "zh"

# %%
# %matplotlib inline
from IPython.display import HTML, display

from analysis.report import figures, quality, site
from analysis.report.fonts import use_cjk_font

use_cjk_font()
checks = quality.load_quality(run_dir)
display(HTML(site.heading_html(quality.text("title", lang), level=1)))
display(
    HTML(quality.summary_html(checks, lang=lang) if not checks.empty else site.note_html(quality.text("no_data", lang)))
)

# %%
if not checks.series.empty:
    figures.show(quality.overview_figure(checks.series, lang=lang))
    figures.show(quality.completeness_figure(checks.series, lang=lang))

# %%
display(HTML(site.heading_html(quality.text("errors", lang))))
errors = quality.problems_table(checks.problems, severity="error", lang=lang)
display(HTML(site.table_html(errors) if len(errors) else site.note_html(quality.text("no_errors", lang))))

# %%
display(HTML(site.heading_html(quality.text("warnings", lang))))
warnings = quality.problems_table(checks.problems, severity="warning", lang=lang)
display(HTML(site.table_html(warnings) if len(warnings) else site.note_html(quality.text("no_warnings", lang))))

# %%
display(HTML(site.heading_html(quality.text("accounting", lang))))
display(HTML(site.table_html(quality.accounting_table(checks.accounting, lang=lang))))
