"""The one entry point the CLI calls: read study folders, write the report in a format."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from hftune.errors import HftuneInputError

FORMATS = ("html", "md")


@dataclass
class ReportResult:
    """What was written: the report file, how many plots it shows, the PNGs (Markdown only),
    and the study folders left out because they repeat an earlier one (:func:`unique_dirs`)."""

    path: Path
    n_plots: int
    pngs: list[Path]
    duplicates: list[Path] = field(default_factory=list)


def unique_dirs(study_dirs: list[Path]) -> tuple[list[Path], list[Path]]:
    """``study_dirs`` without repeats, and the repeats left out: two paths are one folder when
    they resolve to the same (``runs/a``, ``runs/a/``, ``./runs/a``, a symlink to it). The
    first occurrence is kept, in the order given."""
    seen: set[Path] = set()
    kept: list[Path] = []
    repeats: list[Path] = []
    for d in study_dirs:
        key = Path(d).resolve()
        if key in seen:
            repeats.append(Path(d))
        else:
            seen.add(key)
            kept.append(Path(d))
    return kept, repeats


def check_output(output: Path, *, plots_folder: bool = False) -> None:
    """Raise :class:`HftuneInputError` (one line naming ``-o``) unless the report file
    ``output`` can be written: not a folder, and in a folder that can be made and written
    (:func:`~hftune.study.preflight.folder_problem`: not under a file). ``plots_folder``: the
    Markdown report's PNG folder beside it is checked too."""
    from hftune.report.markdown import plots_dir
    from hftune.study.preflight import folder_problem

    if output.is_dir():
        raise HftuneInputError(f"-o: {output} is a folder; name the report file (e.g. "
                               f"{output / 'report.html'})")
    problem = folder_problem(output.parent)
    if problem is not None:
        raise HftuneInputError(f"-o: cannot write {output}: {output.parent} {problem}")
    if plots_folder:
        folder = plots_dir(output)
        problem = folder_problem(folder)
        if problem is not None:
            raise HftuneInputError(f"-o: cannot write the PNGs of {output}: {folder} {problem}")


def check_outside(output: Path, study_dirs: list[Path], *, plots_folder: bool = False) -> None:
    """Raise :class:`HftuneInputError` (one line naming ``-o``) when the report file
    ``output`` (or, with ``plots_folder``, its PNG folder) lies inside one of the study folders
    ``study_dirs`` or is one of their files: it would replace a study file (``study.json``)."""
    from hftune.report.markdown import plots_dir

    targets = [output, *([plots_dir(output)] if plots_folder else [])]
    for d in study_dirs:
        study = d.resolve()
        for target in targets:
            if target.resolve().is_relative_to(study):
                raise HftuneInputError(f"-o: {target} is inside the study folder {d}; write "
                                       f"the report outside it")


def write_report(study_dirs: list[Path], output: Path, *, fmt: str = "html",
                 price_per_hour: float | None = None, title: str | None = None,
                 plots: bool = True) -> ReportResult:
    """Write a report comparing ``study_dirs`` to ``output`` as ``fmt`` (``html`` or ``md``).

    Raises :class:`HftuneInputError` (one line, nothing written) for an unknown format, a
    negative price, no study folder, a path that is a file or does not exist, a folder that is
    not a study (no ``study.json``, or one that is not a study record), an ``output`` that
    cannot be written (:func:`check_output`, before the studies are read) and one inside a
    study folder (:func:`check_outside`). Running studies are reported as far as they have
    got. A folder given twice (``runs/a`` and ``runs/a/``) is reported once, where it first
    appears; the repeats are in the result's ``duplicates``.
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
        if Path(d).exists() and not Path(d).is_dir():
            raise HftuneInputError(f"{d}: is a file, not a study folder")
        if not Path(d).is_dir():
            raise HftuneInputError(f"{d}: no such folder")
    study_dirs, duplicates = unique_dirs([Path(d) for d in study_dirs])
    plots_folder = fmt == "md" and plots
    check_output(Path(output), plots_folder=plots_folder)
    studies = load_studies(study_dirs)  # a folder that is no study: its own one-line error
    check_outside(Path(output), study_dirs, plots_folder=plots_folder)
    title = title or "hftune report: " + ", ".join(s.label for s in studies)
    plan = plan_report(studies)
    if fmt == "md":
        from hftune.report.markdown import write_markdown

        pngs = write_markdown(output, studies, price_per_hour=price_per_hour, title=title,
                              plots=plots, plan=plan)
        return ReportResult(Path(output), len(pngs), pngs, duplicates)
    from hftune.report.html import write_html

    n_plots = write_html(output, studies, price_per_hour=price_per_hour, title=title, plan=plan)
    return ReportResult(Path(output), n_plots, [], duplicates)
