"""What reaches the model: its own columns, lengths read once, ``length`` never in a batch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import datasets
import pytest

from hftune.training.batches import (
    LENGTH_COLUMN,
    PaddingCollator,
    column_as_list,
    model_inputs,
)
from hftune.training.trainable import TrialSetup, run_trial


class _NoTokenTypes:
    """A model whose forward takes no token_type_ids (like DistilBERT)."""

    def forward(self, input_ids=None, attention_mask=None, labels=None, **kwargs: Any) -> None:
        """Never called."""


class _Bert:
    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None,
                labels=None) -> None:
        """Never called."""


def _rows() -> datasets.Dataset:
    return datasets.Dataset.from_dict({
        "input_ids": [[101, 7, 102], [101, 102]], "attention_mask": [[1, 1, 1], [1, 1]],
        "token_type_ids": [[0, 0, 0], [0, 0]], "length": [3, 2], "labels": [1, 0],
        "idx": [10, 11]})


def test_model_inputs_keeps_what_the_model_takes_labels_and_length() -> None:
    assert model_inputs(_rows(), _NoTokenTypes()).column_names == [
        "input_ids", "attention_mask", "length", "labels"]
    assert model_inputs(_rows(), _Bert()).column_names == [
        "input_ids", "attention_mask", "token_type_ids", "length", "labels"]


def test_model_inputs_leaves_other_datasets_alone() -> None:
    rows = [{"input_ids": [1, 2]}]
    assert model_inputs(rows, _Bert()) is rows


def test_column_as_list_follows_the_rows_of_a_selection() -> None:
    rows = datasets.Dataset.from_dict({"length": list(range(100)), "labels": [0] * 100})
    picked = rows.select([7, 3, 99, 0]).shuffle(seed=5)
    assert column_as_list(picked["length"]) == [r["length"] for r in picked] != [0, 3, 7, 99]
    assert column_as_list((4, 5)) == [4, 5]


def test_collator_pads_without_length(tiny_bert: Path) -> None:
    from transformers import AutoTokenizer, DataCollatorWithPadding

    tok = AutoTokenizer.from_pretrained(tiny_bert)
    rows = model_inputs(_rows(), _Bert())
    batch = PaddingCollator(DataCollatorWithPadding(tok))([rows[0], rows[1]])
    assert LENGTH_COLUMN not in batch
    assert batch["input_ids"].tolist() == [[101, 7, 102], [101, 102, tok.pad_token_id]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]
    assert batch["labels"].tolist() == [1, 0]


@pytest.mark.parametrize("strategy", ["group_by_length", "random"])
def test_trainer_samples_from_the_precomputed_lengths(strategy: str, shared_data: Path,
                                                      tiny_bert: Path, tmp_path: Path,
                                                      monkeypatch) -> None:
    """Length-grouped batches read the ``length`` column: no row is measured again."""
    import transformers.trainer as trainer_module
    from transformers import AutoTokenizer
    from transformers.trainer_pt_utils import LengthGroupedSampler

    from hftune.config.schema import TaskConfig
    from hftune.data.loading import load_task_data
    from hftune.data.tasks import resolve_task
    from hftune.testing.fixtures import tokenize_limited

    seen: list[Any] = []
    samplers: list[LengthGroupedSampler] = []

    class Recording(LengthGroupedSampler):
        def __init__(self, *args: Any, lengths: Any = None, **kwargs: Any) -> None:
            seen.append(lengths)
            samplers.append(self)
            super().__init__(*args, lengths=lengths, **kwargs)

    monkeypatch.setattr(trainer_module, "LengthGroupedSampler", Recording)
    tok = AutoTokenizer.from_pretrained(tiny_bert)
    task = resolve_task(TaskConfig(name="rte"))
    data = load_task_data(task, shared_data / "rte")
    tokenized = tokenize_limited(task, data, tok, 48, {"train": 40, "validation": 16})
    setup = TrialSetup(model_path=str(tiny_bert), tokenizer=tok, label_names=data.label_names,
                       train_dataset=tokenized.splits["train"].features,
                       eval_dataset=tokenized.splits["validation"].features, metrics=("accuracy",),
                       training={"train_sampling_strategy": strategy}, seed=3,
                       cpus_per_trial=1, gpus_per_trial=0)
    events: list[dict] = []
    run_trial({"num_train_epochs": 1, "per_device_train_batch_size": 8}, setup,
              lambda record, folder: events.append(record), str(tmp_path))
    assert len(events) == 1 and 0.0 <= events[0]["accuracy"] <= 1.0
    if strategy == "random":
        assert seen == []
    else:  # one sampler for training, one for the evaluation, both given the column
        assert seen == [tokenized.splits["train"].features["length"],
                        tokenized.splits["validation"].features["length"]]
        assert all(isinstance(s.lengths, list) for s in samplers)  # read once, not per index
