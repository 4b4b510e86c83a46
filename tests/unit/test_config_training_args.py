"""TrainingArguments values are checked with the config: a value transformers refuses, a value
of the wrong type, or a fractional domain for an integer field is one line naming the key."""

from __future__ import annotations

import functools
import math
from typing import Any

import pytest

from hftune.config.loading import parse_yaml
from hftune.config.schema import TrialContext
from hftune.config.training_args import check_value, is_hub_argument, scalar_types
from hftune.errors import ConfigError
from hftune.testing.cli import one_line_error
from hftune.testing.configs import study_config

# a study that searches the learning rate, with top-level changes, validated
study = functools.partial(study_config, {"name": "t",
                                         "search_space": {"learning_rate": [2e-5, 3e-5]}})


@pytest.mark.parametrize(("changes", "message"), [
    # values transformers refuses (every trial would fail at run time)
    ({"training": {"optim": "adamw"}},
     "training.optim: TrainingArguments refuses optim='adamw': adamw is not a valid Optimizer"),
    ({"training": {"lr_scheduler_type": "cosin"}},
     "training.lr_scheduler_type: TrainingArguments refuses lr_scheduler_type='cosin'"),
    ({"training": {"warmup_steps": -1}}, "training.warmup_steps: TrainingArguments refuses"),
    # a combination: the value that makes it fail is named
    ({"training": {"fp16": True, "bf16": True}},
     "training.bf16: TrainingArguments refuses bf16=True: At most one of fp16 and bf16"),
    ({"training": {"dataloader_prefetch_factor": 2}},
     "training.dataloader_prefetch_factor: TrainingArguments refuses"),
    # wrong types (transformers itself would accept them, and trials would fail later)
    ({"training": {"num_train_epochs": "three"}},
     "training.num_train_epochs: expected a number for TrainingArguments.num_train_epochs, "
     "got 'three'"),
    ({"training": {"gradient_accumulation_steps": 2.5}}, "expected an integer"),
    ({"training": {"gradient_accumulation_steps": 2.0}},
     "training.gradient_accumulation_steps: expected an integer"),  # not made an int by hftune
    ({"training": {"fp16": 1}}, "training.fp16: expected true or false"),
    ({"training": {"weight_decay": None}}, "training.weight_decay: expected a number"),
    ({"training": {"per_device_train_batch_size": 0}},
     "training.per_device_train_batch_size: per_device_train_batch_size must be at least 1"),
    # search-space values: every listed value, both ends of a range
    ({"search_space": {"optim": ["adamw_torch", "adamw"]}},
     "search_space.optim: TrainingArguments refuses optim='adamw'"),
    ({"search_space": {"lr_scheduler_type": {"choice": ["linear", "cosin"]}}},
     "search_space.lr_scheduler_type: TrainingArguments refuses lr_scheduler_type='cosin'"),
    ({"search_space": {"warmup_steps": {"randint": [-10, 10]}}},
     "search_space.warmup_steps: TrainingArguments refuses warmup_steps=-10"),
    ({"search_space": {"num_train_epochs": ["three", 4]}},
     "search_space.num_train_epochs: expected a number"),
    ({"search_space": {"fp16": {"uniform": [0, 1]}}}, "search_space.fp16: expected true or false"),
    # integer fields cannot be searched over fractions
    ({"search_space": {"per_device_train_batch_size": {"uniform": [8, 32]}}},
     "search_space.per_device_train_batch_size: TrainingArguments.per_device_train_batch_size "
     "takes integers, but uniform draws fractions; use randint"),
    ({"search_space": {"gradient_accumulation_steps": {"loguniform": [1, 8]}}},
     "takes integers, but loguniform draws fractions"),
    ({"search_space": {"seed": {"quniform": [0, 10, 0.5]}}}, "takes integers, but quniform"),
    ({"search_space": {"per_device_train_batch_size": [0, 8]}},
     "search_space.per_device_train_batch_size: per_device_train_batch_size must be at least 1"),
    # with evaluation.every: steps, a trial must reach its first evaluation to have a score
    ({"training": {"max_steps": 40}, "evaluation": {"every": "steps", "eval_steps": 50}},
     "training.max_steps: 40 steps never reach evaluation.eval_steps (50)"),
    ({"search_space": {"max_steps": [20, 200]}, "evaluation": {"every": "steps", "eval_steps": 50}},
     "search_space.max_steps: 20 steps never reach evaluation.eval_steps (50)"),
    # a value checked on top of the fixed training values
    ({"training": {"dataloader_num_workers": 0},
      "search_space": {"dataloader_prefetch_factor": [2]}},
     "search_space.dataloader_prefetch_factor: TrainingArguments refuses"),
])
def test_bad_training_values_are_one_line(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        study(**changes)
    text = str(info.value)
    assert "\n" not in text
    assert message in text


@pytest.mark.parametrize("changes", [
    {"training": {"optim": "adamw_torch", "lr_scheduler_type": "cosine", "warmup_steps": 0.1}},
    {"training": {"num_train_epochs": 2.5, "per_device_train_batch_size": 16.0}},
    {"training": {"num_train_epochs": 3, "max_grad_norm": 1, "label_names": ["labels"]}},
    {"search_space": {"per_device_train_batch_size": {"randint": [8, 32]},
                      "gradient_accumulation_steps": {"quniform": [1, 4, 1]},
                      "num_train_epochs": {"uniform": [1, 3]},
                      "lr_scheduler_type": {"choice": ["linear", "cosine"]},
                      "fp16": [False], "model.hidden_dropout_prob": {"uniform": [0.0, 0.3]}}},
    # set on the trials' machine: checked by type only (this one may have no GPU at all)
    {"training": {"tf32": True, "use_cpu": False, "bf16": True, "ddp_backend": "nccl"}},
    {"training": {"lr_scheduler_type": "reduce_lr_on_plateau"}},  # trials do evaluate
    # a fixed value that needs a searched one: every trial has both
    {"training": {"dataloader_prefetch_factor": 2},
     "search_space": {"dataloader_num_workers": [2, 4]}},
])
def test_good_training_values_validate(changes: dict[str, Any]) -> None:
    cfg = study(**changes)  # accepted, and kept as given
    for key, value in changes.items():
        assert getattr(cfg, key) == value, key


def test_machine_dependent_values_are_still_type_checked() -> None:
    with pytest.raises(ConfigError, match="training.tf32: expected true or false"):
        study(training={"tf32": "yes"})


def test_check_value_builds_the_arguments_on_top_of_the_fixed_training() -> None:
    context = TrialContext(training={"dataloader_num_workers": 0})
    with pytest.raises(ConfigError, match="x.dataloader_prefetch_factor: TrainingArguments"):
        check_value("x.dataloader_prefetch_factor", "dataloader_prefetch_factor", 2, context)
    check_value("x.dataloader_prefetch_factor", "dataloader_prefetch_factor", 2,
                TrialContext(training={"dataloader_num_workers": 2}))


def test_scalar_types_read_the_dataclass() -> None:
    assert scalar_types("per_device_train_batch_size") == (frozenset({int}), False)
    assert scalar_types("num_train_epochs") == (frozenset({float}), False)
    assert scalar_types("tf32") == (frozenset({bool}), True)
    assert scalar_types("optim") is None  # an enum or text: transformers checks it


@pytest.mark.parametrize(("name", "hub"), [
    ("push_to_hub", True), ("hub_token", True), ("hub_strategy", True), ("hub_model_id", True),
    ("hub_private_repo", True), ("hub_always_push", True), ("hub_revision", True),
    ("learning_rate", False), ("report_to", False),
])
def test_hub_arguments(name: str, hub: bool) -> None:
    assert is_hub_argument(name) is hub


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
    assert message in one_line_error(ConfigError, study_config, **changes)


def test_the_ends_of_each_interval() -> None:
    """A learning rate of 0 is legal for torch (it trains nothing, but fails nothing), so it is
    accepted, and a range may start there; so are the other closed ends."""
    ends = {"learning_rate": 0, "seed": 2**32 - 1, "adam_beta1": 0.0, "max_grad_norm": 0.0,
            "weight_decay": 0.0, "label_smoothing_factor": 0.0}
    assert study_config(training=ends).training == ends
    assert study_config(search_space={"learning_rate": {"uniform": [0.0, 1e-4]}}).search_space[
        "learning_rate"] == {"uniform": [0.0, 1e-4]}
    for name, value in (("learning_rate", -1e-9), ("seed", 2**32), ("adam_beta1", 1.0),
                        ("label_smoothing_factor", 1.0)):
        with pytest.raises(ConfigError, match=rf"^training\.{name}: {name} must be"):
            study_config(training={name: value})


def test_num_train_epochs_of_0_only_with_max_steps_above_0() -> None:
    assert study_config(training={"num_train_epochs": 0, "max_steps": 10}).training == {
        "num_train_epochs": 0, "max_steps": 10}
    cfg = study_config(training={"num_train_epochs": 0}, search_space={"max_steps": [10, 20]})
    assert (cfg.training, cfg.search_space) == ({"num_train_epochs": 0}, {"max_steps": [10, 20]})
    cfg = study_config(search_space={"num_train_epochs": [0, 1], "max_steps": [10, 20]})
    assert cfg.search_space == {"num_train_epochs": [0, 1], "max_steps": [10, 20]}
    with pytest.raises(ConfigError, match=r"^training\.num_train_epochs: num_train_epochs must "
                                          r"be above 0 \(or max_steps above 0\), got 0"):
        study_config(training={"num_train_epochs": 0}, search_space={"max_steps": [-1, 20]})


def test_a_trainingarguments_boolean_written_yes_is_refused() -> None:
    text = one_line_error(ConfigError, study_config, training=parse_yaml("fp16: yes"))
    assert text == "training.fp16: expected true or false for TrainingArguments.fp16, got 'yes'"
