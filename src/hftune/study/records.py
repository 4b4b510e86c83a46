"""Typed records of a study and its trials: what the store writes and every reader reads back."""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

TrialState = Literal["pending", "running", "finished", "stopped", "errored"]
StudyStatus = Literal["running", "finished", "interrupted", "failed"]
ENDED_STATES = ("finished", "stopped", "errored")


@dataclass(frozen=True)
class ComputePart:
    """Seconds of a trial's compute and the per-trial resources that held them: one run of the
    trial, the reports a restart replaced, or an errored trial's seconds after its last report
    (see :meth:`TrialRecord.compute_parts`)."""

    seconds: float
    cpus_per_trial: float
    gpus_per_trial: float


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
        """Every usable value of ``metric``, in report order (see :func:`_unusable`)."""
        return [float(r[metric]) for r in self._scored(metric)]

    def _scored(self, metric: str) -> list[dict[str, Any]]:
        """The reports with a usable value of ``metric``: a finite number (a report without
        one, or with NaN, infinity, text or anything else, has no value)."""
        return [r for r in self.reports if isinstance(r, dict) and not _unusable(r.get(metric))]

    def best_report(self, metric: str, mode: str) -> dict[str, Any] | None:
        """The report with the best value of ``metric`` (first one on ties)."""
        scored = self._scored(metric)
        if not scored:
            return None
        pick = max if mode == "max" else min
        return pick(scored, key=lambda r: float(r[metric]))

    def scored_report(self, metric: str, mode: str, rule: str = "best") -> dict[str, Any] | None:
        """The report that gives the trial its score: its best evaluation (``rule="best"``) or
        its last one with a value of ``metric``."""
        if rule == "last":
            scored = self._scored(metric)
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
        not known (a kill). Seconds only, whatever resources held them: :meth:`compute_parts`
        splits them by run, with each run's resources.
        """
        return reports_compute_s(self.reports) + self.replaced_s + self._error_tail_s()

    def _error_tail_s(self) -> float:
        """An errored trial's seconds from its last report (or the start of its latest run,
        when that is later) to its error; 0 for any other trial or when neither is known."""
        if self.state != "errored" or self.ended_at is None:
            return 0.0
        times = [r["time"] for r in self.reports if isinstance(r.get("time"), int | float)]
        starts = [self.run_started_at if self.run_started_at is not None else self.started_at]
        since = max((float(t) for t in [*times[-1:], *starts] if t is not None), default=None)
        return 0.0 if since is None else max(0.0, float(self.ended_at) - since)

    def compute_parts(self, default: Mapping[str, Any] | None = None) -> list[ComputePart]:
        """:attr:`compute_s` split by the per-trial resources that held it.

        One part per run of the trial (:func:`reports_compute_parts`: its seconds at
        the ``cpus_per_trial``/``gpus_per_trial`` its first report records, else at
        ``default``'s, the study's resources, for reports written before hftune recorded
        them), then a part for ``replaced_s`` when it is not 0 and one for an errored trial's
        seconds after its last report when there are any. Their seconds add up to :attr:`compute_s`.

        The replaced seconds and the error tail are priced at the resources of the trial's
        latest run that reported (``default``'s when none did). An approximation where those
        were not the resources that held them: the tail may belong to a restart that had not
        reported yet, and the replaced reports are gone, and with them the record of which
        resources their runs held, so after a resume with other resources (another machine)
        they are priced at the new ones.
        """
        parts = reports_compute_parts(self.reports, default)
        if parts:
            cpus, gpus = parts[-1].cpus_per_trial, parts[-1].gpus_per_trial
        else:
            cpus, gpus = run_resources(None, default)
        if self.replaced_s:
            parts.append(ComputePart(self.replaced_s, cpus, gpus))
        tail = self._error_tail_s()
        if tail > 0:
            parts.append(ComputePart(tail, cpus, gpus))
        return parts

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
        """The epoch of the last report; ``None`` without reports or a number there."""
        epoch = self.reports[-1].get("epoch") if self.reports else None
        return None if _unusable(epoch) else float(epoch)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrialRecord:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


def reports_compute_s(reports: list[dict[str, Any]]) -> float:
    """The seconds of the runs that made ``reports``: each run's last ``elapsed_s``, summed (a
    run starts at a report with ``worker_pid``)."""
    return sum((part.seconds for part in reports_compute_parts(reports)), 0.0)


def reports_compute_parts(reports: list[dict[str, Any]],
                          default: Mapping[str, Any] | None = None) -> list[ComputePart]:
    """One :class:`ComputePart` per run that made ``reports``, in order.

    A run starts at the first report and at every later report with ``worker_pid``; its
    seconds are its last report's ``elapsed_s``. Its resources are the ``cpus_per_trial`` and
    ``gpus_per_trial`` of its first report (the trainable adds them there); one that report
    lacks (a study written by an earlier hftune) is ``default``'s (the study's ``resources``),
    and without either 1 CPU and 0 GPUs.
    """
    parts: list[ComputePart] = []
    first: dict[str, Any] | None = None
    run_s = 0.0
    for i, report in enumerate(reports):
        if i == 0 or "worker_pid" in report:  # a run of this trial starts here
            if first is not None:
                parts.append(ComputePart(run_s, *run_resources(first, default)))
            first = report
        elapsed = report.get("elapsed_s")
        run_s = 0.0 if _unusable(elapsed) else float(elapsed)
    if first is not None:
        parts.append(ComputePart(run_s, *run_resources(first, default)))
    return parts


def run_resources(report: Mapping[str, Any] | None,
                  default: Mapping[str, Any] | None) -> tuple[float, float]:
    """``(cpus_per_trial, gpus_per_trial)`` of ``report`` (a run's first report), each one it
    lacks (or holds no usable number for: CPUs > 0, GPUs >= 0) from ``default`` (the study's
    ``resources``); 1 CPU and 0 GPUs when neither has it. ``report=None``: ``default``'s."""
    out = []
    for key, zero_ok, fallback in (("cpus_per_trial", False, 1.0),
                                   ("gpus_per_trial", True, 0.0)):
        value = _amount((report or {}).get(key), zero_ok)
        if value is None:
            value = _amount((default or {}).get(key), zero_ok)
        out.append(fallback if value is None else value)
    return out[0], out[1]


def _amount(value: Any, zero_ok: bool) -> float | None:
    """``value`` as a resource amount: a finite number > 0 (or 0 when ``zero_ok``), else
    ``None``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    usable = value > 0 or (zero_ok and value == 0)
    return value if math.isfinite(value) and usable else None


def score_value(value: Any) -> float | None:
    """A reported value as a score: a float for a finite number, ``None`` for anything else
    (missing, NaN, infinite, text: see :func:`_unusable`), for every reader of reports."""
    return None if _unusable(value) else float(value)


def _unusable(value: Any) -> bool:
    """A reported value that is no score: missing (``None``), NaN or infinite (a diverged
    evaluation), or not a number at all (text such as ``"high"``, a boolean, a list: a record
    hftune did not write)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return True
    return not math.isfinite(float(value))


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
    # the task type (hftune.tasks): what export loads and the model card says
    task_type: str = "sequence_classification"
    # prefixes of the extra validation splits each evaluation also scores (``mismatched``:
    # MNLI's mismatched set, reported as ``mismatched_<metric>``; never selected on)
    extra_evaluations: list[str] = field(default_factory=list)
    data_source: str | None = None
    model: str | None = None
    resources: dict[str, Any] = field(default_factory=dict)
    # Per-trial resources of earlier runs, when a resume ran with others (another machine).
    resources_before: list[dict[str, Any]] = field(default_factory=list)
    # trials the study plans (every step of a two-step strategy started so far): what the
    # live view counts down
    planned_trials: int | None = None
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
    # Trials a resume could not restore: the checkpoint Ray's snapshot named was gone, and no
    # earlier one was kept (hftune.study.resume.stand_in_for_lost_checkpoints).
    unrestorable: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StudyRecord:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


def killed_run_seconds(study: StudyRecord, trials: list[TrialRecord]) -> float:
    """Seconds of the run ``study.run_started_at`` marks, from its start to the latest event
    the trial records hold (0 when no run is marked). For a run that was killed before it could
    add its own seconds to ``wall_s``, a lower bound: the time between its last recorded event
    and the kill is not known."""
    start = study.run_started_at
    if start is None:
        return 0.0
    last = max([start, *(t for t in map(TrialRecord.last_activity, trials) if t is not None)])
    return max(0.0, last - start)


def select_best(study: StudyRecord, trials: list[TrialRecord]) -> TrialRecord | None:
    """Set ``study.best_trial_id``, ``best_value`` and ``best_epoch`` from the records (the
    trials' scores by the study's metric, mode and rule); returns the best trial.

    The records are the truth: ``study.json``'s best is written when a run ends, so after a
    run that was killed it can name an earlier best. Every reader that acts on "the best trial"
    (finalize, export, the held-out estimate) selects it here. Nothing changes when no trial
    has a score.
    """
    best = best_trial(trials, study.metric, study.mode, study.score)
    if best is not None:
        report = best.scored_report(study.metric, study.mode, study.score)
        study.best_trial_id = best.trial_id
        study.best_value = float(report[study.metric]) if report else None
        study.best_epoch = report.get("epoch") if report else None  # of that same report
    return best


def best_trial(trials: list[TrialRecord], metric: str, mode: str,
               rule: str = "best") -> TrialRecord | None:
    """The trial with the best score (errored trials included only if they reported)."""
    scored = [(t.score(metric, mode, rule), t) for t in trials]
    scored = [(s, t) for s, t in scored if s is not None]
    if not scored:
        return None
    pick = max if mode == "max" else min
    return pick(scored, key=lambda st: st[0])[1]


def outcome_problem(study: StudyRecord, trials: list[TrialRecord]) -> str | None:
    """Why a study that ran to its end is no success (``hftune run`` and ``resume`` then exit
    with code 1, ``hftune status`` says why), or ``None``: a resume could not restore some
    trials (:attr:`StudyRecord.unrestorable`), every trial errored, or no trial reported a
    value of the metric. Trials that the strategy or the time budget stopped are a success."""
    if study.unrestorable:
        return (f"{len(study.unrestorable)} trial(s) could not be restored by the resume "
                f"({', '.join(study.unrestorable)}): the checkpoint Ray's last snapshot named "
                f"was gone and no earlier one was kept")
    if trials and all(t.state == "errored" for t in trials):
        return f"every trial errored ({len(trials)}); each trial's error is in its record"
    if best_trial(trials, study.metric, study.mode, study.score) is None:
        return f"no trial reported a value of {study.metric}"
    return None
