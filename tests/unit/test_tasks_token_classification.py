"""``task.type: token_classification``: a tag per word, first sub-token labelled, seqeval F1."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hftune.config.schema import TaskConfig
from hftune.data.loading import load_task_data
from hftune.data.tasks import resolve_task
from hftune.data.tokenize import tokenize_task
from hftune.errors import DataError
from hftune.tasks.known import WNUT_TAGS
from hftune.tasks.token_classification import (
    IGNORED,
    aligned_tags,
    entity_scores,
    inside_tags,
    word_labels,
)
from hftune.testing.splits import write_splits


def _custom(**extra) -> TaskConfig:
    return TaskConfig(name="ents", type="token_classification", **extra)


def test_wnut17_tags_are_ids_in_the_hub_order(shared_data: Path) -> None:
    task = resolve_task(TaskConfig(name="wnut17"))
    assert task.type.name == "token_classification" and task.primary_metric == "f1"
    data = load_task_data(task, shared_data / "wnut17")
    assert data.label_names == WNUT_TAGS
    raw = [json.loads(line) for line in (shared_data / "wnut17" / "train.jsonl").open()]
    assert len(data.splits["train"]) == len(raw) == 3394
    first = data.splits["train"].iloc[0]
    assert first["tokens"] == raw[0]["tokens"]
    assert [WNUT_TAGS[i] for i in first["label"]] == raw[0]["ner_tags"]


def test_tag_names_come_from_training_with_o_first(tmp_path: Path) -> None:
    folder = write_splits(tmp_path, [{"tokens": ["Ann", "met", "Bo"],
                                      "ner_tags": ["B-P", "O", "B-P"]},
                               {"tokens": ["in", "Rome"], "ner_tags": ["O", "B-L"]}],
                    [{"tokens": ["Rome"], "ner_tags": ["B-L"]}])
    data = load_task_data(resolve_task(_custom()), folder)
    assert data.label_names == ("O", "B-L", "B-P")
    assert data.splits["train"]["label"].tolist() == [[2, 0, 2], [0, 1]]


@pytest.mark.parametrize("row, needle", [
    ({"tokens": ["a", "b"], "ner_tags": ["O"]}, "2 words but 1 tags"),
    ({"tokens": "a b", "ner_tags": ["O", "O"]}, "not a list"),
    ({"tokens": ["a", 3], "ner_tags": ["O", "O"]}, "not text"),
    ({"tokens": ["a"], "ner_tags": ["B-X"]}, "B-X"),
])
def test_a_bad_row_is_refused_naming_the_file_and_row(tmp_path: Path, row, needle) -> None:
    folder = write_splits(tmp_path, [{"tokens": ["a", "b"], "ner_tags": ["O", "B-P"]}],
                    [{"tokens": ["c"], "ner_tags": ["O"]}, row])
    with pytest.raises(DataError) as info:
        load_task_data(resolve_task(_custom(labels=["O", "B-P"])), folder)
    assert "validation.jsonl" in str(info.value) and "row 2" in str(info.value)
    assert needle in str(info.value)


def test_integer_tags_without_names_are_refused(tmp_path: Path) -> None:
    folder = write_splits(tmp_path, [{"tokens": ["a", "b"], "ner_tags": [0, 1]}],
                    [{"tokens": ["c"], "ner_tags": [0]}])
    with pytest.raises(DataError, match="task.labels"):
        load_task_data(resolve_task(_custom()), folder)


def test_only_the_first_sub_token_of_a_word_is_labelled() -> None:
    # words 0, 1 (two sub-tokens), 2; special tokens around them
    word_ids = [None, 0, 1, 1, 2, None]
    assert word_labels(word_ids, [3, 1, 0]) == [IGNORED, 3, 1, IGNORED, 0, IGNORED]
    names = ("O", "B-P", "I-P")
    assert inside_tags(names) == {1: 2}
    assert word_labels(word_ids, [0, 1, 0], inside_tags(names)) == [IGNORED, 0, 1, 2, 0, IGNORED]


def test_tokenized_labels_follow_the_words_of_the_real_tokenizer(shared_data: Path,
                                                                 tiny_bert: Path) -> None:
    from transformers import AutoTokenizer

    task = resolve_task(TaskConfig(name="wnut17"))
    data = load_task_data(task, shared_data / "wnut17")
    small = {k: v.head(20) for k, v in data.splits.items()}
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_bert))
    split = tokenize_task(task.type, small, tokenizer, 128, data.label_names,
                          "train").splits["train"]
    for row, features in zip(small["train"].itertuples(), split.features, strict=True):
        scored = [t for t in features["labels"] if t != IGNORED]
        # one label per word that has a token (the row is under 128 tokens)
        kept = [tag for word, tag in zip(row.tokens, row.label, strict=True)
                if tokenizer.tokenize(word)]
        assert scored == kept
        assert len(features["labels"]) == len(features["input_ids"]) == features["length"]


def test_scores_over_the_scored_tokens() -> None:
    names = ("O", "B-P", "I-P", "B-L")
    label_ids = np.array([[IGNORED, 1, 2, 0, IGNORED], [IGNORED, 3, IGNORED, IGNORED, IGNORED]])
    logits = np.zeros((2, 5, 4))
    # row 1: predicts B-P O O (the span B-P I-P is missed); row 2: predicts B-L (right)
    for (r, t), tag in {(0, 1): 1, (0, 2): 0, (0, 3): 0, (1, 1): 3}.items():
        logits[r, t, tag] = 5.0
    gold, predicted = aligned_tags(logits, label_ids)
    assert [g.tolist() for g in gold] == [[1, 2, 0], [3]]
    assert [p.tolist() for p in predicted] == [[1, 0, 0], [3]]
    scores = entity_scores(gold, predicted, names, ("f1", "precision", "recall", "accuracy"))
    # entities: gold {P(0-1), L}, predicted {P(0), L}: one of two right either way
    assert scores == pytest.approx({"f1": 0.5, "precision": 0.5, "recall": 0.5,
                                    "accuracy": 0.75})


def test_the_model_has_a_tag_head(tiny_bert: Path) -> None:
    from hftune.training.model import build_model

    task = resolve_task(TaskConfig(name="wnut17"))
    model = build_model(str(tiny_bert), WNUT_TAGS, {}, seed=1, task_type=task.type)
    assert type(model).__name__ == "BertForTokenClassification"
    assert model.config.id2label[1] == "B-corporation"


def test_the_hub_copy_with_integer_tags_reads_as_the_local_one(shared_data: Path,
                                                               monkeypatch) -> None:
    """The Hub's wnut_17 stores tags as ids in WNUT_TAGS order: through a stand-in for
    ``load_dataset`` (called with the known task's dataset id), the rows equal the local
    folder's, whose tags are names."""
    import datasets

    monkeypatch.delenv("HFTUNE_DATA_DIR", raising=False)  # no local root: the Hub is asked
    local = load_task_data(resolve_task(TaskConfig(name="wnut17")), shared_data / "wnut17")
    calls: list[tuple] = []

    def hub(*args):
        calls.append(args)
        splits = {}
        for split in ("train", "validation"):
            rows = [json.loads(x) for x in (shared_data / "wnut17" / f"{split}.jsonl").open()]
            splits[split] = datasets.Dataset.from_dict(
                {"id": [str(i) for i in range(len(rows))], "tokens": [r["tokens"] for r in rows],
                 "ner_tags": [[WNUT_TAGS.index(t) for t in r["ner_tags"]] for r in rows]})
        return datasets.DatasetDict(splits)

    remote = load_task_data(resolve_task(TaskConfig(name="wnut17")), hub_loader=hub)
    assert calls == [("leondz/wnut_17",)]
    assert remote.source == "hub:leondz/wnut_17" and remote.label_names == local.label_names
    for split in ("train", "validation"):
        assert [list(x) for x in remote.splits[split]["label"]] == \
            local.splits[split]["label"].tolist()
        assert [list(x) for x in remote.splits[split]["tokens"]] == \
            local.splits[split]["tokens"].tolist()


# every kind of tag seqeval's default mode reads: IOBES prefixes, a bare tag, '.', a type
# holding '-'
SEQEVAL_NAMES = ("O", "B-PER", "I-PER", "E-PER", "S-PER", "B-LOC", "I-LOC", "E-LOC", "S-LOC",
                 "B", "I", ".", "B-X-Y", "I-X")


@pytest.mark.parametrize("seed", range(4))
def test_entity_scores_are_seqevals_on_random_sequences(seed: int) -> None:
    """hftune's array version of seqeval's default mode gives seqeval's own precision, recall
    and F1 on 400 random batches of sentences (random lengths, empty ones included, random
    subsets of :data:`SEQEVAL_NAMES`), and its token accuracy."""
    import random

    from seqeval.metrics import accuracy_score, f1_score, precision_score, recall_score

    rng = random.Random(seed)
    for _ in range(400):
        lengths = [rng.randint(0, 7) for _ in range(rng.randint(1, 5))]
        tags = rng.sample(range(len(SEQEVAL_NAMES)), rng.randint(1, len(SEQEVAL_NAMES)))
        gold = [np.array([rng.choice(tags) for _ in range(n)], dtype=int) for n in lengths]
        pred = [np.array([rng.choice(tags) for _ in range(n)], dtype=int) for n in lengths]
        named_gold = [[SEQEVAL_NAMES[i] for i in row] for row in gold]
        named_pred = [[SEQEVAL_NAMES[i] for i in row] for row in pred]
        scores = entity_scores(gold, pred, SEQEVAL_NAMES, ("f1", "precision", "recall",
                                                            "accuracy"))
        expected = {name: fn(named_gold, named_pred, zero_division=0) for name, fn in
                    (("f1", f1_score), ("precision", precision_score),
                     ("recall", recall_score))}
        if sum(lengths):
            expected["accuracy"] = accuracy_score(named_gold, named_pred)
        else:
            expected["accuracy"] = 0.0
        assert scores == pytest.approx(expected, abs=1e-12), (named_gold, named_pred)
