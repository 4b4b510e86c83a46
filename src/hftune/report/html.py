"""The HTML report: one self-contained file (plotly.js embedded once), readable offline.

Layout: the study comparison table, the comparison plots (best-so-far, expected maximum), then
per study its plots and its trial table. Each plot is one ``<div class="plotly-graph-div">``;
:func:`render_html` returns how many there are so callers and tests can check.
"""

from __future__ import annotations

import datetime as dt
import html
from pathlib import Path

from hftune.report.data import StudyData, cost_note
from hftune.report.plan import PlotSpec, ReportPlan, plan_report
from hftune.report.tables import comparison_table, trial_table

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto;
       max-width: 1200px; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: right; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
.notes { color: #666; font-size: 0.9em; } .plot { margin: 1.5em 0; }
"""


def table_html(headers: list[str], rows: list[list[str]], css_class: str = "") -> str:
    """An HTML table; every cell is escaped."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                   for row in rows)
    cls = f' class="{css_class}"' if css_class else ""
    return f"<table{cls}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def plot_div_id(index: int, spec: PlotSpec) -> str:
    """The DOM id of the plot at ``index`` in the plan: unique within the page, because the
    index is in it (slugs are not unique: labels ``rte.grid`` and ``rte grid`` share one)."""
    return f"plot-{index:02d}-{spec.slug}"


def render_html(studies: list[StudyData], *, price_per_hour: float | None = None,
                title: str = "hftune report",
                plan: ReportPlan | None = None) -> tuple[str, int]:
    """The report as one HTML string, and the number of plots in it.

    The page needs no network: plotly.js is inlined in ``<head>``; each figure is a
    ``plotly-graph-div`` drawn by an inline script.
    """
    from plotly.offline import get_plotlyjs

    from hftune.report.figures import figure_for

    plan = plan or plan_report(studies)
    figures: dict[int, str] = {}
    for i, spec in enumerate(plan.plots):
        fig = figure_for(spec, studies)
        figures[i] = fig.to_html(full_html=False, include_plotlyjs=False,
                                 div_id=plot_div_id(i, spec), config={"responsive": True})
    parts = [f"<h1>{html.escape(title)}</h1>",
             f"<p class=\"notes\">Generated {dt.datetime.now().isoformat(timespec='seconds')} "
             f"from {len(studies)} stud{'y' if len(studies) == 1 else 'ies'}: "
             + ", ".join(html.escape(str(s.root)) for s in studies) + "</p>",
             "<h2>Studies</h2>", table_html(*comparison_table(studies, price_per_hour),
                                            "comparison"),
             "<p class=\"notes\">Compute is each run's seconds × the GPUs it held, or × "
             "its CPU cores when no run of the study held a GPU (in a study with both, runs on "
             "CPUs alone count 0); cost is compute hours × the price per hour. "
             "A study still running shows what has finished so far."
             + (f" {html.escape(note)}" if (note := cost_note(studies, price_per_hour)) else "")
             + "</p>"]
    shared = [i for i, spec in enumerate(plan.plots) if spec.study is None]
    for i in shared:
        parts.append(f"<div class=\"plot\">{figures[i]}</div>")
    for s in studies:
        parts.append(f"<h2>{html.escape(s.label)} ({html.escape(s.study.strategy)})</h2>")
        for i, spec in enumerate(plan.plots):
            if spec.study is s:
                parts.append(f"<div class=\"plot\">{figures[i]}</div>")
        parts.append(f"<details><summary>Trials of {html.escape(s.label)}</summary>"
                     + table_html(*trial_table(s), "trials") + "</details>")
    if plan.notes:
        parts.append("<h2>Notes</h2><ul class=\"notes\">"
                     + "".join(f"<li>{html.escape(n)}</li>" for n in plan.notes) + "</ul>")
    page = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{CSS}</style>"
            f"<script type=\"text/javascript\">{get_plotlyjs()}</script></head>"
            f"<body>{''.join(parts)}</body></html>\n")
    return page, len(plan.plots)


def write_html(path: Path, studies: list[StudyData], *, price_per_hour: float | None = None,
               title: str = "hftune report", plan: ReportPlan | None = None) -> int:
    """Write the HTML report to ``path`` (parents created); returns the number of plots."""
    page, n_plots = render_html(studies, price_per_hour=price_per_hour, title=title, plan=plan)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return n_plots
