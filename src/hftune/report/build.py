"""The one entry point the CLI calls: read study folders, write the report in a format."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hftune.errors import HftuneInputError

FORMATS = ("html", "md")


@dataclass
class ReportResult:
    """What was written: the report file, how many plots it shows, the PNGs (Markdown only)."""

    path: Path
    n_plots: int
    pngs: list[Path]


def write_report(study_dirs: list[Path], output: Path, *, fmt: str = "html",
                 price_per_hour: float | None = None, title: str | None = None,
                 plots: bool = True) -> ReportResult:
    """Write a report comparing ``study_dirs`` to ``output`` as ``fmt`` (``html`` or ``md``).

    Raises :class:`HftuneInputError` (one line, nothing written) for an unknown format, a
    negative price, no study folder, or a folder that is not a study. Running studies are
    reported as far as they have got.
    """
    from hftune.report.data import load_studies
    from hftune.report.plan import plan_report

    if fmt not in FORMATS:
        raise HftuneInputError(f"--format: must be one of {', '.join(FORMATS)}, not {fmt!r}")
    if price_per_hour is not None and price_per_hour < 0:
        raise HftuneInputError(f"--price-per-hour: must be >= 0, not {price_per_hour:g}")
    if not study_dirs:
        raise HftuneInputError("give at least one study folder")
    for d in study_dirs:
        if not Path(d).is_dir():
            raise HftuneInputError(f"{d}: no such folder")
    studies = load_studies([Path(d) for d in study_dirs])
    title = title or "hftune report: " + ", ".join(s.label for s in studies)
    plan = plan_report(studies)
    if fmt == "md":
        from hftune.report.markdown import write_markdown

        pngs = write_markdown(output, studies, price_per_hour=price_per_hour, title=title,
                              plots=plots, plan=plan)
        return ReportResult(Path(output), len(pngs), pngs)
    from hftune.report.html import write_html

    n_plots = write_html(output, studies, price_per_hour=price_per_hour, title=title, plan=plan)
    return ReportResult(Path(output), n_plots, [])
