"""``task.type: seq2seq``: source and target columns, the prefix, the target's own length limit,
and the prompts the generation pass reads."""

from __future__ import annotations

import pandas as pd
import pytest

from hftune.config.schema import TaskConfig
from hftune.data.tasks import resolve_task
from hftune.errors import DataError


@pytest.fixture(scope="module")
def tokenizer(tiny_t5):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_t5)


def _kind(**fields):
    return resolve_task(TaskConfig(name="s", type="seq2seq", **fields), {}).type


def test_sources_carry_the_prefix_and_targets_their_own_limit(tokenizer) -> None:
    kind = _kind(source_field="text", target_field="tldr", source_prefix="summarize: ",
                 max_target_length=5)
    frames, labels = kind.normalise({"validation": pd.DataFrame(
        {"text": ["a long text about cats and dogs"],
         "tldr": ["cats and dogs are friends forever and ever"]})}, "train", {})
    assert labels == ()
    split = kind.tokenize(frames["validation"], tokenizer, 8, (), training=False)
    row = split.features[0]
    assert row["input_ids"] == tokenizer("summarize: a long text about cats and dogs",
                                         max_length=8, truncation=True)["input_ids"]
    assert row["labels"] == tokenizer(text_target="cats and dogs are friends forever and ever",
                                      max_length=5, truncation=True)["input_ids"]
    assert len(row["labels"]) == 5 and row["length"] == 8
    assert split.references == {"prompts": [row["input_ids"]],
                                "targets": ["cats and dogs are friends forever and ever"]}
    train = kind.tokenize(frames["validation"], tokenizer, 8, (), training=True)
    assert train.references is None


def test_the_generation_stops_where_a_target_ends(tokenizer) -> None:
    assert _kind().end_token(tokenizer) == tokenizer(text_target="x")["input_ids"][-1] \
        == tokenizer.sep_token_id


def test_a_row_without_its_target_is_refused_naming_it() -> None:
    kind = _kind()
    with pytest.raises(DataError, match="row 2 has no text in column 'summary'"):
        kind.normalise({"train": pd.DataFrame({"document": ["a", "b"], "summary": ["x", None]})},
                       "train", {"train": "train.jsonl"})
    with pytest.raises(DataError, match="lacks the column.*summary.*target_field"):
        kind.normalise({"train": pd.DataFrame({"document": ["a"]})}, "train", {})


def test_a_seq2seq_model_is_required() -> None:
    from transformers import BertConfig, T5Config

    from hftune._compat.transformers import auto_class_takes

    kind = _kind()
    assert auto_class_takes(kind.auto_model(), T5Config())
    assert not auto_class_takes(kind.auto_model(), BertConfig())


def test_an_empty_target_is_refused_naming_the_row() -> None:
    with pytest.raises(DataError, match="row 2 has an empty text in column 'summary'"):
        _kind().normalise({"train": pd.DataFrame({"document": ["a", "b"],
                                                  "summary": ["x", "  "]})},
                          "train", {"train": "train.jsonl"})


def test_a_decoder_only_model_is_refused_for_seq2seq_and_the_reverse() -> None:
    from transformers import GPT2Config, T5Config

    from hftune.errors import ModelError
    from hftune.training.model import check_task_head

    with pytest.raises(ModelError, match="no AutoModelForSeq2SeqLM head"):
        check_task_head(GPT2Config(), _kind(), "gpt2")
    causal = resolve_task(TaskConfig(name="c", type="causal_lm", text_field="t")).type
    with pytest.raises(ModelError, match="no AutoModelForCausalLM head"):
        check_task_head(T5Config(), causal, "t5-small")
