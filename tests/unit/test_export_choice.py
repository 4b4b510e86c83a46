"""Which trial and checkpoint export and the held-out estimate take, and what they say about
it: the records' best (not a stale ``study.json``), the checkpoint of the scored evaluation
(step and epoch), a fallback that is announced, a card that says how the model was chosen."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from hftune.study.checkpoints import recorded_checkpoint, scan_checkpoints
from hftune.study.export import choose_export, export_best
from hftune.study.holdout import holdout_summary, record_holdout
from hftune.study.records import StudyRecord, TrialRecord, best_trial
from hftune.study.store import StudyStore
from hftune.testing.records import checkpoint_meta


def _trial_at_steps(trial_id: str, reports: list[tuple[int, float, float]]) -> TrialRecord:
    return TrialRecord(trial_id=trial_id, config={}, state="finished",
                       reports=[{"step": s, "epoch": e, "accuracy": v} for s, e, v in reports])


def test_export_takes_the_records_best_when_study_json_is_stale(tmp_path: Path) -> None:
    """A resumed run killed before it ended leaves study.json's best of the run before."""
    store = StudyStore(tmp_path / "study")
    store.write_study(StudyRecord(name="s", status="interrupted", strategy="grid",
                                  metric="accuracy", mode="max", best_trial_id="a",
                                  best_value=0.7))
    store.write_trial(_trial_at_steps("a", [(10, 1.0, 0.7)]))
    store.write_trial(_trial_at_steps("b", [(10, 1.0, 0.6), (20, 2.0, 0.9)]))
    checkpoint_meta(store.root / "ray/t_a/checkpoint_000000", "a", 1.0, 0.7)
    checkpoint_meta(store.root / "ray/t_b/checkpoint_000001", "b", 2.0, 0.9)
    study, trial, ck = choose_export(store)
    assert trial.trial_id == "b" and ck.epoch == 2.0
    assert study.best_trial_id == "b" and study.best_value == 0.9 and study.best_epoch == 2.0
    assert store.read_study().best_trial_id == "a"  # export does not write study.json


def test_a_step_reported_twice_matches_the_checkpoint_of_the_same_epoch(tmp_path: Path) -> None:
    """After a PBT exploit to twice the batch size, a member's step counter is re-expressed in
    the new batch size, so step 20 comes again at a later epoch."""
    trial = _trial_at_steps("a", [(10, 1.0, 0.6), (20, 2.0, 0.8), (10, 3.0, 0.7), (20, 4.0, 0.72)])
    checkpoint_meta(tmp_path / "ray/t_a/checkpoint_000001", "a", 2.0, 0.8)
    folder = tmp_path / "ray/t_a/checkpoint_000003"
    checkpoint_meta(folder, "a", 4.0, 0.72)
    meta = json.loads((folder / "hftune.json").read_text())
    meta["global_step"] = meta["record"]["step"] = 20  # the same step, a later epoch
    (folder / "hftune.json").write_text(json.dumps(meta))
    found = scan_checkpoints(tmp_path / "ray")
    ck = recorded_checkpoint(found, trial, "accuracy", "max")
    assert ck is not None and ck.epoch == 2.0 and ck.value("accuracy") == 0.8


def test_export_announces_a_checkpoint_that_is_not_the_scored_evaluation(
        study_dir: Path, tmp_path: Path) -> None:
    from transformers import AutoModelForSequenceClassification

    root = study_dir
    best = root / "ray/t_b/checkpoint_000000"  # b's scored evaluation: epoch 1, 0.75
    later = checkpoint_meta(root / "ray/t_b/checkpoint_000001", "b", 2.0, 0.7)
    AutoModelForSequenceClassification.from_pretrained(str(best)).save_pretrained(str(later))
    result = export_best(root, tmp_path / "scored")
    assert result.scored and result.checkpoint.epoch == 1.0
    shutil.rmtree(best)
    result = export_best(root, tmp_path / "fallback")
    assert not result.scored and result.checkpoint.epoch == 2.0
    assert result.value == 0.7 and result.scored_value == 0.75
    card = (tmp_path / "fallback/README.md").read_text()
    assert "was no longer kept: these are the weights of its next kept checkpoint" in card
    assert "**not** the trial's score" in card
    assert "Held-out accuracy" not in card  # measured on the other checkpoint
    provenance = json.loads((tmp_path / "fallback/hftune_export.json").read_text())
    assert provenance["scored_evaluation"] is False and provenance["trial_score"] == 0.75


def test_the_card_says_a_trial_was_chosen_by_hand_and_which_evaluation(
        study_dir: Path, tmp_path: Path) -> None:
    from transformers import AutoModelForSequenceClassification

    root = study_dir
    folder = checkpoint_meta(root / "ray/t_a/checkpoint_000001", "a", 2.0, 0.6)
    AutoModelForSequenceClassification.from_pretrained(
        str(root / "ray/t_b/checkpoint_000000")).save_pretrained(str(folder))
    export_best(root, tmp_path / "a", trial_id="a")
    card = (tmp_path / "a/README.md").read_text()
    assert "# toy: rte, trial a" in card
    assert "Trial a, chosen by hand (`hftune export --trial`); the study's best trial is b." \
        in card
    assert "The trial with the highest score" not in card
    assert "the value selection maximised" not in card
    # a study scored on each trial's last evaluation says so
    study = json.loads((root / "study.json").read_text())
    study["score"] = "last"
    (root / "study.json").write_text(json.dumps(study))
    export_best(root, tmp_path / "last", trial_id="a")
    assert "weights of that trial's last evaluation" in (tmp_path / "last/README.md").read_text()


def test_infinite_values_are_no_score() -> None:
    diverged = _trial_at_steps("d", [(10, 1.0, math.inf)])
    fine = _trial_at_steps("f", [(10, 1.0, 0.6)])
    assert diverged.score("accuracy", "max") is None
    assert best_trial([diverged, fine], "accuracy", "max").trial_id == "f"


def test_evaluate_summary_lists_what_it_could_not_score_at_the_scored_checkpoint(
        tmp_path: Path) -> None:
    from hftune.study.holdout import HoldoutEvaluation
    from hftune.training.checkpoint import read_meta

    study = StudyRecord(name="s", status="finished", strategy="grid", metric="accuracy",
                        mode="max", best_trial_id="a")
    trials = [_trial_at_steps("a", [(10, 1.0, 0.8)]), _trial_at_steps("b", [(10, 1.0, 0.7)])]
    ck = read_meta(checkpoint_meta(tmp_path / "ray/t_b/checkpoint_000000", "b", 1.0, 0.7))
    record_holdout(study, trials, [HoldoutEvaluation("b", ck, {"accuracy": 0.6}, scored=False)],
                   source="validation[4:8]", rows=4, top_k=2, missing=["a"])
    summary = holdout_summary(study)
    assert summary["missing"] == ["a"] and summary["not_scored_checkpoint"] == ["b"]
    assert summary["best_holdout"] is None
    assert trials[1].holdout["scored_checkpoint"] is False


@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_a_checkpoint_of_a_value_that_is_no_score_is_never_chosen(tmp_path: Path,
                                                                  value: float) -> None:
    trial = _trial_at_steps("a", [(10, 1.0, 0.6), (20, 2.0, value)])
    checkpoint_meta(tmp_path / "ray/t_a/checkpoint_000000", "a", 1.0, 0.6)
    checkpoint_meta(tmp_path / "ray/t_a/checkpoint_000001", "a", 2.0, value)
    ck = recorded_checkpoint(scan_checkpoints(tmp_path / "ray"), trial, "accuracy", "max")
    assert ck is not None and ck.epoch == 1.0
