"""``hftune rerun DIR --top 3 --seeds 5``: retrain the top configs with fresh seeds."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from hftune.cli.options import VERBOSE, libraries_logged


def rerun(
    study_dir: Path = typer.Argument(..., help="The study folder."),
    top: int = typer.Option(3, "--top", min=1, help="How many of the best configs to rerun."),
    seeds: int = typer.Option(5, "--seeds", min=1, help="Seeds per config."),
    address: str | None = typer.Option(None, "--address", help="Join a Ray cluster (HOST:PORT)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for programs."),
    verbose: bool = VERBOSE,
) -> None:
    """Rerun the study's top configs with several seeds; record mean ± std per config."""
    from hftune.study.rerun import rerun_study

    with libraries_logged(verbose, study_dir):
        summary = rerun_study(study_dir, top=top, seeds=seeds, address=address)
    if as_json:
        typer.echo(json.dumps(summary, indent=1, default=str))
        return
    metric = summary["metric"]
    for row in summary["configs"]:
        mean = "-" if row["mean"] is None else f"{row['mean']:.4f}"
        std = "-" if row["std"] is None else f"{row['std']:.4f}"
        typer.echo(f"#{row['rank']} (trial {row['trial_id']}) {row['config']}: {metric} "
                   f"{mean} ± {std} over {row['n']} seeds")
    if summary["seed_std"] is not None:
        typer.echo(f"seed std (pooled): {summary['seed_std']:.4f}; results in "
                   f"{Path(study_dir) / 'reruns.json'}")
