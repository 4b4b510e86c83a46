"""How a Ray run's end is read: records of this run vs. records an earlier run left behind, and
the time budget shared by a two-step strategy's steps (fake tuners, no Ray)."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from hftune.study.records import StudyRecord, TrialRecord
from hftune.study.runner import StudyResult, execute, run_next_phase
from hftune.study.store import StudyStore


def _store(tmp_path: Path) -> StudyStore:
    store = StudyStore(tmp_path)
    store.trials_dir.mkdir(parents=True)
    store.write_study(StudyRecord(name="s", status="running", strategy="grid",
                                  metric="accuracy", mode="max", started_at=1000.0))
    # made by a killed run after Ray's last snapshot: Ray plans that trial again as "new"
    store.write_trial(TrialRecord(trial_id="lost", config={}, state="running",
                                  started_at=1000.0, run_started_at=1000.0,
                                  reports=[{"time": 1010.0, "accuracy": 0.9, "epoch": 1.0,
                                            "step": 10}]))
    return store


class _Tuner:
    """``fit`` writes the records Ray's callbacks would and returns a result grid."""

    def __init__(self, store: StudyStore, state: str) -> None:
        self.store, self.state = store, state

    def fit(self) -> Any:
        now = time.time()
        self.store.write_trial(TrialRecord(
            trial_id="new", config={}, state=self.state, started_at=now, run_started_at=now,
            ended_at=now if self.state != "running" else None,
            reports=[{"time": now, "accuracy": 0.7, "epoch": 1.0, "step": 10,
                      "elapsed_s": 1.0, "worker_pid": 1}]))
        return _Grid()


class _Grid:
    num_terminated, num_errors = 1, 0

    def __len__(self) -> int:
        return 1


def _prepared(budget_s: float | None, next_phase: Any = None) -> Any:
    strategy = SimpleNamespace(phase=None, next_phase=next_phase)
    return SimpleNamespace(config=SimpleNamespace(budget=SimpleNamespace(time_budget_s=budget_s)),
                           strategy=strategy, holdout=None)


@pytest.mark.parametrize("budget_s", [None, 1e-9])
def test_a_record_no_event_of_this_run_touched_is_not_this_runs(tmp_path, budget_s) -> None:
    """A resumed run whose trials all ended is finished, whatever records an earlier run left
    running (resume sets them aside); the time budget stops only this run's records."""
    store = _store(tmp_path)
    study = store.read_study()
    result = execute(_Tuner(store, "finished"), _prepared(budget_s), store, study)
    assert result.study.status == "finished"
    states = {t.trial_id: t.state for t in store.read_trials()}
    assert states == {"lost": "running", "new": "finished"}


def test_a_running_record_of_this_run_means_interrupted(tmp_path) -> None:
    store = _store(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        execute(_Tuner(store, "running"), _prepared(None), store, store.read_study())
    assert store.read_study().status == "interrupted"


class _Clock:
    """Stands in for the runner's ``time`` module: ``perf_counter`` and ``time`` move only when
    a fake tuner's ``fit`` says how long it ran."""

    def __init__(self) -> None:
        self.now = 5_000.0

    def perf_counter(self) -> float:
        return self.now

    def time(self) -> float:
        return self.now


def test_step_two_gets_what_step_one_left_of_the_budget(tmp_path, monkeypatch) -> None:
    from hftune.study import runner

    clock = _Clock()
    monkeypatch.setattr(runner, "time", clock)

    class Slow(_Tuner):
        def fit(self) -> Any:
            clock.now += 37.0  # step 1 ran 37 s
            return super().fit()

    store = _store(tmp_path)
    result = execute(Slow(store, "finished"), _prepared(100.0), store, store.read_study())
    assert result.budget_left_s == pytest.approx(63.0)
    assert result.study.wall_s == pytest.approx(37.0)  # the study is charged the same seconds
    assert execute(Slow(store, "finished"), _prepared(None), store,
                   store.read_study()).budget_left_s is None


def test_no_step_two_when_step_one_used_the_budget(tmp_path) -> None:
    store = _store(tmp_path)
    study = store.read_study()
    study.status, study.message = "finished", "budget.time_budget_s (60 s) reached"

    def plan_step_two(trials: Any) -> Any:
        raise AssertionError("step 2 planned with no time left")

    result = run_next_phase(_prepared(60.0, plan_step_two), store, None,
                            StudyResult(study, [], store.root, budget_left_s=-0.5))
    assert result.study.status == "finished"
    assert result.study.message == "budget.time_budget_s (60 s) reached in step 1; step 2 not run"
    assert store.read_study().message == result.study.message
