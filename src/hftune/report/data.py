"""Study folder → the plain data a report shows: a summary row per study and pandas tables.

Every reader here is tolerant of a study that is still running: trials with no reports, trials
that are ``running`` or ``pending``, a ``study.json`` whose status is ``running`` (no ``wall_s``,
no best trial yet) and a ``lineage.jsonl`` whose last line is being written are all fine. Nothing
here writes to the study folder.

Optional fields the report reads when they are there (and shows ``-`` when they are not):

* ``study.json`` → ``best_holdout``: the held-out metric of its ``best_trial_id`` (used only
  while that is the trial the report calls best, see :func:`holdout_value`);
* a trial record → ``holdout.metrics``, and a trial report → ``holdout_<metric>``: the same,
  recorded on the trial itself;
* ``lineage.jsonl`` → one JSON object per PBT exploit:
  ``{"time", "from_trial", "to_trial", "old_config", "new_config", "epoch"}``.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd

from hftune.study.effective_config import scored_config
from hftune.study.records import (
    StudyRecord,
    TrialRecord,
    best_trial,
    killed_run_seconds,
    run_resources,
    score_value,
)
from hftune.study.store import StudyStore

STATES = ("finished", "stopped", "errored", "running", "pending")


class Objective(NamedTuple):
    """What a study's values measure: its ``metric``, ``mode`` and score ``rule`` (``best``:
    a trial's best evaluation, ``last``: its last one). Values of different objectives are not
    comparable: they never share an axis, a group or a seed-noise verdict."""

    metric: str
    mode: str
    rule: str = "best"

    @property
    def qualifier(self) -> str:
        """``max``, or ``max, last`` under the ``last`` rule (the default rule is not named)."""
        return self.mode if self.rule == "best" else f"{self.mode}, {self.rule}"

    @property
    def label(self) -> str:
        """``accuracy (max)``, or ``accuracy (max, last)`` under the ``last`` rule."""
        return f"{self.metric} ({self.qualifier})"


@dataclass
class StudyData:
    """One study folder read back: the record, its raw JSON, trials and PBT lineage.

    ``status`` is the study's status as ``hftune status`` shows it: ``running`` only while a
    process holds the study's lock, ``interrupted`` when ``study.json`` says running but no
    process does.
    """

    root: Path
    study: StudyRecord
    raw: dict[str, Any]
    trials: list[TrialRecord]
    lineage: list[dict[str, Any]] = field(default_factory=list)
    label: str = ""
    status: str = ""

    @property
    def metric(self) -> str:
        return self.study.metric

    @property
    def mode(self) -> str:
        return self.study.mode

    @property
    def objective(self) -> Objective:
        """The study's metric, mode and score rule (:class:`Objective`)."""
        return Objective(self.metric, self.mode, self.study.score or "best")

    def score(self, trial: TrialRecord) -> float | None:
        """The trial's score under the study's rule (``best`` or ``last``), or ``None``."""
        return trial.score(self.metric, self.mode, self.study.score)

    def scored_trials(self) -> list[tuple[TrialRecord, float]]:
        """Every trial that has a score, with it (errored trials included if they reported)."""
        out = []
        for t in self.trials:
            s = self.score(t)
            if s is not None and math.isfinite(s):
                out.append((t, s))
        return out

    def best(self) -> TrialRecord | None:
        """The best trial, recomputed from the trial records (so it works mid-study)."""
        return best_trial(self.trials, self.metric, self.mode, self.study.score)

    @property
    def started_at(self) -> float | None:
        """When the study started: ``study.json``'s ``started_at``, else the first trial start."""
        if self.study.started_at is not None:
            return float(self.study.started_at)
        starts = [t.started_at for t in self.trials if t.started_at is not None]
        times = [float(r["time"]) for t in self.trials for r in t.reports if "time" in r]
        candidates = starts + times
        return min(candidates) if candidates else None


def load_study(root: Path) -> StudyData:
    """Read one study folder (raises :class:`StudyFolderError` when it has no ``study.json``)."""
    store = StudyStore(Path(root))
    study = store.read_study()
    raw = json.loads((store.root / "study.json").read_text(encoding="utf-8"))
    status = study.status
    if status == "running" and not store.is_locked():
        status = "interrupted"
    return StudyData(root=store.root, study=study, raw=raw, trials=store.read_trials(),
                     lineage=read_lineage(store.root / "lineage.jsonl"),
                     label=study.name or store.root.name, status=status)


