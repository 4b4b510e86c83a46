"""The study folder: records round-trip, best-trial selection, the lock, status rows."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from hftune.errors import StudyFolderError
from hftune.study.records import StudyRecord, TrialRecord, best_trial
from hftune.study.status import study_status
from hftune.study.store import StudyStore


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
