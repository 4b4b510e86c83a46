"""Typed records of a study and its trials: what the store writes and every reader reads back."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

TrialState = Literal["pending", "running", "finished", "stopped", "errored"]
StudyStatus = Literal["running", "finished", "interrupted", "failed"]
ENDED_STATES = ("finished", "stopped", "errored")


@dataclass
class TrialRecord:
    """One trial: its hyperparameters, state and every evaluation it reported.

    ``state``: ``finished`` (trained all its steps), ``stopped`` (ended early by the strategy),
    ``errored`` (raised; ``error`` holds the traceback), ``running`` or ``pending``.
    """

    trial_id: str
    config: dict[str, Any]
    state: TrialState = "pending"
    reports: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    node_id: str | None = None
    started_at: float | None = None
    ended_at: float | None = None
    config_history: list[dict[str, Any]] = field(default_factory=list)
    phase: str | None = None  # multi-step strategies (seeds-then-pbt): "screen" or "pbt"
    # Held-out evaluation of the trial's best checkpoint (top-k trials only, after selection):
    # {"metrics": {...}, "epoch", "step", "checkpoint", "rows", "source"}; see study.holdout.
    holdout: dict[str, Any] | None = None

    def values(self, metric: str) -> list[float]:
        return [float(r[metric]) for r in self.reports
                if r.get(metric) is not None and not _isnan(r[metric])]

    def best_report(self, metric: str, mode: str) -> dict[str, Any] | None:
        """The report with the best value of ``metric`` (first one on ties)."""
        scored = [r for r in self.reports if r.get(metric) is not None and not _isnan(r[metric])]
        if not scored:
            return None
        pick = max if mode == "max" else min
        return pick(scored, key=lambda r: float(r[metric]))

    def score(self, metric: str, mode: str, rule: str = "best") -> float | None:
        """The trial's score: its best evaluation (``rule="best"``) or its last one."""
        if rule == "last":
            vals = self.values(metric)
            return vals[-1] if vals else None
        best = self.best_report(metric, mode)
        return float(best[metric]) if best else None

    @property
    def initial_config(self) -> dict[str, Any]:
        """The config the trial started with (``config`` is its latest one after a PBT exploit)."""
        first = self.config_history[0] if self.config_history else None
        if isinstance(first, dict) and isinstance(first.get("config"), dict):
            return dict(first["config"])
        return dict(self.config)

    @property
    def compute_s(self) -> float:
        """Seconds the trial itself ran (from its start to its last report)."""
        return float(self.reports[-1].get("elapsed_s", 0.0)) if self.reports else 0.0

    @property
    def last_epoch(self) -> float | None:
        return float(self.reports[-1]["epoch"]) if self.reports else None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrialRecord:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


def _isnan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


@dataclass
class StudyRecord:
    """The study as a whole: status, objective, timing and the best trial."""

    name: str
    status: StudyStatus
    strategy: str
    metric: str
    mode: str
    score: str = "best"
    started_at: float | None = None
    ended_at: float | None = None
    wall_s: float | None = None
    tokenize_s: float | None = None
    label_names: list[str] = field(default_factory=list)
    data_source: str | None = None
    model: str | None = None
    resources: dict[str, Any] = field(default_factory=dict)
    best_trial_id: str | None = None
    best_value: float | None = None
    best_epoch: float | None = None
    disk_bytes: int | None = None
    message: str | None = None
    # The best trial's held-out metric and how it was measured (hftune.study.holdout).
    best_holdout: float | None = None
    holdout: dict[str, Any] | None = None
    # Seed reruns of the top configs: mean ± std per config (hftune.study.rerun).
    reruns: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StudyRecord:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


def best_trial(trials: list[TrialRecord], metric: str, mode: str,
               rule: str = "best") -> TrialRecord | None:
    """The trial with the best score (errored trials included only if they reported)."""
    scored = [(t.score(metric, mode, rule), t) for t in trials]
    scored = [(s, t) for s, t in scored if s is not None]
    if not scored:
        return None
    pick = max if mode == "max" else min
    return pick(scored, key=lambda st: st[0])[1]
