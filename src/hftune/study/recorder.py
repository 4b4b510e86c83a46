"""A Ray Tune ``Callback`` that keeps the study folder current while trials run (driver side).

Trials never write to the study folder themselves, so it works the same on a cluster. Each event
rewrites that trial's JSON record; a listener (the live progress display) is told of each change.

Across a resume (or a retry after a failure) a record stays true to what the trial did: a record
that had ended before this recorder started never changes again; when a trial starts over, its
first report (the one with ``worker_pid``) drops the reports the restart replaces — all of them
after a start from scratch, those after the checkpoint's epoch after a restore from its own
checkpoint (a PBT exploit of another trial's checkpoint keeps the history). The seconds the
dropped reports' runs cost stay in the record's ``replaced_s`` (compute is counted, not hidden),
and their highest step in ``replaced_step`` (the tracking targets had logged it).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from ray.tune import Callback

from hftune.space import python_value
from hftune.study.records import ENDED_STATES, TrialRecord, reports_compute_s
from hftune.study.store import StudyStore

# Ray adds these to every result; they are not the trial's own metrics.
_RAY_KEYS = {"time_this_iter_s", "time_total_s", "timestamp", "date", "hostname", "pid",
             "time_since_restore", "iterations_since_restore", "timesteps_since_restore",
             "timesteps_total", "episodes_total", "experiment_id", "trial_id", "config",
             "should_checkpoint", "checkpoint_dir_name", "experiment_tag", "done",
             "training_iteration"}


class StudyRecorder(Callback):
    """Mirrors Ray Tune's trial events into :class:`TrialRecord` files."""

    def __init__(self, store: StudyStore, search_keys: list[str],
                 on_change: Callable[[dict[str, TrialRecord]], None] | None = None,
                 phase: str | None = None) -> None:
        self.store = store
        self.search_keys = search_keys
        self.phase = phase
        self.on_change = on_change
        self.records: dict[str, TrialRecord] = {r.trial_id: r for r in store.read_trials()}
        self.ended_before = {k for k, r in self.records.items() if r.state in ENDED_STATES}

    def __getstate__(self) -> dict[str, Any]:
        # Ray Tune pickles its callbacks with the experiment; the live display stays here.
        state = self.__dict__.copy()
        state["on_change"] = None
        return state

    def _record(self, trial: Any) -> TrialRecord:
        rec = self.records.get(trial.trial_id)
        if rec is None:
            config = {k: python_value(trial.config[k]) for k in self.search_keys
                      if k in trial.config}
            rec = TrialRecord(trial_id=trial.trial_id, config=config, phase=self.phase)
            self.records[trial.trial_id] = rec
        return rec

    def _save(self, rec: TrialRecord) -> None:
        self.store.write_trial(rec)
        if self.on_change is not None:
            self.on_change(self.records)

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        if trial.trial_id in self.ended_before:
            return
        rec = self._record(trial)
        rec.state = "running"
        rec.run_started_at = time.time()
        rec.started_at = rec.started_at or rec.run_started_at
        self._save(rec)

    def on_trial_restore(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.on_trial_start(iteration, trials, trial)

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict,
                        **info: Any) -> None:
        rec = self._record(trial)
        rec.state = "running"
        rec.node_id = result.get("ray_node_id") or rec.node_id or result.get("node_ip")
        report = {k: v for k, v in result.items() if k not in _RAY_KEYS and k != "node_ip"}
        report["time"] = time.time()
        ran_with = report.pop("trial_config", None)
        if "worker_pid" in report:  # the first report of a (re)started run
            _drop_replaced_reports(rec, report)
        if report.get("restored_from") is not None:
            self._record_restore(rec, ran_with or result.get("config") or trial.config,
                                 report)
        rec.reports.append(report)
        self._save(rec)

    def _record_restore(self, rec: TrialRecord, ran_with: dict[str, Any],
                        report: dict[str, Any]) -> None:
        """A trial continued from a checkpoint: an exploit when the checkpoint was another's.

        ``ran_with`` is the config the trial reports it trained with, not ``trial.config``: a
        scheduler sees each result first and may already have changed that one.
        """
        new_config = {k: python_value(ran_with[k]) for k in self.search_keys if k in ran_with}
        if report["restored_from"] == rec.trial_id and new_config == rec.config:
            return  # a resume from its own checkpoint
        event = {"time": report["time"], "from_trial": report["restored_from"],
                 "to_trial": rec.trial_id, "epoch": report.get("restored_epoch"),
                 "old_config": dict(rec.config), "new_config": new_config,
                 "fallback": bool(report.get("restore_fallback"))}
        if not rec.config_history:
            rec.config_history.append({"epoch": 0.0, "config": dict(rec.config)})
        rec.config_history.append({"epoch": report.get("restored_epoch"), "config": new_config,
                                   "from_trial": report["restored_from"]})
        rec.config = new_config
        self.store.append_lineage(event)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        if trial.trial_id in self.ended_before:
            return
        rec = self._record(trial)
        finished = bool(rec.reports) and bool(rec.reports[-1].get("trained_all"))
        rec.state = "finished" if finished else "stopped"
        rec.ended_at = time.time()
        self._save(rec)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        rec = self._record(trial)
        rec.state = "errored"
        rec.error = _error_text(trial)
        rec.ended_at = time.time()
        self._save(rec)


def _drop_replaced_reports(rec: TrialRecord, first: dict[str, Any]) -> None:
    """Drop the reports that a restarted run of ``rec`` is about to report again, keeping the
    seconds they cost (``replaced_s``) and the highest step among them (``replaced_step``)."""
    source = first.get("restored_from")
    if source is None:
        kept: list[dict[str, Any]] = []
    elif source == rec.trial_id:
        epoch = float(first.get("restored_epoch") or 0.0)
        kept = [r for r in rec.reports if float(r.get("epoch", 0.0)) <= epoch + 1e-9]
    else:
        return
    if len(kept) == len(rec.reports):
        return
    rec.replaced_s += reports_compute_s(rec.reports) - reports_compute_s(kept)
    rec.replaced_step = rec.last_step
    rec.reports = kept


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _error_text(trial: Any) -> str:
    """The trial's traceback(s) from Ray's error file (one entry per failed attempt)."""
    for attr in ("error_file", "error_filename"):
        path = getattr(trial, attr, None)
        if path:
            try:
                with open(path, encoding="utf-8") as fh:
                    return _ANSI.sub("", fh.read())
            except OSError:
                pass
    msg = getattr(trial, "error_msg", None)
    return str(msg) if msg else "the trial raised an error (no traceback was saved)"