def load_studies(roots: list[Path]) -> list[StudyData]:
    """Read several study folders; labels are made unique (folder name added on a clash)."""
    studies = [load_study(r) for r in roots]
    names = [s.label for s in studies]
    for s in studies:
        if names.count(s.label) > 1:
            s.label = f"{s.label} ({s.root.name})"
    labels = [s.label for s in studies]
    for i, s in enumerate(studies):
        if labels.count(s.label) > 1:
            s.label = f"{s.label} #{i + 1}"
    return studies


def read_lineage(path: Path) -> list[dict[str, Any]]:
    """The PBT exploits in ``lineage.jsonl`` sorted by time; ``[]`` when the file is absent.

    Lines that are not JSON objects (a line still being written) are skipped.
    """
    if not path.is_file():
        return []
    events = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(event, dict) and "to_trial" in event:
            events.append(event)
    return sorted(events, key=lambda e: float(e.get("time") or 0.0))


def objective_groups(
        studies: list[StudyData]) -> list[tuple[Objective, list[tuple[int, StudyData]]]]:
    """The studies grouped by :class:`Objective` (metric, mode and score rule):
    ``[(objective, [(position, study), ...]), ...]``.

    Groups and the studies in them keep the order of ``studies``; ``position`` is the study's
    index in ``studies`` (plots colour a study by it). Values of different objectives never
    share an axis or a comparison: a study scored by its trials' ``best`` evaluation and one
    scored by their ``last`` are two groups, even with the same metric.
    """
    groups: dict[Objective, list[tuple[int, StudyData]]] = {}
    for i, s in enumerate(studies):
        groups.setdefault(s.objective, []).append((i, s))
    return list(groups.items())


# -- summary --------------------------------------------------------------------------------
def compute_unit(data: StudyData) -> str:
    """The unit of the study's compute: ``"GPU"`` when any run of its trials held GPUs, else
    ``"CPU-core"``.

    A run's resources are those its first report records, else the study's latest
    (``study.json`` ``resources``); see :meth:`~hftune.study.records.TrialRecord.compute_parts`.
    A study with no compute recorded yet takes the unit of its latest resources.
    """
    default = data.study.resources or {}
    parts = [p for t in data.trials for p in t.compute_parts(default)]
    if not parts:
        return "GPU" if run_resources(None, default)[1] > 0 else "CPU-core"
    return "GPU" if any(p.gpus_per_trial > 0 for p in parts) else "CPU-core"


def trial_compute_minutes(data: StudyData, trial: TrialRecord, unit: str | None = None) -> float:
    """One trial's compute in ``unit``-minutes (``compute_unit(data)`` when not given): the sum,
    over its runs, of each run's seconds × the GPUs it held (``"GPU"``: a run on CPUs only
    adds 0) or × its CPU cores (``"CPU-core"``), / 60.

    Each run is priced at its own resources (a resume may run with others, e.g. on another
    machine); the seconds a restart replaced and an errored trial's seconds after its last
    report at those of the trial's latest run
    (:meth:`~hftune.study.records.TrialRecord.compute_parts`).
    """
    unit = unit or compute_unit(data)
    parts = trial.compute_parts(data.study.resources or {})
    if unit == "GPU":
        return sum(p.seconds * p.gpus_per_trial for p in parts) / 60.0
    return sum(p.seconds * p.cpus_per_trial for p in parts) / 60.0


def compute_minutes(data: StudyData) -> float:
    """Total trial compute in :func:`compute_unit`-minutes: the sum of every trial's
    :func:`trial_compute_minutes` (each run's seconds × the GPUs, or CPU cores, it held).

    In a study some of whose runs held GPUs and some did not, this counts GPU-minutes only:
    the CPU-only runs add 0 (they held no GPU).
    """
    unit = compute_unit(data)
    return sum((trial_compute_minutes(data, t, unit) for t in data.trials), 0.0)


