"""Before a resume, Ray's newest snapshot and the study folder are brought in line with the
records (hftune.study.resume): ended trials stay ended, trials the kill errored run again,
checkpoints the killed run wrote after the snapshot go, a lost checkpoint is stood in for."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hftune._compat.ray import newest_snapshot, read_snapshot
from hftune.errors import HftuneWarning
from hftune.study import resume
from hftune.study.records import TrialRecord
from hftune.study.store import StudyStore
from hftune.testing.ray_snapshot import write_snapshot
from hftune.training.checkpoint import write_meta


def _study(tmp_path: Path, states: dict[str, str]) -> StudyStore:
    store = StudyStore(tmp_path / "study")
    store.trials_dir.mkdir(parents=True)
    for trial_id, state in states.items():
        store.write_trial(TrialRecord(trial_id=trial_id, config={}, state=state))  # type: ignore[arg-type]
    return store


def _checkpoints(folder: Path, *indices: int) -> list[str]:
    paths = []
    for i in indices:
        path = folder / f"checkpoint_{i:06d}"
        path.mkdir(parents=True)
        write_meta(path, trial_id=folder.name, epoch=i + 1.0, global_step=i + 1, config={},
                   record={})
        paths.append(str(path))
    return paths


def test_records_that_ended_after_the_snapshot_end_it_too(tmp_path: Path) -> None:
    store = _study(tmp_path, {"a": "finished", "b": "stopped", "c": "running"})
    snapshot = write_snapshot(store.ray_dir, {"a": None, "b": None, "c": None},
                              statuses={"a": "RUNNING", "b": "PAUSED", "c": "RUNNING"})
    resume._mark_ended_in_snapshot(store.ray_dir, store)
    assert {t.trial_id: t.status for t in read_snapshot(snapshot)} == {
        "a": "TERMINATED", "b": "TERMINATED", "c": "RUNNING"}


def test_a_trial_the_kill_errored_runs_again(tmp_path: Path) -> None:
    """Errored in the records, unfinished in Ray's snapshot: reopened. Errored in both (a real
    error Ray saw): stays errored."""
    store = _study(tmp_path, {"a": "errored", "b": "errored", "c": "finished"})
    write_snapshot(store.ray_dir, {"a": None, "b": None, "c": None},
                   statuses={"a": "RUNNING", "b": "ERROR", "c": "RUNNING"})
    assert resume.reopen_killed_trials(store.ray_dir, store) == ["a"]
    states = {t.trial_id: t.state for t in store.read_trials()}
    assert states == {"a": "running", "b": "errored", "c": "finished"}


def test_checkpoints_written_after_the_snapshot_are_dropped(tmp_path: Path) -> None:
    store = _study(tmp_path, {"a": "running", "b": "finished", "d": "running"})
    a = store.ray_dir / "trial_a"
    kept = _checkpoints(a, 0, 1)
    stale = _checkpoints(a, 2, 3)  # the killed run's, after the snapshot
    finished = _checkpoints(store.ray_dir / "trial_b", 0, 1)
    donor = _checkpoints(store.ray_dir / "trial_d", 0)  # d exploited a's checkpoint_000001
    write_snapshot(store.ray_dir, {"a": kept[1], "b": finished[0], "d": kept[1]},
                   statuses={"b": "RUNNING"}, registered={"a": kept[:1], "d": donor})
    dropped = resume.drop_checkpoints_after_snapshot(store.ray_dir, store)
    assert sorted(map(str, dropped)) == stale
    assert all(Path(p).is_dir() for p in [*kept, *finished, *donor])


def test_a_lost_checkpoint_is_stood_in_for_by_the_newest_before_it(tmp_path: Path) -> None:
    store = _study(tmp_path, {"a": "running", "b": "running"})
    a = _checkpoints(store.ray_dir / "trial_a", 0, 2)
    b = _checkpoints(store.ray_dir / "trial_b", 1)
    lost_a = str(store.ray_dir / "trial_a" / "checkpoint_000003")
    lost_b = str(store.ray_dir / "trial_b" / "checkpoint_000000")
    write_snapshot(store.ray_dir, {"a": lost_a, "b": lost_b})
    with pytest.warns(HftuneWarning) as caught:
        unrestorable = resume.stand_in_for_lost_checkpoints(store.ray_dir, store)
    assert unrestorable == ["b"]
    assert Path(lost_a).is_symlink() and Path(lost_a).resolve() == Path(a[1])
    assert not Path(lost_b).exists() and Path(b[0]).is_dir()
    text = " ".join(str(w.message) for w in caught)
    assert "trial a" in text and "continues from checkpoint_000002" in text
    assert "trial b cannot continue" in text and lost_b in text


def test_the_newest_snapshot_is_the_one_a_restore_reads(tmp_path: Path) -> None:
    older = write_snapshot(tmp_path / "ray", {"a": None}, session="2026-12-01_09-00-00")
    newer = write_snapshot(tmp_path / "ray", {"a": None}, session="2026-12-02_09-00-00")
    assert newest_snapshot(tmp_path / "ray") == newer != older
    assert json.loads(newer.read_text())["trial_data"]
