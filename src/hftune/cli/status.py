"""``hftune status DIR``: each trial's config, state, best metric (epoch) and time."""

from __future__ import annotations

import json
from pathlib import Path

import typer


def status(
    study_dir: Path = typer.Argument(..., help="The study folder."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for programs."),
) -> None:
    """Show a study's trials (works while the study runs)."""
    from rich.console import Console
    from rich.table import Table

    from hftune.study.status import study_status

    data = study_status(study_dir)
    if as_json:
        typer.echo(json.dumps(data, indent=1, default=str))
        return
    metric = data["metric"]
    table = Table(title=f"{data['name']}: {data['status']} ({data['strategy']}, {metric} "
                        f"{data['mode']})")
    keys = sorted({k for row in data["trials"] for k in row["config"]})
    last = data.get("score") == "last"  # the study's rule: a trial's best or last evaluation
    for col in ("trial", "state", *keys, f"{'last' if last else 'best'} {metric}", "epoch",
                "seconds"):
        table.add_column(col)
    for row in data["trials"]:
        mark = " *" if row["trial_id"] == data["best_trial_id"] else ""
        table.add_row(row["trial_id"] + mark, row["state"],
                      *(_fmt(row["config"].get(k)) for k in keys),
                      _fmt(row["score"]), _fmt(row["score_epoch"]),
                      f"{row['compute_s']:.1f}")
    Console().print(table)
    if data.get("disk_bytes"):
        typer.echo(f"disk use: {data['disk_bytes'] / 2**20:.1f} MiB (checkpoints included)")
    if data.get("message"):
        typer.echo(data["message"])
    for row in data["trials"]:
        if row["state"] == "errored" and row.get("error"):
            typer.echo(f"trial {row['trial_id']} errored: {row['error']}")
    if data.get("problem"):
        typer.echo(data["problem"])


def _fmt(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
