"""``hftune resume DIR``: finish a study that was killed, crashed or interrupted."""

from __future__ import annotations

from pathlib import Path

import typer


def resume(
    study_dir: Path = typer.Argument(..., help="The study folder."),
    address: str | None = typer.Option(None, "--address", help="Join a Ray cluster (HOST:PORT)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No live table (logs, CI)."),
) -> None:
    """Continue the study in STUDY_DIR: ended trials stay, interrupted ones continue."""
    from hftune.study.resume import resume_study
    from hftune.study.store import StudyStore

    if quiet:
        result = resume_study(study_dir, address=address)
    else:
        from hftune.study.progress import LiveProgress

        before = StudyStore(study_dir).read_study()
        with LiveProgress(before.metric, before.mode) as progress:
            result = resume_study(study_dir, address=address, on_change=progress.update)
    study = result.study
    counts = {s: sum(t.state == s for t in result.trials)
              for s in ("finished", "stopped", "errored")}
    typer.echo(f"study '{study.name}' {study.status} in {study.wall_s or 0:.0f}s: "
               + ", ".join(f"{n} {s}" for s, n in counts.items()))
    if study.message:
        typer.echo(study.message)
    if study.best_trial_id is not None:
        typer.echo(f"best validation {study.metric}: {study.best_value:.4f} "
                   f"(trial {study.best_trial_id})")
    typer.echo(f"study folder: {result.root}")