def wall_minutes(data: StudyData, now: float | None = None) -> float | None:
    """``wall_s`` from ``study.json`` (the runs that ended) plus the run in progress or killed
    (:func:`current_run_seconds`, counted up to ``now``); else start → its latest event."""
    current = current_run_seconds(data, now)
    if current is not None:
        return (float(data.study.wall_s or 0.0) + current) / 60.0
    if data.study.wall_s is not None:
        return float(data.study.wall_s) / 60.0
    start = data.started_at
    if start is None:
        return None
    ends = [float(data.study.ended_at)] if data.study.ended_at else []
    ends += [float(t.ended_at) for t in data.trials if t.ended_at]
    ends += [float(r["time"]) for t in data.trials for r in t.reports if "time" in r]
    return max(0.0, max(ends) - start) / 60.0 if ends else None


def current_run_seconds(data: StudyData, now: float | None = None) -> float | None:
    """Seconds of the run that ``study.json`` says is in progress (``run_started_at`` set),
    which ``wall_s`` does not hold yet; ``None`` when no run is in progress.

    A live run (the study's lock was held when it was read: status ``running``) counts up to
    ``now`` (default: the current time). A run no process holds any more (killed before it
    could add its seconds) counts up to the last event its records hold, as ``hftune resume``
    will charge it (:func:`~hftune.study.records.killed_run_seconds`): a lower bound.
    """
    start = data.study.run_started_at
    if start is None:
        return None
    if data.status == "running":
        return max(0.0, (time.time() if now is None else now) - float(start))
    return killed_run_seconds(data.study, data.trials)


def holdout_value(data: StudyData) -> float | None:
    """The held-out metric of the trial the report calls best (:meth:`StudyData.best`).

    ``study.json``'s ``best_holdout`` belongs to its ``best_trial_id``, which a run writes when
    it ends, so it is used only when that is still the best trial (after a run that was killed
    it can name an earlier best). Otherwise: the best trial's own held-out record
    (``holdout.metrics``), else its ``holdout_<metric>`` (from the report that gives it its
    score, else its latest report that has it); ``None`` when it has none.
    """
    best = data.best()
    if best is None:
        return None
    value = score_value(data.raw.get("best_holdout"))
    if data.raw.get("best_trial_id") == best.trial_id and value is not None:
        return value
    metrics = (best.holdout or {}).get("metrics") if isinstance(best.holdout, dict) else None
    own = score_value(metrics.get(data.metric)) if isinstance(metrics, dict) else None
    if own is not None:
        return own
    key = f"holdout_{data.metric}"
    report = best.scored_report(data.metric, data.mode, data.study.score)
    if report is not None and score_value(report.get(key)) is not None:
        return score_value(report[key])
    for r in reversed(best.reports):
        if score_value(r.get(key)) is not None:
            return score_value(r[key])
    return None


def extra_values(data: StudyData, report: dict[str, Any] | None) -> dict[str, float | None]:
    """``{prefix: value}``: the study's metric on each extra validation split
    (``study.json`` ``extra_evaluations``, e.g. MNLI's ``mismatched``) at ``report`` (the
    evaluation that gives the best trial its score), ``None`` where it has none."""
    return {prefix: score_value((report or {}).get(f"{prefix}_{data.metric}"))
            for prefix in data.study.extra_evaluations}


def state_counts(data: StudyData) -> dict[str, int]:
    """How many trials are in each state (every state of :data:`STATES`, zeros included)."""
    counts = dict.fromkeys(STATES, 0)
    for t in data.trials:
        counts[t.state] = counts.get(t.state, 0) + 1
    return counts


def summary_row(data: StudyData, price_per_hour: float | None = None) -> dict[str, Any]:
    """One study as the comparison table's row (numbers unrounded; ``None`` where unknown).

    ``cost`` is compute hours × ``price_per_hour`` (a GPU-hour, or a CPU-core-hour when no
    run of the study held a GPU); ``None`` without a price. In a study some of whose runs held
    GPUs and some did not, the compute and so the cost count the GPU-hours only: the runs on
    CPUs alone are not priced (:func:`compute_minutes`).
    """
    counts = state_counts(data)
    best = data.best()
    # the report that gives the best trial its score (best or last evaluation, per the rule)
    best_report = best.scored_report(data.metric, data.mode, data.study.score) if best else None
    unit = compute_unit(data)
    minutes = compute_minutes(data)
    status = data.status or data.study.status
    return {
        "study": data.label,
        "strategy": data.study.strategy,
        "status": status,
        "trials": len(data.trials),
        **counts,
        "metric": data.metric,
        "mode": data.mode,
        "best": data.score(best) if best else None,
        "best_trial": best.trial_id if best else None,
        "best_epoch": best_report.get("epoch") if best_report else None,
        "holdout": holdout_value(data),
        "also": extra_values(data, best_report),
        "compute_unit": unit,
        "compute_min": minutes,
        "wall_min": wall_minutes(data),
        "cost": minutes / 60.0 * price_per_hour if price_per_hour is not None else None,
    }


