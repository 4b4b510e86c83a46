"""The recorder across a resume whose Ray snapshot is older than the records: a member that
continues from a state before an exploit loses that exploit (history, lineage, config); one that
continues the very exploit the snapshot holds keeps it once; a new exploit is recorded.

Driven through the Ray Tune callback methods Ray calls, with fake trials (no Ray)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from hftune.study.recorder import StudyRecorder
from hftune.study.store import StudyStore

OLD, NEW = {"learning_rate": 1e-3}, {"learning_rate": 2e-3}


def _trial(config: dict[str, Any], trial_id: str = "t") -> SimpleNamespace:
    return SimpleNamespace(trial_id=trial_id, config=dict(config))


def _report(epoch: int, eval_id: str, run_config: dict[str, Any] | None = None,
            **extra: Any) -> dict[str, Any]:
    report = {"epoch": float(epoch), "step": 10 * epoch, "accuracy": 0.5, "elapsed_s": 1.0,
              "eval_id": eval_id, **extra}
    if run_config is not None:  # the first report of a run
        report.update(worker_pid=1, trial_config=dict(run_config))
    return report


def _killed_study(tmp_path: Path) -> StudyStore:
    """Trial ``t`` reported epochs 1-3 (eval a, b, c), exploited ``d``'s epoch-2 checkpoint
    (so it reports epoch 3 again, eval e) and reported epoch 4 (eval f); then the study died."""
    store = StudyStore(tmp_path)
    store.trials_dir.mkdir(parents=True)
    rec = StudyRecorder(store, ["learning_rate"])
    trial = _trial(OLD)
    for report in (_report(1, "a", OLD), _report(2, "b"), _report(3, "c")):
        rec.on_trial_result(1, [], trial, report)
    trial.config = dict(NEW)
    rec.on_trial_result(1, [], trial, _report(3, "e", NEW, restored_from="d",
                                               restored_epoch=2.0, restored_eval="x"))
    rec.on_trial_result(1, [], trial, _report(4, "f"))
    assert len(store.read_lineage()) == 1
    return store


def _record(store: StudyStore) -> Any:
    return next(t for t in store.read_trials() if t.trial_id == "t")


def test_a_resume_from_before_an_exploit_undoes_it(tmp_path: Path) -> None:
    """Ray's snapshot held the member's own epoch-3 checkpoint taken before the exploit
    (eval c, at the same epoch as the exploit's first report): the exploit never happened in
    the history it continues."""
    store = _killed_study(tmp_path)
    rec = StudyRecorder(store, ["learning_rate"])  # the resume's recorder
    rec.on_trial_result(1, [], _trial(OLD), _report(4, "g", OLD, restored_from="t",
                                                     restored_epoch=3.0, restored_eval="c"))
    record = _record(store)
    assert [r["eval_id"] for r in record.reports] == ["a", "b", "c", "g"]
    assert record.config == OLD and record.config_history == []
    assert store.read_lineage() == []


def test_a_resume_from_after_an_exploit_keeps_it(tmp_path: Path) -> None:
    """The snapshot held the member's epoch-3 checkpoint taken after the exploit (eval e)."""
    store = _killed_study(tmp_path)
    rec = StudyRecorder(store, ["learning_rate"])
    rec.on_trial_result(1, [], _trial(NEW), _report(4, "g", NEW, restored_from="t",
                                                     restored_epoch=3.0, restored_eval="e"))
    record = _record(store)
    assert [r["eval_id"] for r in record.reports] == ["a", "b", "c", "e", "g"]
    assert record.config == NEW and len(record.config_history) == 2
    assert len(store.read_lineage()) == 1


def test_a_resume_that_continues_the_snapshots_exploit_records_it_once(tmp_path: Path) -> None:
    """The snapshot held the exploit itself (the donor's checkpoint, eval x): the resumed run
    repeats the exploit's run; its earlier reports are replaced, the exploit stays one."""
    store = _killed_study(tmp_path)
    rec = StudyRecorder(store, ["learning_rate"])
    rec.on_trial_result(1, [], _trial(NEW), _report(3, "h", NEW, restored_from="d",
                                                     restored_epoch=2.0, restored_eval="x"))
    record = _record(store)
    assert [r["eval_id"] for r in record.reports] == ["a", "b", "c", "h"]
    assert record.config == NEW and len(record.config_history) == 2
    assert len(store.read_lineage()) == 1


def test_a_new_exploit_after_a_resume_is_recorded(tmp_path: Path) -> None:
    store = _killed_study(tmp_path)
    rec = StudyRecorder(store, ["learning_rate"])
    trial = _trial(NEW)
    rec.on_trial_result(1, [], trial, _report(5, "i", NEW, restored_from="t",
                                               restored_epoch=4.0, restored_eval="f"))
    # later in the resumed run, the same donor's same checkpoint again: a new exploit
    rec.on_trial_result(1, [], trial, _report(3, "j", NEW, restored_from="d",
                                               restored_epoch=2.0, restored_eval="x"))
    record = _record(store)
    assert [r["eval_id"] for r in record.reports] == ["a", "b", "c", "e", "f", "i", "j"]
    assert len(record.config_history) == 3 and len(store.read_lineage()) == 2
