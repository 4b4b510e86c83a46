"""``hftune evaluate DIR --split holdout``: the top trials scored on the held-out rows."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from hftune.cli.options import VERBOSE, libraries_logged


def evaluate(
    study_dir: Path = typer.Argument(..., help="The study folder."),
    split: str = typer.Option("holdout", "--split", help="Only 'holdout' for now."),
    top_k: int | None = typer.Option(
        None, "--top-k", min=1, help="Trials to evaluate (default: evaluation.holdout_top_k)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for programs."),
    verbose: bool = VERBOSE,
) -> None:
    """Evaluate the top trials' best checkpoints on the held-out part; record it in the study."""
    from hftune.errors import StudyFolderError
    from hftune.study.holdout import evaluate_holdout, holdout_summary
    from hftune.study.store import StudyStore

    if split != "holdout":
        raise StudyFolderError(f"--split: '{split}' is not supported; use --split holdout")
    store = StudyStore(study_dir)
    if store.is_locked():
        raise StudyFolderError(f"{store.root}: the study is running; evaluate it when it ends")
    with libraries_logged(verbose, study_dir):
        summary = holdout_summary(evaluate_holdout(store, top_k=top_k))
    if as_json:
        typer.echo(json.dumps(summary, indent=1, default=str))
        return
    metric = summary["metric"]
    typer.echo(f"held-out rows: {summary['rows']} ({summary['source']})")
    for trial_id, value in summary["trials"].items():
        mark = " (selected)" if trial_id == summary["best_trial_id"] else ""
        shown = "-" if value is None else f"{value:.4f}"
        other = (" (at its next kept checkpoint: its scored evaluation's is gone)"
                 if trial_id in summary["not_scored_checkpoint"] else "")
        typer.echo(f"trial {trial_id}{mark}: held-out {metric} {shown}{other}")
    for trial_id in summary["missing"]:
        mark = " (selected)" if trial_id == summary["best_trial_id"] else ""
        typer.echo(f"trial {trial_id}{mark}: not evaluated, it kept no checkpoint")
    if summary["best_holdout"] is not None and summary["best_value"] is not None:
        typer.echo(f"selected trial: validation {metric} {summary['best_value']:.4f}, "
                   f"held-out {summary['best_holdout']:.4f}")
