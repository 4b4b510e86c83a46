"""The held-out part: how it is split off, and that it never reaches selection."""

from __future__ import annotations

from pathlib import Path

import pytest

from hftune.errors import ConfigError
from hftune.study.checkpoints import CheckpointMeta
from hftune.study.holdout import (
    HoldoutEvaluation,
    holdout_summary,
    record_holdout,
    select_top_k,
)
from hftune.study.loading import validate_study
from hftune.study.records import StudyRecord, TrialRecord, best_trial


def _with_holdout(trial_id: str, values: list[float], holdout: list[float]) -> TrialRecord:
    reports = [{"epoch": float(i + 1), "step": 10 * (i + 1), "accuracy": v,
                "holdout_accuracy": h} for i, (v, h) in enumerate(zip(values, holdout,
                                                                       strict=True))]
    return TrialRecord(trial_id=trial_id, config={"learning_rate": 1e-5}, state="finished",
                       reports=reports)


def planted() -> list[TrialRecord]:
    """``b`` is best on the selection rows; ``a`` and ``c`` would win on held-out values."""
    return [_with_holdout("a", [0.60, 0.62], [0.95, 0.99]),
            _with_holdout("b", [0.70, 0.66], [0.40, 0.41]),
            _with_holdout("c", [0.65, 0.50], [0.90, 0.98])]


def test_selection_reads_only_the_selection_metric() -> None:
    trials = planted()
    assert [t.trial_id for t in select_top_k(trials, "accuracy", "max", "best", 1)] == ["b"]
    assert [t.trial_id for t in select_top_k(trials, "accuracy", "max", "best", 3)] == [
        "b", "c", "a"]
    # the score rule and the direction are the study's
    assert [t.trial_id for t in select_top_k(trials, "accuracy", "max", "last", 1)] == ["b"]
    # score: last ranks by the last evaluations (0.66, 0.62, 0.50), not the best (.70 .65 .62)
    assert [t.trial_id for t in select_top_k(trials, "accuracy", "max", "last", 3)] == [
        "b", "a", "c"]
    # by default: the one best trial by its best evaluation
    assert [t.trial_id for t in select_top_k(trials, "accuracy", "max")] == ["b"]
    assert [t.trial_id for t in select_top_k(trials, "accuracy", "min", "best", 1)] == ["c"]
    # the held-out values, if selection read them, would pick another trial
    assert select_top_k(trials, "holdout_accuracy", "max", "best", 1)[0].trial_id == "a"


def test_ties_pick_the_trial_best_trial_picks() -> None:
    trials = [_with_holdout("x", [0.5], [0.1]), _with_holdout("y", [0.5], [0.9]),
              _with_holdout("z", [0.4], [1.0])]
    assert select_top_k(trials, "accuracy", "max", "best", 1)[0] is best_trial(
        trials, "accuracy", "max")
    assert select_top_k([], "accuracy", "max", "best", 2) == []


def test_recording_holdout_leaves_the_choice_alone(tmp_path: Path) -> None:
    trials = planted()
    study = StudyRecord(name="s", status="finished", strategy="grid", metric="accuracy",
                        mode="max", best_trial_id="b", best_value=0.70)
    results = []
    for trial_id, step, value in (("b", 10, 0.41), ("c", 10, 0.98)):
        ck = CheckpointMeta(tmp_path / f"{trial_id}/checkpoint_000000", trial_id,
                            step / 10, step, {}, {})
        # c's scored evaluation kept no checkpoint: scored at another one
        results.append(HoldoutEvaluation(trial_id, ck, {"accuracy": value, "loss": 0.7},
                                         scored=trial_id != "c"))
    changed = record_holdout(study, trials, results, source="validation[2:4]", rows=2, top_k=2,
                             missing=["a"])
    # a's values of an earlier evaluation are removed: it was not evaluated this time
    assert [t.trial_id for t in changed] == ["a", "b", "c"]
    assert not any(k.startswith("holdout_") for r in trials[0].reports for k in r)
    assert study.best_trial_id == "b" and study.best_value == 0.70
    assert study.best_holdout == 0.41  # the selected trial's, although c's is higher
    assert study.holdout["trials"] == {"b": 0.41, "c": 0.98}
    by_id = {t.trial_id: t for t in trials}
    assert by_id["b"].holdout["metrics"]["accuracy"] == 0.41
    assert by_id["b"].reports[0]["holdout_accuracy"] == 0.41  # at the checkpoint's step
    assert "holdout_accuracy" not in by_id["b"].reports[1]
    assert by_id["a"].holdout is None
    # what a record keeps of the evaluation (the report, status and `evaluate` read these)
    assert by_id["c"].holdout == {"metrics": {"accuracy": 0.98, "loss": 0.7}, "epoch": 1.0,
                                  "step": 10, "checkpoint": "checkpoint_000000", "rows": 2,
                                  "source": "validation[2:4]", "scored_checkpoint": False}
    assert study.holdout == {"source": "validation[2:4]", "rows": 2, "top_k": 2,
                             "metric": "accuracy", "trials": {"b": 0.41, "c": 0.98},
                             "missing_checkpoints": ["a"], "not_scored_checkpoints": ["c"]}
    # what `hftune evaluate` prints of it
    assert holdout_summary(study) == {
        "metric": "accuracy", "best_trial_id": "b", "best_value": 0.70, "best_holdout": 0.41,
        "source": "validation[2:4]", "rows": 2, "trials": {"b": 0.41, "c": 0.98},
        "missing": ["a"], "not_scored_checkpoint": ["c"]}
    # a later re-selection from the updated records still picks b
    assert best_trial(trials, "accuracy", "max").trial_id == "b"
    assert select_top_k(trials, "accuracy", "max", "best", 1)[0].trial_id == "b"


