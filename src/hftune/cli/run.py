"""``hftune run STUDY.yaml``: validate, prepare and run a study; print the best trial."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from hftune.cli.options import VERBOSE, libraries_logged
from hftune.study.loading import load_config

if TYPE_CHECKING:
    from hftune.study.runner import StudyResult


def run(
    config: Path = typer.Argument(..., help="The study's YAML file."),
    set_: list[str] = typer.Option([], "--set", help="Override a key: --set budget.num_samples=8"),
    data_dir: Path | None = typer.Option(None, "--data-dir", help="Folder of the task's files."),
    address: str | None = typer.Option(None, "--address", help="Join a Ray cluster (HOST:PORT)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a finished study."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No live table (logs, CI)."),
    verbose: bool = VERBOSE,
) -> None:
    """Run the hyperparameter study described by CONFIG."""
    from hftune.study.runner import run_study

    with libraries_logged(verbose):
        cfg = load_config(config, set_, data_dir=data_dir)
        if quiet:
            result = run_study(cfg, address=address, overwrite=overwrite)
        else:
            from hftune.study.progress import LiveProgress

            with LiveProgress.for_study(cfg) as progress:
                result = run_study(cfg, address=address, overwrite=overwrite,
                                   on_change=progress.update)
    print_outcome(result)


def print_outcome(result: StudyResult) -> None:
    """What ``run`` and ``resume`` print at the end: trial counts, any message from the study,
    the selected trial (its score: best or last evaluation, per the study's rule) and the
    folder. Exits with 1 when the study is no success
    (:func:`hftune.study.records.outcome_problem`: trials a resume could not restore, every
    trial errored, or no trial reported a value)."""
    from hftune.study.records import outcome_problem

    study = result.study
    counts = {s: sum(t.state == s for t in result.trials)
              for s in ("finished", "stopped", "errored")}
    typer.echo(f"study '{study.name}' {study.status} in {study.wall_s or 0:.0f}s: "
               + ", ".join(f"{n} {s}" for s, n in counts.items()))
    if study.message:
        typer.echo(study.message)
    best = next((t for t in result.trials if t.trial_id == study.best_trial_id), None)
    if best is not None and study.best_value is not None:
        which = "last" if study.score == "last" else "best"
        epoch = f", epoch {study.best_epoch:g}" if study.best_epoch is not None else ""
        typer.echo(f"{which} validation {study.metric}: {study.best_value:.4f} "
                   f"(trial {study.best_trial_id}{epoch}) with {best.config}")
    typer.echo(f"study folder: {result.root}")
    problem = outcome_problem(study, result.trials)
    if problem is not None:
        typer.echo(f"{problem}; see 'hftune status {result.root}'", err=True)
        raise typer.Exit(1)
    root = shlex.quote(str(result.root))
    typer.echo(f"next: hftune report {root} -o report.html   "
               f"hftune export {root} -o best-model")
