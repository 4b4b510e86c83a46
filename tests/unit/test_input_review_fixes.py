"""Bad input found by the CLI review (/tmp/review2): each is one line naming the key or file,
before any study folder exists. A model folder without its tokenizer (H3), unusable text or
label cells (H5), values TrainingArguments accepts but torch refuses (M2), damaged weights
(M3), a non-numeric metric in a trial record (M7), YAML 1.1 booleans (M9), duplicate keys
(M10), CSV/TSV rows of another width (M11), a file where a folder is wanted (L1), and the
wording of a few messages (L2-L4)."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest

from hftune.config.loading import parse_yaml, read_yaml, training_argument_fields
from hftune.config.schema import TaskConfig
from hftune.data.loading import find_data_dir, normalise, read_split_file
from hftune.data.tasks import resolve_task
from hftune.errors import ConfigError, DataError, ModelError
from hftune.space import parse_dimension, parse_space
from hftune.study.loading import load_config, validate_study
from hftune.study.prepare import check_vocabulary, prepare_study
from hftune.study.records import TrialRecord, best_trial, score_value
from hftune.training.model import resolve_model_ref


def study(**changes: Any) -> Any:
    return validate_study({"name": "s", "model": "m", "task": "rte", **changes})


def one_line_error(kind: type[Exception], call: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(kind) as info:
        call(*args, **kwargs)
    text = str(info.value)
    assert "\n" not in text
    return text


# --- H3: a model folder without tokenizer files ------------------------------------------

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


# --- H5: text and label cells --------------------------------------------------------------

def _custom(frame: pd.DataFrame, **task: Any) -> Any:
    resolved = resolve_task(TaskConfig(name="mine", text_fields=task.pop("text_fields", ["text"]),
                                       label_field=task.pop("label_field", "label"), **task))
    good = pd.DataFrame({"text": ["a", "b"], "label": ["neg", "pos"]})
    return normalise(resolved, {"train": frame, "validation": good}, "/d",
                     {"train": "/d/train.jsonl", "validation": "/d/validation.csv"})


@pytest.mark.parametrize(("cell", "message"), [
    (None, "/d/train.jsonl: row 2 has no text in column 'text' (missing or null)"),
    (float("nan"), "/d/train.jsonl: row 2 has no text in column 'text' (missing or null)"),
    (["a", "b"], "/d/train.jsonl: row 2 has ['a', 'b'] (a list) in the text column 'text', "
                 "not text"),
    (7, "/d/train.jsonl: row 2 has 7 (a int) in the text column 'text', not text"),
])
def test_a_text_cell_that_is_not_text_names_the_file_and_row(cell: Any, message: str) -> None:
    frame = pd.DataFrame({"text": ["fine", cell, "ok"], "label": ["neg", "pos", "neg"]})
    assert message in one_line_error(DataError, _custom, frame)


def test_a_jsonl_row_without_the_text_key_names_the_row(tmp_path: Path) -> None:
    path = tmp_path / "train.jsonl"
    path.write_text('{"text": "a", "label": 0}\n{"label": 1}\n')
    text = one_line_error(DataError, _custom, read_split_file(path))
    assert "/d/train.jsonl: row 2 has no text in column 'text'" in text


@pytest.mark.parametrize("label", [{"a": 0}, [0, 1]])
def test_a_label_that_is_not_one_value_names_the_row(label: Any) -> None:
    frame = pd.DataFrame({"text": ["a", "b", "c"], "label": ["neg", label, "pos"]})
    text = one_line_error(DataError, _custom, frame)
    assert text.startswith(f"/d/train.jsonl: row 2 has the label {label!r} "
                           f"(a {type(label).__name__}) in column 'label'")


def test_a_label_field_that_is_also_a_text_field_is_refused() -> None:
    frame = pd.DataFrame({"text": ["a", "b"], "label": [0, 1]})
    text = one_line_error(ConfigError, _custom, frame, text_fields=["label"])
    assert text.startswith("task.label_field: 'label' is also a text field (label)")


def test_a_csv_row_counts_from_the_header_line() -> None:
    frame = pd.DataFrame({"text": ["a", "b"], "label": ["neg", "pos"]})
    bad = pd.DataFrame({"text": ["a", None], "label": ["neg", "pos"]})
    resolved = resolve_task(TaskConfig(name="mine", text_fields=["text"], label_field="label"))
    with pytest.raises(DataError, match=r"^/d/validation.csv: row 2 \(line 3\) has no text"):
        normalise(resolved, {"train": frame, "validation": bad}, "/d",
                  {"train": "/d/train.jsonl", "validation": "/d/validation.csv"})


# --- M11: CSV/TSV rows with more or fewer fields than the header ----------------------------

@pytest.mark.parametrize(("name", "content", "line", "fields"), [
    ("train.tsv", "text\tlabel\na\tpos\tEXTRA\nb\tneg\n", 2, 3),
    ("train.tsv", "text\tlabel\na\tpos\tX\nb\tneg\tY\n", 2, 3),  # every row: was silent
    ("train.csv", "text,label\na,pos\nb\n", 3, 1),
    ("train.csv", 'text,label\n"a, b",pos\n"c\nd",neg\ne,pos,x\n', 5, 3),  # quoted line break
])
def test_a_row_of_another_width_names_its_line(tmp_path: Path, name: str, content: str,
                                               line: int, fields: int) -> None:
    path = tmp_path / name
    path.write_text(content)
    text = one_line_error(DataError, read_split_file, path)
    assert text.startswith(f"{path}: line {line} has {fields} fields, but the header has 2")


def test_quoted_commas_and_blank_lines_are_one_field_and_no_row(tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    path.write_text('text,label\n"a, b",pos\n\nc,neg\n')
    frame = read_split_file(path)
    assert frame["text"].tolist() == ["a, b", "c"] and frame["label"].tolist() == ["pos", "neg"]
    path.write_text('text,label\n"a, b",pos\n\nc,neg,x\n')
    assert f"{path}: line 4 has 3 fields" in one_line_error(DataError, read_split_file, path)


# --- M2: values TrainingArguments accepts but torch refuses --------------------------------

@pytest.mark.parametrize(("changes", "message"), [
    ({"training": {"learning_rate": -1}},
     "training.learning_rate: learning_rate must be at least 0, got -1"),
    ({"training": {"learning_rate": math.nan}},
     "training.learning_rate: learning_rate must be a finite number, got nan"),
    ({"training": {"learning_rate": math.inf}}, "learning_rate must be a finite number"),
    ({"search_space": {"learning_rate": {"uniform": [-1.0, 1e-3]}}},
     "search_space.learning_rate: learning_rate must be at least 0, got -1.0"),
    ({"search_space": {"learning_rate": [-1e-4, 1e-4]}},
     "search_space.learning_rate: learning_rate must be at least 0, got -0.0001"),
    ({"training": {"weight_decay": -5}}, "training.weight_decay: weight_decay must be at least 0"),
    ({"training": {"adam_beta1": 2.0}}, "training.adam_beta1: adam_beta1 must be in [0, 1), got 2"),
    ({"search_space": {"adam_beta2": [0.99, 1.0]}},
     "search_space.adam_beta2: adam_beta2 must be in [0, 1), got 1.0"),
    ({"training": {"adam_epsilon": -1e-8}}, "adam_epsilon must be at least 0"),
    ({"training": {"dataloader_num_workers": -2}},
     "training.dataloader_num_workers: dataloader_num_workers must be at least 0, got -2"),
    ({"training": {"num_train_epochs": 0}},
     "training.num_train_epochs: num_train_epochs must be above 0 (or max_steps above 0)"),
    ({"training": {"num_train_epochs": -3, "max_steps": -1}}, "num_train_epochs must be above 0"),
    ({"search_space": {"num_train_epochs": [0, 1], "max_steps": [-1, 20]}},
     "search_space.num_train_epochs: num_train_epochs must be above 0"),
    ({"search_space": {"learning_rate": {"loguniform": [1e-5, 1e-3]}},
      "strategy": {"name": "seeds-then-pbt", "screen_config": {"num_train_epochs": 0}}},
     "strategy.screen_config.num_train_epochs: num_train_epochs must be above 0"),
    ({"training": {"max_grad_norm": -1}},
     "training.max_grad_norm: max_grad_norm must be at least 0"),
    ({"training": {"label_smoothing_factor": 5}},
     "label_smoothing_factor must be in [0, 1), got 5"),
    ({"training": {"seed": -1}}, "training.seed: seed must be in 0..4294967295, got -1"),
    ({"training": {"seed": 2**32}}, "training.seed: seed must be in 0..4294967295"),
    ({"search_space": {"seed": [-1, 3]}}, "search_space.seed: seed must be in 0..4294967295"),
])
def test_values_torch_refuses_are_one_line(changes: dict[str, Any], message: str) -> None:
    assert message in one_line_error(ConfigError, study, **changes)


def test_the_ends_of_each_interval() -> None:
    """A learning rate of 0 is legal for torch (it trains nothing, but fails nothing), so it is
    accepted, and a range may start there; so are the other closed ends."""
    study(training={"learning_rate": 0, "seed": 2**32 - 1, "adam_beta1": 0.0,
                    "max_grad_norm": 0.0, "weight_decay": 0.0, "label_smoothing_factor": 0.0})
    study(search_space={"learning_rate": {"uniform": [0.0, 1e-4]}})
    for name, value in (("learning_rate", -1e-9), ("seed", 2**32), ("adam_beta1", 1.0),
                        ("label_smoothing_factor", 1.0)):
        with pytest.raises(ConfigError, match=rf"^training\.{name}: {name} must be"):
            study(training={name: value})


def test_num_train_epochs_of_0_only_with_max_steps_above_0() -> None:
    study(training={"num_train_epochs": 0, "max_steps": 10})
    study(training={"num_train_epochs": 0}, search_space={"max_steps": [10, 20]})
    study(search_space={"num_train_epochs": [0, 1], "max_steps": [10, 20]})
    with pytest.raises(ConfigError, match=r"^training\.num_train_epochs: num_train_epochs must "
                                          r"be above 0 \(or max_steps above 0\), got 0"):
        study(training={"num_train_epochs": 0}, search_space={"max_steps": [-1, 20]})


@pytest.mark.parametrize("raw", [[1e-5, math.nan], {"choice": [0.1, math.inf]},
                                 [-math.inf]])
def test_nan_or_inf_in_a_list_is_refused(raw: Any) -> None:
    """Also for model-config keys, which TrainingArguments does not check."""
    text = one_line_error(ConfigError, parse_dimension, "model.hidden_dropout_prob", raw)
    assert re.match(r"search_space\.model\.hidden_dropout_prob(\.choice)?: -?(nan|inf) is not a "
                    r"finite number", text), text


# --- M3: damaged weights ---------------------------------------------------------------------

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


# --- M7: a trial record with a non-numeric metric value ------------------------------------

def test_a_non_numeric_metric_value_is_no_value() -> None:
    trial = TrialRecord("t", {}, "finished", reports=[
        {"epoch": 1, "accuracy": "high"}, {"epoch": 2, "accuracy": 0.7},
        {"epoch": 3, "accuracy": True}, {"epoch": "three", "accuracy": [1]}])
    assert trial.values("accuracy") == [0.7]
    assert trial.best_report("accuracy", "max")["epoch"] == 2
    assert trial.scored_report("accuracy", "max", "last")["epoch"] == 2
    assert trial.score("accuracy", "min") == 0.7
    summary = trial.summary("accuracy", "max", "last")
    assert (summary["score"], summary["last"], summary["epochs"]) == (0.7, 0.7, None)
    only_text = TrialRecord("u", {}, "finished", reports=[{"epoch": 1, "accuracy": "high"}])
    assert only_text.score("accuracy", "max") is None
    assert best_trial([only_text, trial], "accuracy", "max") is trial
    assert [score_value(v) for v in (1, 0.5, "0.5", None, math.nan, False)] == [
        1.0, 0.5, None, None, None, None]


# --- M9, M10: YAML booleans and duplicate keys --------------------------------------------

def test_yes_and_no_stay_text_while_true_and_false_are_booleans() -> None:
    assert parse_yaml("labels: [no, yes, on, off, y, n]\nflags: [true, False, TRUE]\n") == {
        "labels": ["no", "yes", "on", "off", "y", "n"], "flags": [True, False, True]}


def test_labels_no_and_yes_are_labels(tmp_path: Path) -> None:
    path = tmp_path / "study.yaml"
    path.write_text("name: s\nmodel: m\ntask:\n  name: mine\n  text_fields: [text]\n"
                    "  labels: [no, yes]\n")
    assert load_config(path).task.labels == ["no", "yes"]


def test_a_trainingarguments_boolean_written_yes_is_refused() -> None:
    text = one_line_error(ConfigError, study, training=parse_yaml("fp16: yes"))
    assert text == "training.fp16: expected true or false for TrainingArguments.fp16, got 'yes'"


def test_a_key_given_twice_names_the_key_and_both_lines(tmp_path: Path) -> None:
    path = tmp_path / "study.yaml"
    path.write_text("name: s\nsearch_space:\n  learning_rate: [1e-4]\n"
                    "search_space:\n  weight_decay: [0.0]\n")
    assert one_line_error(ConfigError, read_yaml, path) == (
        f"{path}: line 4: key 'search_space' is given twice (first on line 2); YAML would keep "
        f"only the last one, so merge them into one")
    nested = one_line_error(ConfigError, parse_yaml, "a:\n  - {k: 1, k: 2}\n")
    assert nested.startswith("line 2: key 'k' is given twice (first on the same line)")
    # a merge key's values may still be overridden, as YAML intends
    assert parse_yaml("base: &b {x: 1, y: 2}\nc:\n  <<: *b\n  x: 3\n")["c"] == {"x": 3, "y": 2}


# --- L1: a file where a folder is wanted ------------------------------------------------------

def test_a_model_or_data_dir_that_is_a_file_says_so(tiny_bert: Path, shared_data: Path) -> None:
    config = tiny_bert / "config.json"
    assert one_line_error(ModelError, resolve_model_ref, str(config)).startswith(
        f"model: '{config}' is a file, not a folder; set model: to the folder that holds")
    data = shared_data / "rte" / "train.jsonl"
    task = resolve_task(TaskConfig(name="rte"))
    assert one_line_error(DataError, find_data_dir, task, data).startswith(
        f"task.data_dir: '{data}' is a file, not a folder; point task.data_dir (or --data-dir)")


# --- L2, L3, L4: wording -----------------------------------------------------------------------

def test_the_fields_a_search_space_error_suggests_exist() -> None:
    fields = set(training_argument_fields())
    text = one_line_error(ConfigError, parse_space, {"lr": [1]}, training_fields=fields)
    examples = re.search(r"\(e\.g\. ([^)]*)\)", text).group(1).split(", ")
    assert len(examples) > 3 and set(examples) <= fields, text


def test_an_unknown_mutation_is_named_under_strategy_mutations() -> None:
    cfg = study(search_space={"learning_rate": {"uniform": [1e-5, 1e-4]}},
                strategy={"name": "pbt", "population": 2})
    text = one_line_error(ConfigError, validate_study, {
        **cfg.model_dump(mode="json", exclude_unset=True),
        "strategy": {"name": "pbt", "population": 2, "mutations": {"foo": [1, 2]}}})
    assert text.startswith("strategy.mutations.foo: not a TrainingArguments field")


def test_a_union_value_names_the_key_and_every_accepted_kind() -> None:
    text = one_line_error(ConfigError, study, resources={"gpus_per_trial": "lots"})
    assert text == "resources.gpus_per_trial: Input should be a valid number or 'auto' (got 'lots')"
    text = one_line_error(ConfigError, study, task={"name": "mine", "labels": [{"a": 1}]})
    assert text == ("task.labels.0: Input should be a valid string or a valid integer "
                    "(got {'a': 1})")