def summary_frame(studies: list[StudyData], price_per_hour: float | None = None) -> pd.DataFrame:
    """The comparison table: one :func:`summary_row` per study, priced only when the studies
    share one compute unit (:func:`comparable_price`)."""
    price = comparable_price(studies, price_per_hour)
    return pd.DataFrame([summary_row(s, price) for s in studies])


def comparable_price(studies: list[StudyData], price_per_hour: float | None) -> float | None:
    """``price_per_hour`` when every study's compute is in one unit (:func:`compute_unit`),
    else ``None``: one price cannot price both GPU-hours and CPU-core-hours, so a comparison
    that mixes them shows no cost (:func:`cost_note` says why)."""
    if price_per_hour is None or len({compute_unit(s) for s in studies}) > 1:
        return None
    return price_per_hour


def cost_note(studies: list[StudyData], price_per_hour: float | None) -> str | None:
    """Why no cost is shown although a price was given (:func:`comparable_price`), or ``None``."""
    if price_per_hour is None or comparable_price(studies, price_per_hour) is not None:
        return None
    by_unit: dict[str, list[str]] = {}
    for s in studies:
        by_unit.setdefault(compute_unit(s), []).append(s.label)
    parts = "; ".join(f"{unit}-hours: {', '.join(labels)}" for unit, labels in by_unit.items())
    return (f"No cost shown: one price ({price_per_hour:g}/h) cannot price both GPU-hours and "
            f"CPU-core-hours, and these studies mix them ({parts}).")


# -- per-trial tables -----------------------------------------------------------------------
def param_names(data: StudyData) -> list[str]:
    """Every hyperparameter any trial's config (or earlier PBT config) names, first-seen order."""
    names: list[str] = []
    for t in data.trials:
        names.extend(k for k in t.config if k not in names)
        for entry in t.config_history or []:
            config = entry.get("config") if isinstance(entry, dict) else None
            names.extend(k for k in (config or {}) if k not in names)
    return names


def trials_frame(data: StudyData) -> pd.DataFrame:
    """One row per trial: id, state, each hyperparameter, score, best epoch, epochs, seconds
    and its compute in the study's unit (column ``GPU_min`` or ``CPU-core_min``:
    :func:`trial_compute_minutes`; the column adds up to :func:`compute_minutes`).

    The hyperparameters are those in effect at the evaluation that gives the trial its score
    (:func:`~hftune.study.effective_config.scored_config`): for a PBT member scored before its
    last exploit, not the config it ended with.
    """
    unit = compute_unit(data)
    names = param_names(data)
    rows = []
    for t in data.trials:
        summary = t.summary(data.metric, data.mode, data.study.score)
        config = scored_config(t, data.metric, data.mode, data.study.score)
        rows.append({
            "trial_id": t.trial_id, "state": t.state,
            **{k: config.get(k) for k in names},
            **{k: summary[k] for k in ("score", "score_epoch", "epochs", "evaluations",
                                       "compute_s")},
            f"{unit}_min": trial_compute_minutes(data, t, unit),
        })
    return pd.DataFrame(rows)


def report_time(data: StudyData, trial: TrialRecord, report: dict[str, Any]) -> float | None:
    """Seconds from the study's start to this report: its ``time`` field, else the trial's
    start plus its ``elapsed_s``; ``None`` when neither is known. Calendar seconds: a pause
    between runs of the study (interrupt → resume) counts (see :func:`paused_minutes`)."""
    start = data.started_at
    if start is None:
        return None
    if report.get("time") is not None:
        return float(report["time"]) - start
    if trial.started_at is not None and report.get("elapsed_s") is not None:
        return float(trial.started_at) + float(report["elapsed_s"]) - start
    return None


