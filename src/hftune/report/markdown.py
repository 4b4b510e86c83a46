"""The Markdown report: the tables as Markdown, the plots as PNGs in a folder beside it.

``report.md`` gets its plots in ``report_plots/`` (next to it), linked by relative paths, so the
pair can be committed or attached together; a link's destination is written in ``<...>``, so a
path with spaces (``my report_plots/...``) stays one CommonMark image. Drawing the PNGs needs
matplotlib (the ``report-png`` extra); without it :func:`write_markdown` raises
:class:`HftuneInputError` unless ``plots=False`` (tables only).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from hftune.errors import HftuneInputError
from hftune.report.data import StudyData, cost_note
from hftune.report.plan import ReportPlan, plan_report
from hftune.report.tables import comparison_table, trial_table


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def table_markdown(headers: list[str], rows: list[list[str]]) -> str:
    """A GitHub-flavoured Markdown table (``|`` in cells escaped)."""
    lines = ["| " + " | ".join(_cell(h) for h in headers) + " |",
             "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def image_markdown(alt: str, destination: str) -> str:
    """A CommonMark image ``![alt](<destination>)``: ``[``, ``]`` and ``\\`` in the alt text and
    ``<``, ``>`` and ``\\`` in the destination are backslash-escaped, line breaks become
    spaces, and the ``<...>`` form lets the destination contain spaces."""
    def escape(text: str, chars: str) -> str:
        text = text.replace("\r", " ").replace("\n", " ")
        return "".join("\\" + c if c in chars else c for c in text)

    return "![" + escape(alt, "[]\\") + "](<" + escape(destination, "<>\\") + ">)"


def plots_dir(path: Path) -> Path:
    """Where the PNGs of the Markdown report at ``path`` go: ``<stem>_plots/`` beside it."""
    path = Path(path)
    return path.with_name(f"{path.stem}_plots")


def write_markdown(path: Path, studies: list[StudyData], *,
                   price_per_hour: float | None = None, title: str = "hftune report",
                   plots: bool = True, plan: ReportPlan | None = None) -> list[Path]:
    """Write the Markdown report to ``path`` and its PNGs to :func:`plots_dir`; returns the
    PNG paths (in report order). ``plots=False`` writes the tables alone. ``plan`` defaults to
    :func:`plan_report` of ``studies``."""
    from hftune.report.png import have_matplotlib, write_png

    if plots and not have_matplotlib():
        raise HftuneInputError(
            "--format md: drawing PNGs needs matplotlib; install it with "
            "pip install 'hftune[report-png]' (or pass --no-plots for the tables alone)")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    plan = plan or plan_report(studies)
    folder = plots_dir(path)
    pngs: dict[int, Path] = {}
    if plots:
        for i, spec in enumerate(plan.plots):
            pngs[i] = write_png(spec, studies, folder / f"{i:02d}-{spec.slug}.png")

    def image(i: int) -> str:
        if i not in pngs:
            return ""
        rel = pngs[i].relative_to(path.parent).as_posix()
        return image_markdown(plan.plots[i].title, rel) + "\n"

    out = [f"# {title}", "",
           f"Generated {dt.datetime.now().isoformat(timespec='seconds')} from: "
           + ", ".join(f"`{s.root}`" for s in studies), "", "## Studies", "",
           table_markdown(*comparison_table(studies, price_per_hour)), "",
           "Compute is each run's seconds × the GPUs it held, or × its CPU cores when no run "
           "of the study held a GPU (in a study with both, runs on CPUs alone count 0); "
           "cost is compute hours × the price per hour."
           + (f" {note}" if (note := cost_note(studies, price_per_hour)) else ""), ""]
    out += [image(i) for i, spec in enumerate(plan.plots) if spec.study is None]
    for s in studies:
        out += ["", f"## {s.label} ({s.study.strategy})", ""]
        out += [image(i) for i, spec in enumerate(plan.plots) if spec.study is s]
        out += ["", table_markdown(*trial_table(s)), ""]
    if plan.notes:
        out += ["", "## Notes", "", *(f"- {n}" for n in plan.notes), ""]
    path.write_text("\n".join(out).rstrip() + "\n", encoding="utf-8")
    return [pngs[i] for i in sorted(pngs)]
