"""What a restarted trial or a killed study leaves behind: records, tracked steps, wall time.

A trial starts over (from scratch, or from its own checkpoint) after a resume or a retry; a
study killed with ``kill -9`` never adds its run's seconds. Driven through the same Ray Tune
callback methods Ray calls, with fake trials (no Ray).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hftune.study.recorder import StudyRecorder
from hftune.study.records import StudyRecord, TrialRecord
from hftune.study.resume import charge_killed_run
from hftune.study.store import StudyStore
from hftune.testing.records import ray_trial
from hftune.tracking import TrackingCallback


def _result(epoch: int, elapsed: float, *, first: bool = False, **extra: Any) -> dict:
    report = {"epoch": float(epoch), "step": 10 * epoch, "accuracy": 0.5 + epoch / 100,
              "elapsed_s": elapsed, **extra}
    if first:
        report["worker_pid"] = 123
    return report


def _recorder(tmp_path: Path) -> StudyRecorder:
    store = StudyStore(tmp_path)
    store.trials_dir.mkdir(parents=True)
    return StudyRecorder(store, ["learning_rate"])


def test_restore_from_own_checkpoint_keeps_the_replaced_runs_seconds(tmp_path) -> None:
    rec = _recorder(tmp_path)
    trial = ray_trial()
    for report in (_result(1, 4.0, first=True), _result(2, 8.0), _result(3, 12.0)):
        rec.on_trial_result(1, [], trial, report)
    # restarted from its epoch-1 checkpoint: epochs 2 and 3 are trained again
    rec.on_trial_result(2, [], trial, _result(2, 3.0, first=True, restored_from=trial.trial_id,
                                              restored_epoch=1.0))
    record = rec.store.read_trials()[0]
    assert [r["epoch"] for r in record.reports] == [1.0, 2.0]
    # first run: 12 s, of which 4 s are still behind a kept report; the second run: 3 s so far
    assert record.replaced_s == pytest.approx(8.0)
    assert record.compute_s == pytest.approx(12.0 + 3.0)
    assert record.replaced_step == 30 and record.last_step == 30


def test_start_from_scratch_replaces_every_report(tmp_path) -> None:
    rec = _recorder(tmp_path)
    trial = ray_trial()
    for report in (_result(1, 5.0, first=True), _result(2, 9.0)):
        rec.on_trial_result(1, [], trial, report)
    rec.on_trial_result(2, [], trial, _result(1, 4.0, first=True))
    record = rec.store.read_trials()[0]
    assert [r["elapsed_s"] for r in record.reports] == [4.0]
    assert record.compute_s == pytest.approx(9.0 + 4.0)
    assert record.last_step == 20


def test_exploit_keeps_history_and_replaces_nothing(tmp_path) -> None:
    rec = _recorder(tmp_path)
    trial = ray_trial()
    for report in (_result(1, 5.0, first=True), _result(2, 9.0)):
        rec.on_trial_result(1, [], trial, report)
    rec.on_trial_result(2, [], trial, _result(2, 1.0, first=True, restored_from="other",
                                              restored_epoch=1.0))
    record = rec.store.read_trials()[0]
    assert len(record.reports) == 3 and record.replaced_s == 0.0
    assert record.replaced_step is None
    assert record.compute_s == pytest.approx(9.0 + 1.0)


class _Logged(TrackingCallback):
    target = "fake"

    def __init__(self, logged_steps: dict[str, int] | None = None) -> None:
        super().__init__("s", Path("."), ["learning_rate"], frozenset({"accuracy"}),
                         logged_steps)
        self.steps: list[tuple[str, int]] = []

    def _open(self, trial_id, params):
        return trial_id

    def _log(self, run, metrics, step) -> None:
        self.steps.append((run, step))

    def _close(self, run, status) -> None:
        pass


def test_tracking_logs_each_step_once_across_a_restart() -> None:
    cb = _Logged()
    a, b = ray_trial("a"), ray_trial("b")
    for report in (_result(1, 1.0, first=True), _result(2, 2.0), _result(3, 3.0)):
        cb.on_trial_result(1, [], a, report)
    # a restarts from its epoch-1 checkpoint: 20 and 30 again, then 40 is new
    for report in (_result(2, 1.0, first=True, restored_from="a", restored_epoch=1.0),
                   _result(3, 2.0), _result(4, 3.0)):
        cb.on_trial_result(2, [], a, report)
    # b exploits a's checkpoint: b's steps go on past its last one logged (30): 30 + (20 - 10),
    # then 40 + (30 - 20)
    cb.on_trial_result(1, [], b, _result(3, 1.0, first=True))
    for report in (_result(2, 1.0, first=True, restored_from="a", restored_epoch=1.0),
                   _result(3, 2.0)):
        cb.on_trial_result(2, [], b, report)
    assert cb.steps == [("a", 10), ("a", 20), ("a", 30), ("a", 40),
                        ("b", 30), ("b", 40), ("b", 50)]


def test_tracking_remembers_the_steps_logged_before_a_resume() -> None:
    cb = _Logged(logged_steps={"a": 20})
    # after a resume, a starts over from scratch (it had saved no checkpoint)
    for report in (_result(1, 1.0, first=True), _result(2, 2.0), _result(3, 3.0)):
        cb.on_trial_result(1, [], ray_trial("a"), report)
    cb.on_trial_result(1, [], ray_trial("c"), _result(1, 1.0, first=True))
    assert cb.steps == [("a", 30), ("c", 10)]


def _killed_study(tmp_path: Path, run_started_at: float | None) -> StudyStore:
    store = StudyStore(tmp_path)
    store.trials_dir.mkdir(parents=True)
    store.write_study(StudyRecord(name="s", status="running", strategy="grid",
                                  metric="accuracy", mode="max", started_at=900.0,
                                  wall_s=50.0, run_started_at=run_started_at))
    store.write_trial(TrialRecord(trial_id="a", config={}, state="finished", started_at=1001.0,
                                  ended_at=1030.0, reports=[{"time": 1029.0}]))
    store.write_trial(TrialRecord(trial_id="b", config={}, state="running", started_at=1031.0,
                                  reports=[{"time": 1040.0}, {"time": 1075.5}]))
    return store


def test_resume_charges_the_killed_runs_seconds_up_to_its_last_event(tmp_path) -> None:
    store = _killed_study(tmp_path, run_started_at=1000.0)
    study = store.read_study()
    charge_killed_run(store, study)
    assert study.wall_s == pytest.approx(50.0 + 75.5)
    assert study.run_started_at is None
    charge_killed_run(store, study)  # charged once
    assert study.wall_s == pytest.approx(125.5)


def test_a_run_that_ended_is_not_charged_again(tmp_path) -> None:
    store = _killed_study(tmp_path, run_started_at=None)  # e.g. Ctrl-C: it added its seconds
    study = store.read_study()
    charge_killed_run(store, study)
    assert study.wall_s == 50.0



def test_an_errored_trial_counts_its_seconds_up_to_the_error() -> None:
    """It held its resources (a GPU) until it failed, reports or not."""
    silent = TrialRecord(trial_id="s", config={}, state="errored", started_at=100.0,
                         ended_at=130.0)
    assert silent.compute_s == pytest.approx(30.0)
    late = TrialRecord(trial_id="l", config={}, state="errored", started_at=100.0,
                       ended_at=150.0, reports=[{"time": 120.0, "elapsed_s": 18.0}])
    assert late.compute_s == pytest.approx(18.0 + 30.0)
    stopped = TrialRecord(trial_id="t", config={}, state="stopped", started_at=100.0,
                          ended_at=150.0, reports=[{"time": 120.0, "elapsed_s": 18.0}])
    assert stopped.compute_s == pytest.approx(18.0)


def test_an_errored_trial_is_not_charged_the_time_it_was_not_running() -> None:
    """Killed after a report at 1200 s, resumed a day later, errored 30 s into that run: the
    day between the kill and the resume is not compute (the run's start is the later bound)."""
    day = 86_400.0
    resumed = TrialRecord(trial_id="r", config={}, state="errored", started_at=0.0,
                          run_started_at=1300.0 + day, ended_at=1330.0 + day,
                          reports=[{"time": 600.0, "elapsed_s": 600.0, "worker_pid": 1},
                                   {"time": 1200.0, "elapsed_s": 1200.0}])
    assert resumed.compute_s == pytest.approx(1200.0 + 30.0)
    silent = TrialRecord(trial_id="s", config={}, state="errored", started_at=0.0,
                         run_started_at=day, ended_at=day + 5.0)
    assert silent.compute_s == pytest.approx(5.0)
    assert silent.last_activity() == day + 5.0

