"""seeds-then-pbt without Ray trials: the screen's length (ASHA's max_t) follows the trials'
real number of evaluations, ``screen_config`` is checked with the config, and step 2 runs
exactly ``population`` members."""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace
from typing import Any

import pytest

from hftune.config.loading import training_argument_fields
from hftune.errors import ConfigError
from hftune.space import parse_space
from hftune.strategies import build_strategy
from hftune.strategies._seeds_then_pbt import member_seeds
from hftune.strategies.base import UNCAPPED_EVALUATIONS
from hftune.study.loading import validate_study

SPACE = {"learning_rate": {"loguniform": [1e-5, 1e-3]}, "weight_decay": {"uniform": [0.0, 0.3]}}


def screen(strategy: dict[str, Any] | None = None, search_space: dict[str, Any] | None = None,
           **changes: Any) -> Any:
    """The step-1 strategy of a validated config, as the runner builds it."""
    cfg = validate_study({"name": "s", "model": "m", "task": "rte",
                          "search_space": search_space or SPACE,
                          "strategy": {"name": "seeds-then-pbt", **(strategy or {})}, **changes})
    space = parse_space(cfg.search_space, training_fields=set(training_argument_fields()))
    return build_strategy(cfg.strategy, space, "accuracy", "max", cfg.seed)


def max_t(strategy: Any) -> int:
    return strategy.plan(None).scheduler._max_t


# -- the screen's length ----------------------------------------------------------------------


@pytest.mark.parametrize(("changes", "evaluations"), [
    ({}, 3),  # transformers' default: 3 epochs
    ({"training": {"num_train_epochs": 5}}, 5),
    ({"training": {"num_train_epochs": 2.5}}, 3),  # the partial last epoch evaluates too
    ({"search_space": {**SPACE, "num_train_epochs": [2, 6, 10]}}, 6),  # the space's centre
    ({"training": {"num_train_epochs": 5},
      "strategy": {"screen_config": {"num_train_epochs": 2}}}, 2),
    ({"training": {"max_steps": 100}, "evaluation": {"every": "steps", "eval_steps": 10}}, 10),
    ({"training": {"num_train_epochs": 2},
      "search_space": {**SPACE, "max_steps": [30, 95]},
      "evaluation": {"every": "steps", "eval_steps": 10}}, 10),  # at 10, ..., 90 and 95
])
def test_max_t_counts_the_screen_trials_evaluations(changes: dict[str, Any],
                                                     evaluations: int) -> None:
    strategy = screen(**changes)
    assert strategy.screen_evaluations() == evaluations
    assert max_t(strategy) == evaluations
    assert strategy.plan(None).scheduler._time_attr == "training_iteration"


@pytest.mark.parametrize("changes", [
    {"evaluation": {"every": "steps", "eval_steps": 10}},  # steps per epoch: the data's size
    {"training": {"max_steps": 100}},  # epochs in 100 steps: the data's size
])
def test_max_t_is_uncapped_where_the_data_size_decides(changes: dict[str, Any]) -> None:
    """Too small a max_t would cut every screen trial short; ASHA's rungs still stop trials."""
    strategy = screen({"grace_period": 2, "reduction_factor": 2}, **changes)
    assert strategy.screen_evaluations() is None
    scheduler = strategy.plan(None).scheduler
    assert scheduler._max_t == UNCAPPED_EVALUATIONS
    rungs = sorted(m for m, _ in scheduler._brackets[0]._rungs)
    assert rungs[:3] == [2, 4, 8]


def test_grace_period_is_capped_at_the_screen_length() -> None:
    scheduler = screen({"grace_period": 4}, training={"num_train_epochs": 2}).plan(None).scheduler
    assert scheduler._max_t == 2
    assert [m for m, _ in scheduler._brackets[0]._rungs] == [2]


# -- screen_config ----------------------------------------------------------------------------


