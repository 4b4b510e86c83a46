"""prepare_study's model checks: max_length against the model's real limit, a tokenizer without
a pad token, overlapping split names, a checkpoint with a head for another label count, and
searched model-config values."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from hftune.errors import ConfigError, ModelError
from hftune.study.loading import validate_study
from hftune.study.prepare import prepare_study


@pytest.fixture(scope="module")
def tiny_roberta(tmp_path_factory: pytest.TempPathFactory, tiny_bert: Path) -> Path:
    """A tiny RoBERTa (514 position embeddings, pad id 1, as roberta-base) whose tokenizer was
    saved without a length limit (``model_max_length`` 1e30), so only the config can say."""
    from transformers import AutoTokenizer, RobertaConfig, RobertaModel

    folder = tmp_path_factory.mktemp("tiny-roberta")
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert, model_max_length=int(1e30))
    config = RobertaConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=1,
                           num_attention_heads=2, intermediate_size=64,
                           max_position_embeddings=514, pad_token_id=1)
    RobertaModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def no_pad_model(tmp_path_factory: pytest.TempPathFactory, tiny_bert: Path) -> Path:
    """The tiny BERT with its tokenizer's pad token removed (as GPT-2's tokenizer has none)."""
    from transformers import AutoTokenizer

    folder = tmp_path_factory.mktemp("no-pad") / "model"
    shutil.copytree(tiny_bert, folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.pad_token = None
    tokenizer.save_pretrained(folder)
    return folder


def _cfg(model: Path, data: Path, max_length: int = 32, space: dict | None = None,
         **task) -> object:
    return validate_study({"name": "checks", "model": str(model), "max_length": max_length,
                           "task": {"name": "rte", "data_dir": str(data),
                                    "max_train_samples": 16, "max_eval_samples": 8, **task},
                           "search_space": space or {"learning_rate": [1e-4]}})


def test_roberta_limit_is_positions_less_the_padding_offset(tiny_roberta: Path,
                                                            shared_data: Path) -> None:
    """514 position embeddings take 512 tokens: 513 or 514 would index past the table."""
    for too_long in (513, 514):
        with pytest.raises(ConfigError, match=rf"max_length: {too_long} is over the model's "
                                              r"limit of 512 tokens .*set max_length <= 512"):
            prepare_study(_cfg(tiny_roberta, shared_data / "rte", max_length=too_long))
    prepared = prepare_study(_cfg(tiny_roberta, shared_data / "rte", max_length=512))
    assert prepared.tokenized.max_length == 512


@pytest.mark.parametrize(("config", "tokenizer_max", "limit"), [
    (SimpleNamespace(model_type="roberta", max_position_embeddings=514, pad_token_id=1),
     int(1e30), 512),
    (SimpleNamespace(model_type="xlm-roberta", max_position_embeddings=514, pad_token_id=1),
     512, 512),
    (SimpleNamespace(model_type="longformer", max_position_embeddings=4098, pad_token_id=1),
     None, 4096),
    (SimpleNamespace(model_type="bert", max_position_embeddings=512, pad_token_id=0),
     int(1e30), 512),
    # an offset model of a type not listed: its tokenizer's 512 is the limit
    (SimpleNamespace(model_type="other", max_position_embeddings=514), 512, 512),
    (SimpleNamespace(model_type="bert", max_position_embeddings=512), 128, 128),
    (SimpleNamespace(model_type="t5"), 512, 512),
    (SimpleNamespace(model_type="t5"), int(1e30), None),
])
def test_max_input_length(config: SimpleNamespace, tokenizer_max: int | None,
                          limit: int | None) -> None:
    from hftune.study.prepare import max_input_length

    got, why = max_input_length(config, SimpleNamespace(model_max_length=tokenizer_max))
    assert got == limit
    assert (why != "") == (limit is not None)


def test_a_tokenizer_without_pad_token_is_refused(no_pad_model: Path, shared_data: Path) -> None:
    """Trials pad every batch (DataCollatorWithPadding): without a pad token each one fails."""
    with pytest.raises(ModelError, match=r"has no pad token .*tokenizer\.pad_token = "
                                         r"tokenizer\.eos_token"):
        prepare_study(_cfg(no_pad_model, shared_data / "rte"))


def test_overlapping_splits_are_refused_before_any_work(tmp_path: Path) -> None:
    """Checked when the task is resolved: before the model (here: none) is even looked at."""
    with pytest.raises(ConfigError, match="task.test_split and task.validation_split both name "
                                          "the split 'validation'"):
        prepare_study(_cfg(tmp_path / "no-model", tmp_path, test_split="validation"))


def test_a_checkpoint_with_a_head_for_other_labels(tmp_path: Path, tiny_bert: Path) -> None:
    """A checkpoint fine-tuned for 3 classes, tuned on 2-label RTE: the head is replaced by a
    fresh one of 2 outputs, seeded per trial like any new head."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from hftune.training.model import build_model

    folder = tmp_path / "three-labels"
    BertForSequenceClassification(BertConfig.from_pretrained(tiny_bert, num_labels=3)
                                  ).save_pretrained(folder)
    AutoTokenizer.from_pretrained(tiny_bert).save_pretrained(folder)
    first = build_model(str(folder), ("entailment", "not_entailment"), {}, seed=1)
    again = build_model(str(folder), ("entailment", "not_entailment"), {}, seed=1)
    other = build_model(str(folder), ("entailment", "not_entailment"), {}, seed=2)
    assert first.classifier.out_features == 2 and first.config.num_labels == 2
    assert torch.equal(first.classifier.weight, again.classifier.weight)
    assert not torch.equal(first.classifier.weight, other.classifier.weight)


@pytest.mark.parametrize(("space", "message"), [
    ({"model.hidden_dropout_prob": {"uniform": [0.0, 1.5]}},
     "search_space.model.hidden_dropout_prob: the model refuses 1.5: dropout probability"),
    ({"model.hidden_size": [64, 48]},
     "search_space.model.hidden_size: 48 changes the model's weights ("),
    ({"model.num_hidden_layers": [2, 1]},
     "search_space.model.num_hidden_layers: 1 changes the model's weights (bert.encoder.layer.1"),
])
def test_searched_model_values_are_checked_before_any_trial(
        tiny_bert: Path, shared_data: Path, space: dict, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        prepare_study(_cfg(tiny_bert, shared_data / "rte", space=space))
    assert "\n" not in str(info.value)
    assert message in str(info.value)


def test_searched_dropout_rates_keep_the_pretrained_weights(tiny_bert: Path,
                                                            shared_data: Path) -> None:
    prepare_study(_cfg(tiny_bert, shared_data / "rte",
                       space={"model.hidden_dropout_prob": {"uniform": [0.0, 0.3]},
                              "model.attention_probs_dropout_prob": [0.1, 0.2]}))
