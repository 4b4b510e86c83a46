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
    # Reports that a restart replaced (see hftune.study.recorder): their seconds and last step.
    # Their values are gone from ``reports``; the compute they cost and the steps the tracking
    # targets already logged are not.
    replaced_s: float = 0.0
    replaced_step: int | None = None
    # When Ray last started (or restarted) the trial: the start of its latest run.
    run_started_at: float | None = None

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

    def scored_report(self, metric: str, mode: str, rule: str = "best") -> dict[str, Any] | None:
        """The report that gives the trial its score: its best evaluation (``rule="best"``) or
        its last one with a value of ``metric``."""
        if rule == "last":
            scored = [r for r in self.reports
                      if r.get(metric) is not None and not _isnan(r[metric])]
            return scored[-1] if scored else None
        return self.best_report(metric, mode)

    def score(self, metric: str, mode: str, rule: str = "best") -> float | None:
        """The trial's score: its best evaluation (``rule="best"``) or its last one."""
        report = self.scored_report(metric, mode, rule)
        return float(report[metric]) if report else None

    @property
    def initial_config(self) -> dict[str, Any]:
        """The config the trial started with (``config`` is its latest one after a PBT exploit)."""
        first = self.config_history[0] if self.config_history else None
        if isinstance(first, dict) and isinstance(first.get("config"), dict):
            return dict(first["config"])
        return dict(self.config)

    @property
    def compute_s(self) -> float:
        """Seconds the trial itself ran, over all its runs, those a restart replaced included.

        A report's ``elapsed_s`` counts from the start of the run that made it, and a trial
        runs again after every PBT exploit and every resume; each run's first report carries
        ``worker_pid``. So this is the sum, over runs, of each run's last ``elapsed_s``, plus
        ``replaced_s``. An errored trial also counts the seconds from its last report, or from
        the start of its latest run when that is later (a resume, a PBT restart), to its error:
        it held its resources until then. A run's seconds after its last report are otherwise
        not known (a kill).
        """
        total = reports_compute_s(self.reports) + self.replaced_s
        if self.state == "errored" and self.ended_at is not None:
            times = [r["time"] for r in self.reports if isinstance(r.get("time"), int | float)]
            starts = [self.run_started_at if self.run_started_at is not None
                      else self.started_at]
            since = max((float(t) for t in [*times[-1:], *starts] if t is not None),
                        default=None)
            if since is not None:
                total += max(0.0, float(self.ended_at) - since)
        return total

    def last_activity(self) -> float | None:
        """The time of the trial's latest recorded event: a (re)start, a report or its end."""
        times = [self.started_at, self.run_started_at, self.ended_at,
                 *(r.get("time") for r in self.reports)]
        known = [float(t) for t in times if isinstance(t, int | float)]
        return max(known) if known else None

    @property
    def last_step(self) -> int | None:
        """The highest global step this trial ever reported, replaced reports included."""
        steps = [int(r["step"]) for r in self.reports if isinstance(r.get("step"), int | float)]
        if self.replaced_step is not None:
            steps.append(self.replaced_step)
        return max(steps) if steps else None

    def summary(self, metric: str, mode: str, rule: str = "best") -> dict[str, Any]:
        """The trial's outcome as flat fields (the tables, ``hftune status`` and the report
        share them): ``score`` (by ``rule``) and ``score_epoch`` (the epoch it was reached),
        ``best`` and ``best_epoch``, ``last``, ``epochs`` reached, ``evaluations``,
        ``compute_s``."""
        best = self.best_report(metric, mode)
        scored = self.scored_report(metric, mode, rule)
        return {
            "score": self.score(metric, mode, rule),
            "score_epoch": scored.get("epoch") if scored else None,
            "best": best.get(metric) if best else None,
            "best_epoch": best.get("epoch") if best else None,
            "last": (self.values(metric) or [None])[-1],
            "epochs": self.last_epoch,
            "evaluations": len(self.reports),
            "compute_s": self.compute_s,
        }

    @property
    def last_epoch(self) -> float | None:
        return float(self.reports[-1]["epoch"]) if self.reports else None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrialRecord:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


def reports_compute_s(reports: list[dict[str, Any]]) -> float:
    """The seconds of the runs that made ``reports``: each run's last ``elapsed_s``, summed (a
    run starts at a report with ``worker_pid``)."""
    total, run_s = 0.0, 0.0
    for i, report in enumerate(reports):
        if i > 0 and "worker_pid" in report:  # a new run of this trial starts here
            total += run_s
            run_s = 0.0
        run_s = float(report.get("elapsed_s") or 0.0)
    return total + run_s


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
    # When the run in progress started (None once it ended): a run killed before it could add
    # its seconds to ``wall_s`` leaves it set, and a resume charges that run's seconds.
    run_started_at: float | None = None
    tokenize_s: float | None = None
    label_names: list[str] = field(default_factory=list)
    data_source: str | None = None
    model: str | None = None
    resources: dict[str, Any] = field(default_factory=dict)
    # Per-trial resources of earlier runs, when a resume ran with others (another machine).
    resources_before: list[dict[str, Any]] = field(default_factory=list)
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
