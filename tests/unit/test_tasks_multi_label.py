"""``task.type: multi_label``: lists of classes as 0/1 vectors, sigmoid heads, F1 metrics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hftune.config.schema import TaskConfig
from hftune.data.loading import load_task_data
from hftune.data.tasks import resolve_task
from hftune.errors import DataError
from hftune.tasks.multi_label import multi_label_scores
from hftune.testing.splits import write_splits


def _cfg(**extra) -> TaskConfig:
    return TaskConfig(name="topics", type="multi_label", text_fields=["text"],
                      label_field="topics", **extra)


def test_class_lists_become_vectors_over_the_sorted_training_classes(tmp_path: Path) -> None:
    folder = write_splits(tmp_path, [{"text": "a", "topics": ["sport", "art"]},
                               {"text": "b", "topics": []},
                               {"text": "c", "topics": ["news"]}],
                    [{"text": "d", "topics": ["news", "sport"]}])
    data = load_task_data(resolve_task(_cfg()), folder)
    assert data.label_names == ("art", "news", "sport")
    assert data.splits["train"]["label"].tolist() == [[1.0, 0.0, 1.0], [0.0, 0.0, 0.0],
                                                      [0.0, 1.0, 0.0]]
    assert data.splits["validation"]["label"].tolist() == [[0.0, 1.0, 1.0]]


def test_given_label_names_fix_the_order_and_ids_count(tmp_path: Path) -> None:
    folder = write_splits(tmp_path, [{"text": "a", "topics": [2, 0]}, {"text": "b", "topics": [1]}],
                    [{"text": "c", "topics": ["y"]}])
    data = load_task_data(resolve_task(_cfg(labels=["x", "y", "z"])), folder)
    assert data.label_names == ("x", "y", "z")
    assert data.splits["train"]["label"].tolist() == [[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]


@pytest.mark.parametrize("cell", ["sport", 3, None])
def test_a_cell_that_is_not_a_list_names_the_row(tmp_path: Path, cell) -> None:
    folder = write_splits(tmp_path, [{"text": "a", "topics": ["x", "y"]},
                                     {"text": "b", "topics": cell}],
                    [{"text": "c", "topics": []}])
    with pytest.raises(DataError, match="train.jsonl") as info:
        load_task_data(resolve_task(_cfg()), folder)
    assert "row 2" in str(info.value) or "line 2" in str(info.value)


def test_a_validation_class_not_in_training_is_refused(tmp_path: Path) -> None:
    folder = write_splits(tmp_path, [{"text": "a", "topics": ["x"]},
                                     {"text": "b", "topics": ["y"]}],
                    [{"text": "c", "topics": ["w"]}])
    with pytest.raises(DataError, match="validation.jsonl"):
        load_task_data(resolve_task(_cfg()), folder)


def test_the_head_is_one_sigmoid_per_class(tiny_bert: Path) -> None:
    from hftune.training.model import build_model

    task = resolve_task(_cfg(labels=["x", "y", "z"]))
    model = build_model(str(tiny_bert), ("x", "y", "z"), {}, seed=1, task_type=task.type)
    assert model.config.problem_type == "multi_label_classification"
    assert model.config.id2label == {0: "x", 1: "y", 2: "z"}


def test_scores_threshold_the_sigmoid_at_one_half() -> None:
    from sklearn.metrics import f1_score

    gold = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 0]])
    # logits just over / under 0 are probabilities just over / under 0.5
    logits = np.array([[0.1, -0.1, 2.0], [-3.0, 0.2, 0.3], [1.0, -1.0, -1.0], [-1, -1, -1]])
    preds = (logits > 0).astype(int)
    scores = multi_label_scores(logits, gold, ("micro_f1", "macro_f1", "subset_accuracy"))
    assert scores["micro_f1"] == pytest.approx(f1_score(gold, preds, average="micro"))
    assert scores["macro_f1"] == pytest.approx(f1_score(gold, preds, average="macro",
                                                        zero_division=0))
    assert scores["subset_accuracy"] == pytest.approx(0.5)  # rows 1 and 4 wholly right
