"""``hftune report DIR [DIR ...] -o report.html``: compare studies in one offline page."""

from __future__ import annotations

from pathlib import Path

import typer


def report(
    study_dirs: list[Path] = typer.Argument(..., help="Study folders to compare."),
    output: Path | None = typer.Option(
        None, "--output", "-o",
        help="The report file (default: report.html; report.md with --format md)."),
    fmt: str = typer.Option("html", "--format", "-f",
                            help="html (one self-contained page) or md (Markdown + PNGs)."),
    price_per_hour: float | None = typer.Option(
        None, "--price-per-hour",
        help="Price of a GPU-hour (a CPU-core-hour for studies without GPUs), for the cost; "
             "no cost is shown when the studies mix GPU-hours and CPU-core-hours."),
    title: str | None = typer.Option(None, "--title", help="The report's title."),
    plots: bool = typer.Option(True, "--plots/--no-plots",
                               help="With --format md: draw the PNGs (needs matplotlib)."),
) -> None:
    """Write a report comparing study folders (works on a running study too; a folder given
    twice is reported once)."""
    from hftune.report.build import write_report

    output = output or Path("report.md" if fmt == "md" else "report.html")
    result = write_report(study_dirs, output, fmt=fmt, price_per_hour=price_per_hour,
                          title=title, plots=plots)
    for repeat in result.duplicates:
        typer.echo(f"note: {repeat} repeats a study folder given before; reported once",
                   err=True)
    extra = f", PNGs in {result.pngs[0].parent}" if result.pngs else ""
    typer.echo(f"report: {result.path} ({result.n_plots} plots{extra})")
