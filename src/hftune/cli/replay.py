"""``hftune replay DIR``: retrain the best trial along its hyperparameter schedule."""

from __future__ import annotations

from pathlib import Path

import typer

from hftune.cli.options import VERBOSE, libraries_logged


def replay(
    study_dir: Path = typer.Argument(..., help="The study folder."),
    trial: str | None = typer.Option(None, "--trial", help="Replay this trial, not the best."),
    verbose: bool = VERBOSE,
) -> None:
    """Train one model from scratch following the best trial's schedule (PBT: its lineage);
    the evaluations are written to DIR/replay.json."""
    from hftune.study.replay import replay_study

    with libraries_logged(verbose, study_dir):
        result = replay_study(study_dir, trial)
    for seg in result["schedule"]:
        end = "end" if seg["end"] is None else f"{seg['end']:g}"
        typer.echo(f"epochs {seg['start']:g}..{end}: {seg['config']} (from {seg['trial_id']})")
    final = result["final"]
    typer.echo(f"replayed {result['trial_id']}: final {result['metric']} "
               f"{'-' if final is None else f'{final:.4f}'} in {result['seconds']:.0f}s "
               f"(written to {Path(study_dir) / 'replay.json'})")
