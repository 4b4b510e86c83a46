"""The study folder: records round-trip, best-trial selection, the lock, status rows."""

from __future__ import annotations

import json
import math
import os
import stat
from pathlib import Path

import pandas as pd
import pytest

from hftune.errors import StudyFolderError
from hftune.study.records import StudyRecord, TrialRecord, best_trial, score_value
from hftune.study.status import study_status
from hftune.study.store import StudyStore
from hftune.testing.records import study_folder, trials_with, two_trial_study


def make_trial(tid: str, accs: list[float], state: str = "finished") -> TrialRecord:
    reports = [{"epoch": float(i + 1), "step": 10 * (i + 1), "accuracy": a, "loss": 1 - a,
                "elapsed_s": 2.0 * (i + 1)} for i, a in enumerate(accs)]
    return TrialRecord(trial_id=tid, config={"learning_rate": 1e-5}, state=state,
                       reports=reports)


def test_score_best_and_last() -> None:
    t = make_trial("a", [0.5, 0.7, 0.6])
    assert t.score("accuracy", "max") == 0.7
    assert t.score("accuracy", "max", "last") == 0.6
    assert t.best_report("accuracy", "max")["epoch"] == 2.0
    assert t.score("loss", "min") == pytest.approx(0.3)
    assert t.compute_s == 6.0


def test_compute_adds_up_every_run_of_a_trial() -> None:
    """A PBT exploit or a resume runs the trial again, and its clock starts again: 5 s, then
    3 s after a restore (its first report names the worker), then 1 s more."""
    runs = [{"epoch": 1.0, "worker_pid": 10, "elapsed_s": 2.0}, {"epoch": 2.0, "elapsed_s": 5.0},
            {"epoch": 3.0, "worker_pid": 11, "elapsed_s": 3.0},
            {"epoch": 4.0, "worker_pid": 11, "elapsed_s": 1.0}]
    trial = TrialRecord(trial_id="p", config={}, reports=runs)
    assert trial.compute_s == 5.0 + 3.0 + 1.0
    assert TrialRecord(trial_id="q", config={}).compute_s == 0.0


def test_best_trial_uses_the_rule() -> None:
    a, b = make_trial("a", [0.5, 0.9, 0.6]), make_trial("b", [0.7, 0.8])
    assert best_trial([a, b], "accuracy", "max", "best").trial_id == "a"
    assert best_trial([a, b], "accuracy", "max", "last").trial_id == "b"
    assert best_trial([TrialRecord("c", {})], "accuracy", "max") is None


def test_initial_config_survives_an_exploit() -> None:
    plain = TrialRecord("a", {"learning_rate": 1e-4, "seed": 3})
    assert plain.initial_config == {"learning_rate": 1e-4, "seed": 3}
    cloned = TrialRecord("b", {"learning_rate": 8e-5, "seed": 3}, config_history=[
        {"epoch": 0.0, "config": {"learning_rate": 2e-4, "seed": 4}},
        {"epoch": 1.0, "config": {"learning_rate": 8e-5, "seed": 3}, "from_trial": "a"}])
    assert cloned.initial_config == {"learning_rate": 2e-4, "seed": 4}


def test_store_round_trip_and_tables(tmp_path: Path) -> None:
    store = StudyStore(tmp_path / "s")
    study = StudyRecord(name="s", status="finished", strategy="grid", metric="accuracy",
                        mode="max", best_trial_id="a")
    store.write_study(study)
    store.write_trial(make_trial("a", [0.5, 0.9]))
    store.write_trial(make_trial("b", [0.6], state="stopped"))
    assert store.read_study() == study
    assert [t.trial_id for t in store.read_trials()] == ["a", "b"]
    store.write_tables(study)
    trials = pd.read_csv(store.root / "trials.csv")
    assert trials.set_index("trial_id").loc["a", "best"] == 0.9
    assert trials.set_index("trial_id").loc["a", "best_epoch"] == 2.0
    assert len(pd.read_csv(store.root / "reports.csv")) == 3


