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
# Provincial report of the interrupted time-series evaluation (省级评估报告). The pipeline
# executes this notebook once per province with papermill; every number shown is read from
# the run's tables, none is computed here.

# %% tags=["parameters"]
run_dir = "reports"
province = "340000"
lang = "zh"

# %%
# %matplotlib inline
from IPython.display import HTML, display

from analysis.report import figures, site, tables
from analysis.report.fonts import use_cjk_font

use_cjk_font()
province = str(province)  # papermill passes a bare code such as 340000 as an int
run = tables.load_run(run_dir)
display(HTML(site.province_intro_html(run, province=province, lang=lang)))

# %%
display(HTML(site.heading_html(site.text("figure", lang))))
if province in set(run.predictions["province"]):
    figures.show(figures.province_panels(run.predictions, run.effects, run.diagnostics, province=province, lang=lang))

# %%
display(HTML(site.heading_html(site.text("effects", lang))))
display(HTML(site.table_html(tables.province_effects_table(run, province=province, lang=lang))))

# %%
display(HTML(site.heading_html(site.text("diagnostics", lang))))
display(HTML(site.table_html(tables.diagnostics_table(run, province=province, lang=lang))))

# %%
display(HTML(site.heading_html(site.text("failures", lang))))
failures = tables.failures_table(run, province=province, lang=lang)
display(HTML(site.table_html(failures) if len(failures) else site.note_html(site.text("no_failures", lang))))

# %%
display(HTML(site.heading_html(site.text("provenance", lang))))
display(HTML(site.provenance_html(run.manifest, lang=lang)))
