"""Read a study folder back as the rows ``hftune status`` shows (and ``--json`` prints)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hftune.study.effective_config import scored_config
from hftune.study.records import TrialRecord, outcome_problem
from hftune.study.store import StudyStore


def trial_row(trial: TrialRecord, metric: str, mode: str, rule: str = "best") -> dict[str, Any]:
    """One trial as a flat row: config (a PBT member's: the one in effect at its scored
    evaluation), state, score and where it was reached, seconds."""
    summary = trial.summary(metric, mode, rule)
    return {
        "trial_id": trial.trial_id,
        "state": trial.state,
        "config": scored_config(trial, metric, mode, rule),
        **summary,
        "compute_s": round(summary["compute_s"], 3),
        "node_id": trial.node_id,
        "error": trial.error.strip().splitlines()[-1] if trial.error else None,
    }


def study_status(root: Path) -> dict[str, Any]:
    """The study record plus one row per trial, as plain JSON-ready data."""
    store = StudyStore(root)
    study = store.read_study()
    trials = store.read_trials()
    counts: dict[str, int] = {}
    for t in trials:
        counts[t.state] = counts.get(t.state, 0) + 1
    data = study.to_dict()
    if study.status == "running" and not store.is_locked():
        data["status"] = "interrupted"
    data["counts"] = counts
    data["trials"] = [trial_row(t, study.metric, study.mode, study.score) for t in trials]
    ended = data["status"] == "finished"
    data["problem"] = outcome_problem(study, trials) if ended else None
    return data