def test_status_rows_and_interrupted(tmp_path: Path) -> None:
    store = StudyStore(tmp_path)
    store.write_study(StudyRecord(name="s", status="running", strategy="grid",
                                  metric="accuracy", mode="max"))
    store.write_trial(make_trial("a", [0.5, 0.9]))
    data = study_status(tmp_path)
    assert data["status"] == "interrupted"  # running, but nobody holds the lock
    assert data["trials"][0]["best"] == 0.9 and data["trials"][0]["best_epoch"] == 2.0
    json.dumps(data)  # JSON-ready


def test_forget_trials_drops_records_and_their_exploits(tmp_path: Path) -> None:
    store = StudyStore(tmp_path)
    for tid, phase in (("s1", "screen"), ("p1", "pbt"), ("p2", "pbt")):
        store.write_trial(TrialRecord(tid, {"seed": 1}, phase=phase))
    store.append_lineage({"time": 1.0, "from_trial": "p1", "to_trial": "p2"})
    store.append_lineage({"time": 2.0, "from_trial": "x1", "to_trial": "x2"})
    store.forget_trials({"p1", "p2"})
    assert [t.trial_id for t in store.read_trials()] == ["s1"]
    assert store.read_lineage() == [{"time": 2.0, "from_trial": "x1", "to_trial": "x2"}]


def test_lock_refuses_a_second_holder(tmp_path: Path) -> None:
    first, second = StudyStore(tmp_path), StudyStore(tmp_path)
    first.acquire_lock()
    try:
        assert second.is_locked()
        with pytest.raises(StudyFolderError, match="another hftune process"):
            second.acquire_lock()
    finally:
        first.release_lock()
    assert not second.is_locked()


def test_not_a_study_folder(tmp_path: Path) -> None:
    with pytest.raises(StudyFolderError, match="not a study folder"):
        StudyStore(tmp_path).read_study()


def test_lineage_skips_a_cut_last_line_and_refuses_a_bad_one_before(tmp_path: Path) -> None:
    store = two_trial_study(tmp_path / "study")
    event = {"time": 1.0, "from_trial": "a", "to_trial": "b", "epoch": 1.0, "new_config": {}}
    path = store.root / "lineage.jsonl"
    path.write_text(json.dumps(event) + "\n" + '{"time": 2.0, "from_tri')
    assert store.read_lineage() == [event]
    path.write_text('{"time": 2.0, "from_tri\n' + json.dumps(event) + "\n")
    with pytest.raises(StudyFolderError, match=r"lineage.jsonl: line 1 is not a JSON object"):
        store.read_lineage()


def test_study_files_get_the_umask_mode(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        store = two_trial_study(tmp_path / "study")
    finally:
        os.umask(old)
    for path in (store.root / "study.json", store.root / "study.yaml",
                 store.trials_dir / "a.json"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o640, path


def test_a_bad_trial_record_is_one_line(tmp_path: Path) -> None:
    root = study_folder(tmp_path / "s", trials_with([[0.6]]))
    (root / "trials" / "t9.json").write_text(json.dumps({"config": {}}), encoding="utf-8")
    with pytest.raises(StudyFolderError, match=r"t9\.json: not a trial record"):
        StudyStore(root).read_trials()


def test_a_non_numeric_metric_value_is_no_value() -> None:
    trial = TrialRecord("t", {}, "finished", reports=[
        {"epoch": 1, "accuracy": "high"}, {"epoch": 2, "accuracy": 0.7},
        {"epoch": 3, "accuracy": True}, {"epoch": "three", "accuracy": [1]}])
    assert trial.values("accuracy") == [0.7]
    assert trial.best_report("accuracy", "max")["epoch"] == 2
    assert trial.scored_report("accuracy", "max", "last")["epoch"] == 2
    assert trial.score("accuracy", "min") == 0.7
    summary = trial.summary("accuracy", "max", "last")
    assert (summary["score"], summary["last"], summary["epochs"]) == (0.7, 0.7, None)
    only_text = TrialRecord("u", {}, "finished", reports=[{"epoch": 1, "accuracy": "high"}])
    assert only_text.score("accuracy", "max") is None
    assert best_trial([only_text, trial], "accuracy", "max") is trial
    assert [score_value(v) for v in (1, 0.5, "0.5", None, math.nan, False)] == [
        1.0, 0.5, None, None, None, None]
