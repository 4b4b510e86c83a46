"""The contract every registered strategy keeps, on real Ray Tune with synthetic curves.

For each strategy: every trial's config lies inside the space with the space's types, the
budget holds (the number of trials; no trial past ``max_t`` evaluations or its own epochs),
and the same config and seed give the same configs in the same order when trials run one at
a time. A new strategy is covered by adding its contract options to ``OPTIONS``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hftune.config.schema import StrategyConfig
from hftune.space import parse_space
from hftune.strategies import STRATEGIES, build_strategy
from hftune.testing.synthetic import CurveSpec, SyntheticTrial, run_synthetic_study

FIELDS = {"learning_rate", "weight_decay", "warmup_steps", "per_device_train_batch_size",
          "num_train_epochs"}
SPACE = parse_space({"learning_rate": {"loguniform": [1e-5, 1e-3]},
                     "weight_decay": {"uniform": [0.0, 0.3]},
                     "warmup_steps": {"quniform": [0, 500, 50]},
                     "per_device_train_batch_size": [16, 32],
                     "num_train_epochs": {"randint": [2, 5]}},
                    training_fields=FIELDS)
CURVES = CurveSpec(optimum={"learning_rate": 0.7, "weight_decay": 0.2}, noise=0.01)
NUM_SAMPLES = 5
SEED = 7

# Small budgets so that model-based suggestions and early stops happen within a few trials.
OPTIONS: dict[str, dict[str, Any]] = {
    "grid": {},
    "random": {},
    "bayes": {"n_initial_points": 2},
    "gp": {"n_initial_points": 2},
    "asha": {"max_t": 4, "reduction_factor": 2},
    "bayes+asha": {"n_initial_points": 2, "max_t": 4, "reduction_factor": 2},
    "hyperband": {"max_t": 4, "reduction_factor": 2},
    "bohb": {"max_t": 4, "reduction_factor": 2},
    "median": {"min_samples_required": 2},
}


# Strategies that clone trials need checkpoints (tests/unit/test_pbt.py); two-step strategies
# (seeds-then-pbt) run their second step on the first's records (tests/integration).
CONTRACT = [name for name, cls in STRATEGIES.items()
            if not cls.needs_checkpoints and not hasattr(cls, "next_phase")]


def test_every_checkpoint_free_strategy_has_contract_options() -> None:
    assert set(OPTIONS) == set(CONTRACT)


def run(name: str, tmp: Path) -> tuple[Any, list[SyntheticTrial]]:
    strategy = build_strategy(StrategyConfig(name=name, **OPTIONS[name]), SPACE, "accuracy",
                              "max", SEED)
    return strategy, run_synthetic_study(strategy, NUM_SAMPLES, CURVES, tmp, seed=SEED)


def check_config(config: dict[str, Any]) -> None:
    assert set(config) == set(SPACE)
    for name, dim in SPACE.items():
        value = config[name]
        assert dim.contains(value), (name, value)
        if dim.is_integer:
            assert type(value) is int, (name, value)
        else:
            assert isinstance(value, float), (name, value)
        if dim.kind == "quniform":
            assert value % dim.q == 0, (name, value)


@pytest.mark.parametrize("name", CONTRACT)
def test_strategy_contract(name: str, ray_session: Any, tmp_path: Path) -> None:
    strategy, trials = run(name, tmp_path / "a")

    assert len(trials) == strategy.total_trials(NUM_SAMPLES)
    max_t = OPTIONS[name].get("max_t")
    for trial in trials:
        check_config(trial.config)
        assert not trial.errored
        assert 1 <= trial.evaluations <= trial.config["num_train_epochs"]
        if max_t is not None:
            assert trial.evaluations <= max_t
        # a trial either trained all its epochs or was stopped by the strategy
        assert trial.trained_all == (trial.evaluations == trial.config["num_train_epochs"])

    _, again = run(name, tmp_path / "b")
    assert [t.config for t in again] == [t.config for t in trials]
    assert [t.values for t in again] == [t.values for t in trials]
