"""Extra validation splits (``task.extra_validation_splits``; MNLI's mismatched set by default):
each evaluation scores them too, with their own labels, in the same report under their prefix;
strategies never rank by them; the report shows the best trial's value at the evaluation that
gives it its score."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from hftune.config.schema import TaskConfig
from hftune.data.tasks import resolve_task
from hftune.errors import ConfigError
from hftune.report.data import load_study
from hftune.report.tables import comparison_table
from hftune.tasks import TokenizedSplit
from hftune.testing.records import evaluation, study_folder, trial_record
from hftune.testing.splits import write_splits
from hftune.training.trainable import TrialSetup, run_trial


def test_mnli_evaluates_its_mismatched_set_and_a_config_can_say_otherwise() -> None:
    mnli = resolve_task(TaskConfig(name="mnli"))
    assert mnli.validation_split == "validation_matched"
    assert mnli.extra_evaluations == {"mismatched": "validation_mismatched"}
    assert resolve_task(TaskConfig(name="mnli", extra_validation_splits=[])).extra_evaluations \
        == {}
    assert resolve_task(TaskConfig(name="rte")).extra_evaluations == {}
    custom = resolve_task(TaskConfig(name="rte", extra_validation_splits=["dev2", "test_a"]))
    assert custom.extra_evaluations == {"dev2": "dev2", "test_a": "test_a"}


@pytest.mark.parametrize("splits", [["validation_matched"], ["train"],
                                    ["validation_x", "x"], ["validation_holdout"]])
def test_a_split_twice_or_two_splits_under_one_prefix_are_refused(splits: list[str]) -> None:
    with pytest.raises(ConfigError, match="task.extra_validation_splits"):
        resolve_task(TaskConfig(name="mnli", extra_validation_splits=splits))


def test_every_report_scores_the_extra_splits_with_their_own_labels(
        rte_trial_setup: TrialSetup, tmp_path: Path) -> None:
    """Same rows, labels flipped: the extra split's accuracy is 1 − the main one's (a binary
    task), at every evaluation, in one report per evaluation; same rows and labels: equal."""
    main = rte_trial_setup.eval_dataset
    flipped = main.map(lambda row: {"labels": 1 - row["labels"]})
    setup = dataclasses.replace(rte_trial_setup, extra_eval={
        "flipped": TokenizedSplit(flipped, len(flipped)),
        "same": TokenizedSplit(main, len(main))})
    reports: list[dict] = []
    run_trial({"num_train_epochs": 2, "learning_rate": 1e-3, "per_device_train_batch_size": 16},
              setup, lambda record, folder: reports.append(record), str(tmp_path))
    assert [r["epoch"] for r in reports] == [1.0, 2.0]
    for r in reports:
        assert r["flipped_accuracy"] == pytest.approx(1.0 - r["accuracy"])
        assert r["same_accuracy"] == pytest.approx(r["accuracy"])
        assert r["same_loss"] == pytest.approx(r["loss"])
        assert r["flipped_loss"] != pytest.approx(r["loss"])


def test_a_study_reads_and_caps_the_extra_splits(tmp_path: Path, tiny_bert: Path,
                                                 shared_data: Path) -> None:
    from hftune.study.loading import validate_study
    from hftune.study.prepare import prepare_study
    from hftune.study.runner import trial_setup

    rows = [json.loads(line) for line in
            (shared_data / "rte" / "validation.jsonl").read_text().splitlines()[:30]]
    data = write_splits(tmp_path / "mnli", rows[:20], rows[:4],
                        validation_matched=rows[:12], validation_mismatched=rows[12:30])
    cfg = {"name": "m", "output_dir": str(tmp_path / "out"), "model": str(tiny_bert),
           "task": {"name": "mnli", "data_dir": str(data), "text_fields": ["premise",
                                                                           "hypothesis"],
                    "labels": ["entailment", "not_entailment"], "max_eval_samples": 10},
           "max_length": 32, "search_space": {"learning_rate": [1e-4]}}
    setup = trial_setup(prepare_study(validate_study(cfg)))
    assert list(setup.extra_eval) == ["mismatched"]
    assert len(setup.eval_dataset) == 10 and len(setup.extra_eval["mismatched"]) == 10
    mismatched = setup.extra_eval["mismatched"].features
    assert mismatched["labels"] == [r["label"] for r in rows[12:22]]


def test_the_report_shows_the_best_trials_value_where_it_scored(tmp_path: Path) -> None:
    """Best trial b scores 0.8 at epoch 1 (mismatched 0.61) and 0.7 at epoch 2 (mismatched
    0.9): the column shows 0.6100; a study without extra splits has no such column."""
    b = trial_record("b", reports=[evaluation(1, 0.8, mismatched_accuracy=0.61),
                                   evaluation(2, 0.7, mismatched_accuracy=0.9)])
    a = trial_record("a", reports=[evaluation(1, 0.5, mismatched_accuracy=0.95)])
    with_extra = study_folder(tmp_path / "mnli", [a, b], extra_evaluations=["mismatched"])
    plain = study_folder(tmp_path / "rte", [trial_record("c", [0.6])])
    headers, rows = comparison_table([load_study(with_extra), load_study(plain)])
    column = headers.index("Best trial on mismatched")
    assert [row[column] for row in rows] == ["0.6100", "-"]
    headers, _ = comparison_table([load_study(plain)])
    assert not any("mismatched" in h for h in headers)
