"""The recorder and the study's end through real Ray Tune (the test session's Ray), with a tiny
trainable instead of a model: an errored trial's record, and a resume that skips what ended.

A trial with ``x == 2`` raises; the others report two evaluations
(:func:`hftune.testing.failing.two_evaluations_or_raise`)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from hftune.study.recorder import StudyRecorder
from hftune.study.records import StudyRecord
from hftune.study.store import StudyStore
from hftune.testing.failing import two_evaluations_or_raise


def _tuner(store: StudyStore, xs: list[int], max_failures: int = 0) -> Any:
    from ray import tune

    return tune.Tuner(
        tune.with_resources(two_evaluations_or_raise, {"cpu": 1}),
        param_space={"x": tune.grid_search(xs)},
        tune_config=tune.TuneConfig(metric="accuracy", mode="max", reuse_actors=True),
        run_config=tune.RunConfig(name="ray", storage_path=str(store.root.resolve()),
                                  callbacks=[StudyRecorder(store, ["x"])], verbose=0,
                                  failure_config=tune.FailureConfig(max_failures=max_failures)))


def _prepared() -> SimpleNamespace:
    """The few fields of a PreparedStudy that ``execute`` reads (one step, no held-out part)."""
    return SimpleNamespace(config=SimpleNamespace(budget=SimpleNamespace(time_budget_s=None)),
                           strategy=SimpleNamespace(phase=None), holdout=None)


def _study() -> StudyRecord:
    return StudyRecord(name="s", status="running", strategy="grid", metric="accuracy",
                       mode="max")


def test_a_study_with_one_failing_trial_ends_finished_with_that_trial_errored(
        ray_session, tmp_path: Path) -> None:
    from hftune.study.runner import execute

    store = StudyStore(tmp_path / "study")
    store.trials_dir.mkdir(parents=True)
    result = execute(_tuner(store, [1, 2, 3], max_failures=1), _prepared(), store, _study())
    assert result.study.status == "finished"
    by_x = {t.config["x"]: t for t in result.trials}
    assert {x: t.state for x, t in by_x.items()} == {1: "finished", 2: "errored",
                                                       3: "finished"}
    failed = by_x[2]
    assert failed.error is not None and "ValueError: boom at x=2" in failed.error
    assert failed.error.count("Failure # ") == 2  # the first attempt and its one retry
    assert failed.ended_at is not None and failed.reports == []
    assert result.study.best_trial_id == by_x[3].trial_id  # errored trials never score


def test_a_resume_skips_every_trial_that_ended_and_reruns_none(ray_session,
                                                               tmp_path: Path) -> None:
    """A kill left Ray's snapshot saying every trial still runs, while the records say two
    ended after it: the resume runs the third alone, and the ended records do not change."""
    from ray import tune

    from hftune._compat.ray import newest_snapshot, replace_restored_callbacks
    from hftune.study.resume import _mark_ended_in_snapshot

    store = StudyStore(tmp_path / "study")
    store.trials_dir.mkdir(parents=True)
    _tuner(store, [1, 3, 4]).fit()
    records = {t.config["x"]: t for t in store.read_trials()}
    snapshot = newest_snapshot(store.ray_dir)
    data = json.loads(snapshot.read_text())  # as a kill would have left it: all running
    for entry in data["trial_data"]:
        trial = json.loads(entry[0])
        trial["status"] = "RUNNING"
        entry[0] = json.dumps(trial)
    snapshot.write_text(json.dumps(data))
    interrupted = records[4]
    interrupted.state, interrupted.reports = "running", interrupted.reports[:1]
    store.write_trial(interrupted)
    ended_before = {x: t.to_dict() for x, t in records.items() if x != 4}

    _mark_ended_in_snapshot(store.ray_dir, store)
    trainable = tune.with_resources(two_evaluations_or_raise, {"cpu": 1})
    tuner = tune.Tuner.restore(str(store.ray_dir.resolve()), trainable=trainable,
                               resume_unfinished=True, resume_errored=False)
    replace_restored_callbacks(tuner, [StudyRecorder(store, ["x"])])
    tuner.fit()
    after = {t.config["x"]: t for t in store.read_trials()}
    for x, before in ended_before.items():
        assert after[x].to_dict() == before  # not run again: no new report, same record
    assert after[4].state == "finished" and [r["epoch"] for r in after[4].reports] == [1.0,
                                                                                      2.0]