@pytest.mark.parametrize(("screen_config", "search_space", "message"), [
    ({"learning_rate": "abc"}, None,
     "strategy.screen_config.learning_rate: 'abc' is not in search_space.learning_rate "
     "(loguniform: [1e-05, 0.001])"),
    ({"learning_rate": 5e-3}, None, "0.005 is not in search_space.learning_rate"),
    ({"lr": 1}, None, "strategy.screen_config.lr: neither a search_space key nor a "
                      "TrainingArguments field"),
    ({"per_device_train_batch_size": 20}, {**SPACE, "per_device_train_batch_size": [16, 32]},
     "strategy.screen_config.per_device_train_batch_size: 20 is not in "
     "search_space.per_device_train_batch_size ([16, 32])"),
    ({"per_device_train_batch_size": 16.5},
     {**SPACE, "per_device_train_batch_size": {"randint": [8, 32]}}, "16.5 is not in"),
    ({"fp16": 1}, {**SPACE, "fp16": [True, False]}, "1 is not in search_space.fp16"),
    ({"optim": "adamw"}, None,
     "strategy.screen_config.optim: TrainingArguments refuses optim='adamw'"),
    ({"num_train_epochs": "two"}, None,
     "strategy.screen_config.num_train_epochs: expected a number"),
    ({"seed": 3}, None, "strategy.screen_config.seed: the screen gives each trial its own seed"),
    ({"output_dir": "x"}, None, "strategy.screen_config.output_dir: set by hftune itself"),
    ({"eval_steps": 5}, None, "strategy.screen_config.eval_steps: set by hftune itself"),
    ({"push_to_hub": True}, None, "strategy.screen_config.push_to_hub: hftune does not push"),
    ({"model.hidden_dropout_prob": 0.1}, None,
     "strategy.screen_config.model.hidden_dropout_prob: not in search_space"),
    # each value is accepted alone, not the screen's config as a whole
    ({"fp16": True, "bf16": True}, None,
     "strategy.screen_config: TrainingArguments refuses these values together ("),
])
def test_screen_config_is_checked_with_the_config(
        screen_config: dict[str, Any], search_space: dict[str, Any] | None, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        screen({"screen_config": screen_config}, search_space)
    assert "\n" not in str(info.value)
    assert message in str(info.value)


def test_a_valid_screen_config_is_the_screens_config() -> None:
    space = {**SPACE, "per_device_train_batch_size": [16, 32, 64],
             "warmup_steps": {"randint": [0, 100]}}
    strategy = screen({"screen_config": {"per_device_train_batch_size": 16, "warmup_steps": 40.0,
                                         "learning_rate": 2e-5, "lr_scheduler_type": "cosine"}},
                      space)
    config = strategy.screen_config()
    assert config["per_device_train_batch_size"] == 16 and config["learning_rate"] == 2e-5
    assert config["warmup_steps"] == 40 and type(config["warmup_steps"]) is int
    assert config["lr_scheduler_type"] == "cosine"
    assert config["weight_decay"] == pytest.approx(0.15)  # not set: the centre of its range


# -- step 2: exactly `population` members -----------------------------------------------------


@pytest.mark.parametrize(("seeds", "population", "counts"), [
    ([11, 12, 13], 8, {11: 3, 12: 3, 13: 2}),
    ([11, 12, 13, 14], 8, {11: 2, 12: 2, 13: 2, 14: 2}),
    ([11, 12], 5, {11: 3, 12: 2}),
    ([11], 4, {11: 4}),
])
def test_member_seeds_spread_the_population_best_first(seeds: list[int], population: int,
                                                       counts: dict[int, int]) -> None:
    members = member_seeds(seeds, population)
    assert len(members) == population and Counter(members) == counts


def test_step_two_runs_exactly_the_population() -> None:
    from ray.tune.search.variant_generator import generate_variants

    step1 = screen({"seeds": 4, "top_k": 3, "population": 8})
    trials = [SimpleNamespace(config={"seed": s}, score=lambda *_, v=v: v)
              for s, v in ((43, 0.7), (44, 0.9), (45, 0.8), (46, 0.6))]
    step2 = step1.next_phase(trials)
    plan = step2.plan(None)
    members = [variant["seed"] for _ in range(plan.num_samples)
               for _, variant in generate_variants(plan.param_space)]
    assert len(members) == 8 == step2.total_trials(None)
    assert Counter(members) == {44: 3, 45: 3, 43: 2}  # the three best, the best ones first


def test_top_k_cannot_exceed_the_population() -> None:
    with pytest.raises(ConfigError, match=r"top_k \(4\) cannot exceed population \(3\)"):
        screen({"top_k": 4, "population": 3})
