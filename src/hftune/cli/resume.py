"""``hftune resume DIR``: finish a study that was killed, crashed or interrupted."""

from __future__ import annotations

from pathlib import Path

import typer

from hftune.cli.options import VERBOSE, libraries_logged
from hftune.cli.run import print_outcome


def resume(
    study_dir: Path = typer.Argument(..., help="The study folder."),
    address: str | None = typer.Option(None, "--address", help="Join a Ray cluster (HOST:PORT)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No live table (logs, CI)."),
    verbose: bool = VERBOSE,
) -> None:
    """Continue the study in STUDY_DIR: ended trials stay, interrupted ones continue."""
    from hftune.study.resume import resume_study
    from hftune.study.store import StudyStore

    with libraries_logged(verbose, study_dir):
        if quiet:
            result = resume_study(study_dir, address=address)
        else:
            from hftune.study.progress import LiveProgress, planned_trials

            before = StudyStore(study_dir).read_study()
            with LiveProgress(before.metric, before.mode, rule=before.score,
                              planned=planned_trials(study_dir)) as progress:
                result = resume_study(study_dir, address=address, on_change=progress.update)
    print_outcome(result)