def reports_frame(data: StudyData) -> pd.DataFrame:
    """One row per evaluation with a finite value of the metric: trial_id, state, epoch, value,
    seconds since the study started (``t_s``) and the reported ``learning_rate`` (or NaN)."""
    rows = []
    for t in data.trials:
        for r in t.reports:
            value = score_value(r.get(data.metric))  # None: missing, NaN, infinite, text
            if value is None:
                continue
            rows.append({"trial_id": t.trial_id, "state": t.state,
                         "epoch": r.get("epoch"), "value": value,
                         "t_s": report_time(data, t, r),
                         "learning_rate": r.get("learning_rate")})
    columns = ["trial_id", "state", "epoch", "value", "t_s", "learning_rate"]
    return pd.DataFrame(rows, columns=columns)


TIME_AXIS = "minutes since the study started (calendar time: pauses between runs included)"
"""The title of every axis of :func:`report_time` minutes (see :func:`paused_minutes`)."""


def paused_minutes(data: StudyData) -> float | None:
    """Minutes the study spent stopped between runs (an interrupt, then ``hftune resume``).

    The time axes (:func:`report_time`) count calendar time from the study's start, while
    ``wall_s`` (the "Wall min" column) adds up only the runs' own seconds; the difference is
    this pause. Known only for a study that ended (``ended_at`` and ``wall_s`` set, no run in
    progress); ``None`` otherwise. ``study.json`` records no per-run intervals, so the pause
    cannot be placed on the axis, only measured.
    """
    study = data.study
    if (study.ended_at is None or study.wall_s is None or study.started_at is None
            or study.run_started_at is not None):
        return None
    span = float(study.ended_at) - float(study.started_at)
    return max(0.0, span - float(study.wall_s)) / 60.0


def best_so_far(data: StudyData) -> pd.DataFrame:
    """The best metric value seen so far against minutes since the study started.

    Columns ``minutes`` and ``best``, one row per timed evaluation, sorted by time. Minutes
    are calendar time (:func:`report_time`): a pause between an interrupt and a resume is in
    them, unlike in :func:`wall_minutes` (see :func:`paused_minutes`). With ``score: last`` a
    trial's score is its last evaluation, so only that evaluation of each trial counts (the
    curve then ends at the study's best score, as the tables do).
    """
    frame = reports_frame(data).dropna(subset=["t_s"]).sort_values("t_s", kind="stable")
    if data.study.score == "last":
        frame = frame.groupby("trial_id", sort=False).tail(1).sort_values("t_s", kind="stable")
    if frame.empty:
        return pd.DataFrame({"minutes": [], "best": []})
    values = frame["value"].cummax() if data.mode == "max" else frame["value"].cummin()
    return pd.DataFrame({"minutes": frame["t_s"].to_numpy() / 60.0,
                         "best": values.to_numpy()})


def member_history(data: StudyData) -> dict[str, list[tuple[float, dict[str, Any]]]]:
    """Each PBT member's config over time: ``{trial_id: [(seconds, config), ...]}``.

    Starts from the member's first config at its start (or the study start) and applies each
    exploit in ``lineage.jsonl`` whose ``to_trial`` is that member. The first config is the
    ``old_config`` of the member's first exploit, else the first entry of its record's
    ``config_history``, else its record's ``config`` (which the recorder overwrites with the
    latest config after an exploit). Empty without lineage.
    """
    if not data.lineage:
        return {}
    start = data.started_at or 0.0
    first_old: dict[str, dict[str, Any]] = {}
    for event in data.lineage:
        first_old.setdefault(str(event["to_trial"]), dict(event.get("old_config") or {}))
    history: dict[str, list[tuple[float, dict[str, Any]]]] = {}
    for t in data.trials:
        t0 = (float(t.started_at) - start) if t.started_at is not None else 0.0
        config = {**t.config, **t.initial_config, **first_old.get(t.trial_id, {})}
        history[t.trial_id] = [(t0, config)]
    for event in data.lineage:
        member = str(event["to_trial"])
        steps = history.setdefault(member, [(0.0, {})])
        when = float(event.get("time") or start) - start
        config = {**steps[-1][1], **(event.get("new_config") or {})}
        steps.append((when, config))
    return history
