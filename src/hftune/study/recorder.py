"""A Ray Tune ``Callback`` that keeps the study folder current while trials run (driver side).

Trials never write to the study folder themselves, so it works the same on a cluster. Each event
rewrites that trial's JSON record; a listener (the live progress display) is told of each change.

Across a resume (or a retry after a failure) a record stays true to what the trial did: a record
that had ended before this recorder started never changes again; when a trial starts over, its
first report (the one with ``worker_pid``) drops what the restart replaces (:meth:`_start_run`):
after a start from scratch, every report; after a restore from its own checkpoint, the reports
after that checkpoint's evaluation; after a resume that continues a PBT exploit Ray's snapshot
holds, the reports after that exploit. The exploits a restart undoes (recorded after the point
it continues from: the snapshot was older) leave the trial's ``config_history`` and
``lineage.jsonl``, and its config is the one it runs with. A new PBT exploit keeps the history.
The seconds the dropped reports' runs cost stay in the record's ``replaced_s`` (compute is
counted, not hidden), and their highest step in ``replaced_step`` (the tracking targets had
logged it).
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
        # trials an earlier run left unfinished (a resume): their first run here continues
        # from Ray's snapshot, which may be older than their records
        self.carried_over = set(self.records) - self.ended_before

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
        ran_with = report.pop("trial_config", None) or result.get("config") or trial.config
        if "worker_pid" in report or "restored_from" in report:  # a (re)started run's first
            continued = rec.trial_id in self.carried_over
            self.carried_over.discard(rec.trial_id)
            self._start_run(rec, report, ran_with, continued)
        rec.reports.append(report)
        self._save(rec)

    def _start_run(self, rec: TrialRecord, first: dict[str, Any], ran_with: dict[str, Any],
                   continued: bool) -> None:
        """A (re)started run's first report: drop what the run replaces, or record an exploit.

        ``ran_with`` is the config the trial reports it trained with, not ``trial.config``: a
        scheduler sees each result first and may already have changed that one. ``continued``:
        the trial's first run in a resume.
        """
        source = first.get("restored_from")
        running = {k: python_value(ran_with[k]) for k in self.search_keys if k in ran_with}
        if source is None:  # from scratch: nothing recorded before counts
            self._cut(rec, [], None, None, running)
        elif source == rec.trial_id:  # its own checkpoint: a retry or a resume
            epoch = float(first.get("restored_epoch") or 0.0)
            kept = _up_to_evaluation(rec.reports, first.get("restored_eval"), epoch)
            self._cut(rec, kept, _time(kept[-1]) if kept else None, epoch, running)
        elif continued and (entry := _recorded_exploit(rec, source, first)) is not None:
            # the exploit Ray's snapshot holds, recorded before the kill: replay from it
            at = entry["time"]
            self._cut(rec, [r for r in rec.reports if (_time(r) or 0.0) < at], at, None,
                      running)
        else:
            self._record_restore(rec, running, first)

    def _cut(self, rec: TrialRecord, kept: list[dict[str, Any]], at: float | None,
             epoch: float | None, running: dict[str, Any]) -> None:
        """Keep ``kept`` of the reports (the rest is replaced); undo the exploits into ``rec``
        after time ``at`` (entries without a time: after ``epoch``; with neither: all); the
        trial's config is ``running``."""
        if len(kept) != len(rec.reports):
            rec.replaced_s += reports_compute_s(rec.reports) - reports_compute_s(kept)
            rec.replaced_step = rec.last_step
            rec.reports = kept
        undone = [h for h in rec.config_history[1:] if _after(h, at, epoch)]
        if undone:
            rec.config_history = [h for h in rec.config_history
                                  if not any(h is u for u in undone)]
            if len(rec.config_history) == 1:  # only the initial config is left
                rec.config_history = []
            self.store.drop_lineage(lambda e: str(e.get("to_trial")) == rec.trial_id
                                    and _after(e, at, epoch))
        if running:
            rec.config = running

    def _record_restore(self, rec: TrialRecord, new_config: dict[str, Any],
                        report: dict[str, Any]) -> None:
        """A trial continued from another trial's checkpoint: a PBT exploit."""
        event = {"time": report["time"], "from_trial": report["restored_from"],
                 "to_trial": rec.trial_id, "epoch": report.get("restored_epoch"),
                 "old_config": dict(rec.config), "new_config": new_config,
                 "fallback": bool(report.get("restore_fallback"))}
        if not rec.config_history:
            rec.config_history.append({"epoch": 0.0, "config": dict(rec.config)})
        rec.config_history.append({"epoch": report.get("restored_epoch"), "config": new_config,
                                   "from_trial": report["restored_from"],
                                   "from_eval": report.get("restored_eval"),
                                   "time": report["time"]})
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


def _time(entry: dict[str, Any]) -> float | None:
    value = entry.get("time")
    return float(value) if isinstance(value, int | float) else None


def _after(entry: dict[str, Any], at: float | None, epoch: float | None) -> bool:
    """Whether a history entry or lineage event came after time ``at`` (one without a time:
    after ``epoch``; with neither bound: always)."""
    when = _time(entry)
    if at is not None and when is not None:
        return when > at
    if epoch is not None:
        return float(entry.get("epoch") or 0.0) > epoch + 1e-9
    return True


def _up_to_evaluation(reports: list[dict[str, Any]], eval_id: str | None,
                      epoch: float) -> list[dict[str, Any]]:
    """The reports up to the evaluation whose weights a restored checkpoint holds: the one
    with that ``eval_id``; for checkpoints without one (earlier hftune), those up to its
    ``epoch`` (which can repeat after an exploit, hence the id)."""
    ids = [r.get("eval_id") for r in reports]
    if eval_id is not None and eval_id in ids:
        return reports[:ids.index(eval_id) + 1]
    return [r for r in reports if float(r.get("epoch", 0.0)) <= epoch + 1e-9]


def _recorded_exploit(rec: TrialRecord, source: str,
                      first: dict[str, Any]) -> dict[str, Any] | None:
    """The latest exploit in ``rec``'s history from the checkpoint of ``source`` the run
    restored (the same evaluation id; for entries without one, the same epoch), with its
    time, or ``None``."""
    epoch, eval_id = first.get("restored_epoch"), first.get("restored_eval")
    for entry in reversed(rec.config_history[1:]):
        if entry.get("from_trial") != source or _time(entry) is None:
            continue
        if entry.get("from_eval") is not None and eval_id is not None:
            if entry["from_eval"] == eval_id:
                return entry
        elif epoch is None or abs(float(entry.get("epoch") or 0.0) - float(epoch)) < 1e-9:
            return entry
    return None


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