def test_held_out_values_go_to_the_report_of_the_checkpoints_epoch_and_step(
        tmp_path: Path) -> None:
    """After a PBT exploit that changed the batch size a trial has two reports of epoch 2
    (the donor's step 20, its own step 10 after the restore): the values go to the
    checkpoint's one only; a study without a best trial has no best_holdout."""
    trial = TrialRecord(trial_id="t", config={}, state="finished", reports=[
        {"epoch": 1.0, "step": 10, "accuracy": 0.5}, {"epoch": 2.0, "step": 20, "accuracy": 0.6},
        {"epoch": 2.0, "step": 10, "accuracy": 0.7}])
    study = StudyRecord(name="s", status="finished", strategy="pbt", metric="accuracy",
                        mode="max", best_trial_id=None, best_value=None)
    ck = CheckpointMeta(tmp_path / "t/checkpoint_000002", "t", 2.0, 10, {}, {})
    record_holdout(study, [trial], [HoldoutEvaluation("t", ck, {"accuracy": 0.9})],
                   source="validation[2:4]", rows=2, top_k=1)
    assert [r.get("holdout_accuracy") for r in trial.reports] == [None, None, 0.9]
    assert study.best_holdout is None


def _frames(rows: int, test: bool = False) -> dict:
    """Normalised splits whose rows say where they came from (``row``: offset + index)."""
    import pandas as pd

    def split(n: int, offset: int) -> pd.DataFrame:
        return pd.DataFrame({"text_a": [f"text {offset + i}" for i in range(n)],
                             "row": [offset + i for i in range(n)],
                             "label": [i % 2 for i in range(n)]})

    frames = {"train": split(20, 0), "validation": split(rows, 1000)}
    if test:
        frames["test"] = split(7, 5000)
    return frames


def _task(test_split: str | None = None):
    from hftune.config.schema import TaskConfig
    from hftune.data.tasks import resolve_task

    return resolve_task(TaskConfig(name="rte", test_split=test_split))


@pytest.mark.parametrize(("rows", "fraction", "keep"), [(10, 0.5, 5), (64, 0.5, 32),
                                                        (277, 0.5, 139), (10, 0.3, 7)])
def test_split_is_first_part_selection_last_part_held_out(rows, fraction, keep) -> None:
    from hftune.study.prepare import split_holdout

    frames = _frames(rows)
    held, source = split_holdout(frames, _task(), fraction)
    selection = frames["validation"]
    assert len(selection) == keep and len(held) == rows - keep
    assert selection["row"].tolist() == [1000 + i for i in range(keep)]
    assert held["row"].tolist() == [1000 + i for i in range(keep, rows)]
    assert source == f"validation[{keep}:{rows}]"
    again = _frames(rows)
    assert split_holdout(again, _task(), fraction)[0]["row"].tolist() == held["row"].tolist()


def test_split_uses_the_test_split_and_leaves_validation_whole() -> None:
    from hftune.study.prepare import split_holdout

    frames = _frames(10, test=True)
    held, source = split_holdout(frames, _task("test"), None)
    assert source == "test" and held["row"].tolist() == list(range(5000, 5007))
    assert "test" not in frames and len(frames["validation"]) == 10
    assert split_holdout(_frames(10), _task(), None) == (None, None)
    with pytest.raises(ConfigError, match="evaluation.holdout"):
        split_holdout(_frames(1), _task(), 0.5)


def _holdout_config(tmp_path: Path, model: str, **evaluation) -> dict:
    return {"name": "h", "output_dir": str(tmp_path / "out"), "model": model,
            "task": {"name": "rte", "max_train_samples": 32, "max_eval_samples": 20},
            "max_length": 32, "search_space": {"learning_rate": [1e-3]},
            "evaluation": evaluation}


def test_config_checks(tmp_path: Path) -> None:
    from hftune.study.prepare import prepare_study

    for bad in (0.0, 1.0, 1.5):
        with pytest.raises(ConfigError, match="evaluation.holdout"):
            validate_study(_holdout_config(tmp_path, "m", holdout=bad))
    with pytest.raises(ConfigError, match="evaluation.holdout_top_k"):
        validate_study(_holdout_config(tmp_path, "m", holdout=0.5, holdout_top_k=0))
    cfg = _holdout_config(tmp_path, "/nonexistent/model", holdout=0.5)
    cfg["task"]["test_split"] = "test"
    with pytest.raises(ConfigError, match="set only one"):
        prepare_study(validate_study(cfg))


def test_trials_get_only_the_selection_rows(tmp_path: Path, tiny_bert: Path,
                                            shared_data: Path) -> None:
    from hftune.study.prepare import prepare_study
    from hftune.study.runner import trial_setup

    cfg = _holdout_config(tmp_path, str(tiny_bert), holdout=0.5)
    cfg["task"]["data_dir"] = str(shared_data / "rte")
    prepared = prepare_study(validate_study(cfg))
    setup = trial_setup(prepared)
    assert len(setup.eval_dataset) == 10 and len(prepared.holdout) == 10
    cfg["evaluation"] = {}
    whole = prepare_study(validate_study(cfg)).tokenized.splits["validation"].features
    assert setup.eval_dataset["input_ids"] == whole["input_ids"][:10]
    assert prepared.holdout.features["input_ids"] == whole["input_ids"][10:]
    assert prepared.holdout_source == "validation[10:20]"
