"""``hftune status DIR``: each trial's config, state, best metric (epoch) and time."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import typer


def status(
    study_dir: Path = typer.Argument(..., help="The study folder."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for programs."),
    watch: bool = typer.Option(False, "--watch", help="Follow a running study live (the view "
                                                      "hftune run shows) until it ends."),
    every: float = typer.Option(1.0, "--every", min=0.1, help="Seconds between reads, --watch."),
) -> None:
    """Show a study's trials (works while the study runs)."""
    from rich.console import Console
    from rich.table import Table

    from hftune.study.status import study_status

    if watch:
        watch_study(study_dir, every)
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


def watch_study(study_dir: Path, every: float = 1.0,
                sleep: Callable[[float], None] = time.sleep) -> None:
    """The live view (:class:`~hftune.study.progress.LiveProgress`) of the study in
    ``study_dir``, read from its folder every ``every`` seconds while a process holds the
    study; returns when none does (the study ended, or was never running)."""
    from hftune.study.progress import LiveProgress, planned_trials
    from hftune.study.store import StudyStore

    store = StudyStore(study_dir)
    study = store.read_study()
    config = store.read_config() if (store.root / "study.yaml").is_file() else {}
    keys = list((config or {}).get("search_space") or {}) or None
    with LiveProgress(study.metric, study.mode, rule=study.score,
                      planned=planned_trials(study_dir), search_keys=keys) as progress:
        while True:
            running = store.is_locked()
            progress.update({t.trial_id: t for t in store.read_trials()})
            if not running:
                return
            sleep(every)


def _fmt(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
