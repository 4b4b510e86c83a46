"""``task.type: causal_lm``: the loss covers the response only (the prompt's labels are -100),
plain text is all labels, chat rows follow the chat template; one layout per task; rows that
cannot work are refused, naming them."""

from __future__ import annotations

import pandas as pd
import pytest

from hftune.config.schema import TaskConfig
from hftune.data.tasks import resolve_task
from hftune.errors import ConfigError, DataError
from hftune.tasks._generation import IGNORE

TEMPLATE = "### Instruction:\n{instruction}\n\n### Response:\n"
CHAT = ("{% for m in messages %}<{{ m['role'] }}> {{ m['content'] }} {% endfor %}"
        "{% if add_generation_prompt %}<assistant> {% endif %}")


@pytest.fixture(scope="module")
def tokenizer(tiny_llama):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_llama)


def _kind(generation=None, **fields):
    return resolve_task(TaskConfig(name="c", type="causal_lm", **fields), generation).type


def _tokenized(kind, frame, tokenizer, max_length=64, training=False):
    frames, _ = kind.normalise({"validation": frame}, "train", {})
    return kind.tokenize(frames["validation"], tokenizer, max_length, (), training=training)


def _ids(tokenizer, text):
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def test_the_loss_covers_the_response_and_its_end_only(tokenizer) -> None:
    kind = _kind(prompt_template=TEMPLATE, response_field="response")
    split = _tokenized(kind, pd.DataFrame({"instruction": ["add two and two"],
                                           "response": ["four"]}), tokenizer)
    prompt = _ids(tokenizer, TEMPLATE.format(instruction="add two and two"))
    response = _ids(tokenizer, "four") + [tokenizer.sep_token_id]
    row = split.features[0]
    assert row["input_ids"] == prompt + response
    assert row["labels"] == [IGNORE] * len(prompt) + response
    assert split.references == {"prompts": [prompt], "targets": ["four"]}


def test_a_long_response_is_cut_at_max_length_and_a_long_prompt_refused(tokenizer) -> None:
    kind = _kind(prompt_template="{q}", response_field="a")
    frame = pd.DataFrame({"q": ["one two"], "a": ["three four five six seven eight"]})
    row = _tokenized(kind, frame, tokenizer, max_length=4).features[0]
    assert row["input_ids"] == (_ids(tokenizer, "one two three four"))
    assert row["labels"] == [IGNORE, IGNORE, *_ids(tokenizer, "three four")]
    with pytest.raises(DataError, match="row 1: its prompt is 2 tokens.*max_length 2"):
        _tokenized(kind, frame, tokenizer, max_length=2)


def test_plain_text_is_all_labels(tokenizer) -> None:
    kind = _kind(text_field="text")
    row = _tokenized(kind, pd.DataFrame({"text": ["the cat sat"]}), tokenizer).features[0]
    assert row["input_ids"] == [*_ids(tokenizer, "the cat sat"), tokenizer.sep_token_id]
    assert row["labels"] == row["input_ids"]


def test_chat_rows_train_on_the_assistants_message(tokenizer) -> None:
    kind = _kind(messages_field="messages", chat_template=CHAT)
    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    split = _tokenized(kind, pd.DataFrame({"messages": [messages]}), tokenizer)
    prompt = _ids(tokenizer, "<user> hi <assistant> ")
    response = _ids(tokenizer, "hello ")
    row = split.features[0]
    assert row["input_ids"] == prompt + response
    assert row["labels"] == [IGNORE] * len(prompt) + response
    with pytest.raises(DataError, match="row 1 is not a chat"):
        _tokenized(kind, pd.DataFrame({"messages": [messages[:1]]}), tokenizer)
    with pytest.raises(ConfigError, match="no chat template"):
        _tokenized(_kind(messages_field="messages"), pd.DataFrame({"messages": [messages]}),
                   tokenizer)


def test_a_template_field_the_row_lacks_is_refused_naming_it(tokenizer) -> None:
    kind = _kind(prompt_template="{instruction} {context}", response_field="response")
    with pytest.raises(DataError, match="row 1 has no field 'context'"):
        _tokenized(kind, pd.DataFrame({"instruction": ["x"], "response": ["y"]}), tokenizer)


@pytest.mark.parametrize(("fields", "generation", "message"), [
    ({}, None, "exactly one of prompt_template"),
    ({"text_field": "t", "messages_field": "m"}, None, "it sets text_field, messages_field"),
    ({"prompt_template": "{q}"}, None, "task.response_field"),
    ({"text_field": "t", "response_field": "r"}, None, "task.response_field"),
    ({"text_field": "t", "chat_template": CHAT}, None, "task.chat_template"),
    ({"text_field": "t"}, {}, "evaluation.generation: a text_field task"),
])
def test_a_task_sets_one_layout(fields: dict, generation: dict | None, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _kind(generation, **fields).check_settings(64)


def test_a_field_of_another_type_is_refused() -> None:
    with pytest.raises(Exception, match="task.source_field: a field of task type seq2seq"):
        TaskConfig(name="c", type="causal_lm", source_field="x")


def test_an_empty_response_is_refused_naming_the_row(tokenizer) -> None:
    kind = _kind(prompt_template="{q}", response_field="a")
    with pytest.raises(DataError, match="row 1 has an empty text in column 'a'"):
        _tokenized(kind, pd.DataFrame({"q": ["x"], "a": [""]}), tokenizer)
