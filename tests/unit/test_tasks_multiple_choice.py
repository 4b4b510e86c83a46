"""``task.type: multiple_choice``: N (context, choice) pairs per example, accuracy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hftune.config.schema import TaskConfig
from hftune.data.loading import load_task_data
from hftune.data.tasks import resolve_task
from hftune.data.tokenize import tokenize_task
from hftune.errors import DataError
from hftune.testing.splits import write_splits

ROWS = [{"ctx": "She opened the door.", "start": "Then she", "a": "walked in.", "b": "flew.",
         "c": "sang.", "label": 0},
        {"ctx": "He was hungry.", "start": "So he", "a": "slept.", "b": "ate.", "c": "ran.",
         "label": 1}]



def _cfg(**extra) -> TaskConfig:
    fields = {"context_field": "ctx", "question_field": "start", "choices_fields": ["a", "b", "c"]}
    return TaskConfig(name="story", type="multiple_choice", **{**fields, **extra})


def test_each_choice_follows_the_question(tmp_path: Path) -> None:
    data = load_task_data(resolve_task(_cfg()), write_splits(tmp_path, ROWS, ROWS[:1]))
    train = data.splits["train"]
    assert train["choices"].tolist()[1] == ["So he slept.", "So he ate.", "So he ran."]
    assert train["label"].tolist() == [0, 1] and data.label_names == ()


def test_a_list_column_of_choices(tmp_path: Path) -> None:
    rows = [{"ctx": r["ctx"], "options": [r["a"], r["b"]], "label": r["label"]} for r in ROWS]
    cfg = TaskConfig(name="story", type="multiple_choice", context_field="ctx",
                     choices_field="options")
    data = load_task_data(resolve_task(cfg), write_splits(tmp_path, rows, rows))
    assert data.splits["validation"]["choices"].tolist()[0] == ["walked in.", "flew."]


@pytest.mark.parametrize("label", [3, -1, "b", None])
def test_a_label_outside_the_choices_is_refused(tmp_path: Path, label) -> None:
    bad = [ROWS[0], {**ROWS[1], "label": label}]
    with pytest.raises(DataError) as info:
        load_task_data(resolve_task(_cfg()), write_splits(tmp_path, bad, ROWS))
    assert "train.jsonl" in str(info.value) and "row 2" in str(info.value)


def test_rows_with_another_number_of_choices_are_refused(tmp_path: Path) -> None:
    rows = [{"ctx": "x", "options": ["a", "b"], "label": 0},
            {"ctx": "y", "options": ["a", "b", "c"], "label": 0}]
    cfg = TaskConfig(name="story", type="multiple_choice", context_field="ctx",
                     choices_field="options")
    with pytest.raises(DataError, match="row 2"):
        load_task_data(resolve_task(cfg), write_splits(tmp_path, rows, rows))


def test_an_example_is_its_choices_tokenized_as_pairs(tmp_path: Path, tiny_bert: Path) -> None:
    from transformers import AutoTokenizer

    from hftune.training.model import build_model

    task = resolve_task(_cfg())
    data = load_task_data(task, write_splits(tmp_path, ROWS, ROWS))
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_bert))
    split = tokenize_task(task.type, data.splits, tokenizer, 32, (), "train").splits["train"]
    first = split.features[1]
    assert len(first["input_ids"]) == 3 and first["labels"] == 1
    assert first["input_ids"][1] == tokenizer("He was hungry.", "So he ate.")["input_ids"]
    assert first["length"] == max(len(ids) for ids in first["input_ids"])
    # the collator pads the choices of a batch into (batch, choices, tokens)
    batch = task.type.collator(tokenizer)([{k: v for k, v in split.features[i].items()
                                            if k != "length"} for i in range(2)])
    assert tuple(batch["input_ids"].shape[:2]) == (2, 3)
    model = build_model(str(tiny_bert), (), {}, seed=1, task_type=task.type)
    assert type(model).__name__ == "BertForMultipleChoice"
    assert tuple(model(**batch).logits.shape) == (2, 3)


def test_accuracy_is_the_share_of_rows_whose_best_choice_is_right() -> None:
    from transformers import EvalPrediction

    task = resolve_task(_cfg()).type
    logits = np.array([[0.1, 0.9, 0.0], [2.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    compute = task.compute_metrics(None, ())
    assert compute(EvalPrediction(logits, np.array([1, 0, 0, 1]))) == {"accuracy": 0.5}
