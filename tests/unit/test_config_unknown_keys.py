"""An unknown key is refused in every section of a study config, and in every strategy's
options: a typo never silently runs a study with a default. The refusal names where the key is
(what a user must fix), checked through the one entry point every command uses."""

from __future__ import annotations

import re
from typing import Any

import pytest

from hftune.errors import ConfigError
from hftune.strategies import STRATEGIES
from hftune.study.loading import validate_study

BASE: dict[str, Any] = {"name": "s", "model": "m", "task": "rte",
                        "search_space": {"learning_rate": {"loguniform": [1e-5, 1e-4]}}}


def _with(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    cfg = {k: (dict(v) if isinstance(v, dict) else v) for k, v in BASE.items()}
    node = cfg
    for key in path[:-1]:
        node[key] = dict(node.get(key) or {}) if isinstance(node.get(key), dict | None) else {}
        node = node[key]
    node[path[-1]] = value
    return cfg


SECTIONS = {
    "top level": (("learnig_rate",), 1e-4, "learnig_rate"),
    "task": (("task",), {"name": "rte", "lable_field": "label"}, "task.lable_field"),
    "training": (("training",), {"learning_rat": 1e-4}, "learning_rat"),
    "search_space domain": (("search_space",),
                            {"learning_rate": {"loguniform": [1e-5, 1e-4], "step": 2}},
                            "search_space.learning_rate"),
    "search_space key": (("search_space",), {"warmup_step": [0, 10]}, "warmup_step"),
    "strategy": (("strategy",), {"name": "grid", "metrc": "accuracy"}, "metrc"),
    "resources": (("resources",), {"gpu_per_trial": 1}, "resources.gpu_per_trial"),
    "budget": (("budget",), {"num_sample": 4}, "budget.num_sample"),
    "checkpoints": (("checkpoints",), {"kept": 2}, "checkpoints.kept"),
    "evaluation": (("evaluation",), {"evry": "epoch"}, "evaluation.evry"),
    "tracking target": (("tracking",), ["tensorbord"], "unknown target 'tensorbord'"),
    "tracking options": (("tracking",), {"wandb": {"projct": "x"}}, "wandb.projct"),
}


@pytest.mark.parametrize("section", list(SECTIONS))
def test_an_unknown_key_is_refused(section: str) -> None:
    path, value, named = SECTIONS[section]
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        validate_study(_with(path, value))


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_an_option_the_strategy_does_not_take_is_refused(strategy: str) -> None:
    cfg = _with(("strategy",), {"name": strategy, "no_such_option": 1})
    named = rf"strategy\.no_such_option: '{re.escape(strategy)}' takes"
    with pytest.raises(ConfigError, match=named):
        validate_study(cfg)


def test_the_sections_accept_their_own_keys() -> None:
    """The same sections with known keys validate: the refusals above are about the keys."""
    cfg = validate_study({**BASE, "task": {"name": "rte", "label_field": "label"},
                          "training": {"warmup_steps": 10},
                          "strategy": {"name": "grid", "metric": "accuracy"},
                          "resources": {"gpus_per_trial": 0}, "budget": {"num_samples": 1},
                          "checkpoints": {"keep": 2}, "evaluation": {"every": "epoch"},
                          "tracking": {"wandb": {"project": "x"}, "tensorboard": None}})
    assert cfg.checkpoints.keep == 2 and cfg.resources.gpus_per_trial == 0
