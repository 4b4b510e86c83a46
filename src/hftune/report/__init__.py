"""``hftune report``: compare study folders as one HTML page or as Markdown with PNG plots.

Pipeline: :mod:`~hftune.report.data` (study folder → records, summary rows, pandas tables) →
:mod:`~hftune.report.plan` (which plots exist) → :mod:`~hftune.report.figures` (plotly) or
:mod:`~hftune.report.png` (matplotlib) → :mod:`~hftune.report.html` /
:mod:`~hftune.report.markdown` (the writers). :func:`~hftune.report.build.write_report` is the
one call the CLI makes. The config in effect at an evaluation (a PBT member's) is the
records' own: :mod:`hftune.study.effective_config`.
Submodules are imported on use, so importing this package is cheap.
"""
