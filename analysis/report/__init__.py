"""Presentation of an evaluation run: figures, display tables, notebooks and the index page.

The report reads the tidy tables a run wrote (``tables/*.csv``, ``predictions.parquet``,
``manifest.json``) and only displays them; every statistic is computed upstream, in
:mod:`analysis.its`, :mod:`analysis.synthesis` and :mod:`analysis.pipeline`.

- :mod:`analysis.report.fonts`: a Chinese font for matplotlib that fails loudly.
- :mod:`analysis.report.tables`: loading a run, verdicts and display tables in zh or en.
- :mod:`analysis.report.figures`: province small multiples, forest plots, national overview.
- :mod:`analysis.report.site`: HTML building blocks and the run's ``index.html``.
"""
