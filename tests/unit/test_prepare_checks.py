"""prepare_study's model checks: max_length against the model's real limit, a tokenizer without
a pad token, overlapping split names, a checkpoint with a head for another label count, and
searched model-config values."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from hftune.errors import ConfigError, ModelError
from hftune.study.loading import validate_study
from hftune.study.prepare import check_vocabulary, prepare_study
from hftune.testing.cli import one_line_error
from hftune.training.model import resolve_model_ref


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
    """Dropout rates may be searched: the study prepares, and a trial's model built at each end
    of the searched ranges holds every pretrained weight unchanged, with the rates in force."""
    import torch
    from safetensors.torch import load_file

    from hftune.space import split_hyperparameters
    from hftune.training.model import build_model

    prepared = prepare_study(_cfg(tiny_bert, shared_data / "rte",
                                  space={"model.hidden_dropout_prob": {"uniform": [0.0, 0.3]},
                                         "model.attention_probs_dropout_prob": [0.1, 0.2]}))
    hidden = prepared.space["model.hidden_dropout_prob"].edge_values()
    attention = prepared.space["model.attention_probs_dropout_prob"].edge_values()
    assert hidden == (0.0, 0.3) and attention == (0.1, 0.2)
    pretrained = load_file(str(tiny_bert / "model.safetensors"))  # a BertModel's: no prefix
    for config in ({"model.hidden_dropout_prob": hidden[0],
                    "model.attention_probs_dropout_prob": attention[1]},
                   {"model.hidden_dropout_prob": hidden[1],
                    "model.attention_probs_dropout_prob": attention[0]}):
        _, overrides = split_hyperparameters(config)
        model = build_model(prepared.model_path, prepared.data.label_names, overrides, seed=1)
        weights = model.state_dict()
        assert all(torch.equal(weights[f"bert.{k}"], v) for k, v in pretrained.items())
        rates = {m.p for n, m in model.named_modules() if isinstance(m, torch.nn.Dropout)
                 and "attention.self" in n}
        assert rates == {config["model.attention_probs_dropout_prob"]}
        assert model.bert.embeddings.dropout.p == config["model.hidden_dropout_prob"]


def test_model_folder_without_tokenizer_is_refused(tiny_bert: Path, shared_data: Path,
                                                   tmp_path: Path) -> None:
    """``model.save_pretrained`` alone: transformers builds a 5-token stand-in tokenizer."""
    folder = tmp_path / "no-tokenizer"
    folder.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(tiny_bert / name, folder / name)
    cfg = validate_study({"name": "s", "model": str(folder), "max_length": 32,
                          "task": {"name": "rte", "data_dir": str(shared_data / "rte"),
                                   "max_train_samples": 16, "max_eval_samples": 8},
                          "search_space": {"learning_rate": [1e-4]}})
    text = one_line_error(ModelError, prepare_study, cfg)
    assert re.match(rf"model: the tokenizer of '{re.escape(str(folder))}' has \d+ tokens for "
                    rf"the model's vocabulary of 30522 .*tokenizer.save_pretrained", text), text


def test_only_a_tokenizer_far_smaller_than_the_vocabulary_is_refused() -> None:
    """Padded embedding tables (Phi-2: 50295 tokens for 51200 rows; T5: 32100 for 32128) and
    added tokens are fine; a config without vocab_size says nothing."""
    for tokens, vocab in ((50295, 51200), (32100, 32128), (30522, 30522), (40000, 30522)):
        check_vocabulary(range(tokens), SimpleNamespace(vocab_size=vocab), "m")
    check_vocabulary(range(5), SimpleNamespace(), "m")
    with pytest.raises(ModelError, match=r"^model: the tokenizer of 'm' has 15000 tokens for "
                                         r"the model's vocabulary of 30522"):
        check_vocabulary(range(15000), SimpleNamespace(vocab_size=30522), "m")


@pytest.fixture
def model_folder(tiny_bert: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    shutil.copy(tiny_bert / "config.json", folder / "config.json")
    return folder


@pytest.mark.parametrize("content", [os.urandom(1000), b"", b"\x08" + b"\x00" * 7 + b"{}      ",
                                     "half"])
def test_damaged_safetensors_are_refused(model_folder: Path, tiny_bert: Path,
                                         content: bytes | str) -> None:
    if content == "half":  # truncated: the header reads, the tensors are not all there
        whole = (tiny_bert / "model.safetensors").read_bytes()
        content = whole[: len(whole) // 2]
    (model_folder / "model.safetensors").write_bytes(content)
    text = one_line_error(ModelError, resolve_model_ref, str(model_folder))
    assert text.startswith(f"model: the weights file '{model_folder / 'model.safetensors'}' is "
                           f"damaged or incomplete (")


def test_sharded_safetensors_need_every_shard_readable(model_folder: Path,
                                                       tiny_bert: Path) -> None:
    shards = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    (model_folder / "model.safetensors.index.json").write_text(json.dumps(
        {"metadata": {}, "weight_map": {"a": shards[0], "b": shards[1]}}))
    shutil.copy(tiny_bert / "model.safetensors", model_folder / shards[0])
    text = one_line_error(ModelError, resolve_model_ref, str(model_folder))
    assert f"names the shard '{shards[1]}', which is not in the folder" in text
    (model_folder / shards[1]).write_bytes(os.urandom(100))
    assert "is damaged or incomplete" in one_line_error(ModelError, resolve_model_ref,
                                                        str(model_folder))
    shutil.copy(tiny_bert / "model.safetensors", model_folder / shards[1])
    assert resolve_model_ref(str(model_folder)) == str(model_folder.resolve())
    (model_folder / "model.safetensors.index.json").write_text("{")
    assert "is damaged or incomplete" in one_line_error(ModelError, resolve_model_ref,
                                                        str(model_folder))


def test_pytorch_bin_is_checked_without_loading_it(model_folder: Path) -> None:
    import torch

    torch.save({"w": torch.zeros(2)}, model_folder / "pytorch_model.bin")
    assert resolve_model_ref(str(model_folder)) == str(model_folder.resolve())
    (model_folder / "pytorch_model.bin").write_bytes(b"not a torch file")
    text = one_line_error(ModelError, resolve_model_ref, str(model_folder))
    assert "pytorch_model.bin' is damaged or incomplete (neither a zip archive" in text


def test_a_model_that_is_a_file_says_so(tiny_bert: Path) -> None:
    config = tiny_bert / "config.json"
    assert one_line_error(ModelError, resolve_model_ref, str(config)).startswith(
        f"model: '{config}' is a file, not a folder; set model: to the folder that holds")


def test_a_model_without_the_task_types_head_is_refused_before_any_trial(
        tmp_path: Path, tiny_bert: Path, shared_data: Path) -> None:
    """A GPT-2 has a token-classification head but none for multiple choice: a study of that
    type is refused while it prepares, naming the model type, the head and the task type."""
    from transformers import AutoTokenizer, GPT2Config, GPT2Model

    folder = tmp_path / "tiny-gpt2"
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    GPT2Model(GPT2Config(vocab_size=tokenizer.vocab_size, n_embd=32, n_layer=1, n_head=2,
                         n_positions=128)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    rows = tmp_path / "mc"
    rows.mkdir()
    for split in ("train", "validation"):
        (rows / f"{split}.jsonl").write_text("".join(
            json.dumps({"ctx": f"c{i}", "options": ["a", "b"], "label": i % 2}) + "\n"
            for i in range(4)))
    cfg = {"name": "mc", "model": str(folder), "max_length": 32,
           "task": {"name": "mc", "type": "multiple_choice", "data_dir": str(rows),
                    "context_field": "ctx", "choices_field": "options"},
           "search_space": {"learning_rate": [1e-4]}}
    with pytest.raises(ModelError) as info:
        prepare_study(validate_study(cfg))
    assert all(w in str(info.value) for w in ("gpt2", "AutoModelForMultipleChoice",
                                               "multiple_choice"))
    cfg["task"] = {"name": "wnut17", "data_dir": str(shared_data / "wnut17"),
                   "max_train_samples": 8, "max_eval_samples": 8}
    assert prepare_study(validate_study(cfg)).task.type.name == "token_classification"
