"""Strategies without a Ray cluster: registry, options, the score wrapper, seeding, TPE."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from hftune.config.schema import StrategyConfig
from hftune.errors import ConfigError
from hftune.space import parse_space
from hftune.strategies import STRATEGIES, build_strategy
from hftune.strategies._wrappers import (
    ScoredSearcher,
    SeededAsyncHyperBand,
    global_numpy_seed,
)
from hftune.study.loading import load_config, validate_study
from hftune.testing.synthetic import CurveSpec, final_value, sample_config

REPO = Path(__file__).resolve().parents[2]
FIELDS = {"learning_rate", "weight_decay", "warmup_steps", "per_device_train_batch_size",
          "num_train_epochs"}
SPACE = parse_space({"learning_rate": {"loguniform": [1e-5, 1e-3]},
                     "weight_decay": {"uniform": [0.0, 0.3]},
                     "warmup_steps": {"quniform": [0, 500, 50]},
                     "per_device_train_batch_size": {"choice": [16, 32, 64]}},
                    training_fields=FIELDS)


def study(strategy: dict[str, Any]) -> dict[str, Any]:
    return {"name": "s", "model": "m", "task": "rte", "strategy": strategy,
            "search_space": {"learning_rate": {"loguniform": [1e-5, 1e-3]}}}


# -- registry and options ---------------------------------------------------------------------


def test_registry_has_every_strategy_of_the_issue() -> None:
    assert set(STRATEGIES) >= {"grid", "random", "bayes", "gp", "asha", "bayes+asha",
                               "hyperband", "bohb", "median"}


def test_unknown_strategy_lists_the_valid_ones() -> None:
    with pytest.raises(ConfigError) as info:
        validate_study(study({"name": "tpe"}))
    msg = str(info.value)
    assert "unknown strategy 'tpe'" in msg
    for name in STRATEGIES:
        assert name in msg


@pytest.mark.parametrize(("name", "option"), [
    ("random", "max_t"), ("grid", "n_initial_points"), ("bayes", "grace_period"),
    ("gp", "brackets"), ("asha", "n_initial_points"), ("asha", "brackets"),
    ("bayes+asha", "brackets"), ("median", "max_t"), ("hyperband", "n_initial_points"),
])
def test_an_option_the_strategy_does_not_take_is_an_error(name: str, option: str) -> None:
    with pytest.raises(ConfigError, match=f"takes no option '{option}'"):
        validate_study(study({"name": name, option: 2}))


@pytest.mark.parametrize(("strategy", "match"), [
    ({"name": "asha", "grace_period": 6, "max_t": 5}, "grace_period .6. must be <= max_t"),
    ({"name": "hyperband", "max_t": 9, "brackets": 4}, r"brackets \(4\) must be <= 3"),
    ({"name": "asha", "reduction_factor": 1}, "strategy.reduction_factor"),
    ({"name": "bayes", "n_initial_points": 0}, "strategy.n_initial_points"),
    ({"name": "bayes+asha", "max_t": "five"}, "strategy.max_t"),
])
def test_bad_option_values_are_errors(strategy: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        validate_study(study(strategy))


def test_bohb_without_its_extra_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "hpbandster" else real(name, *a))
    with pytest.raises(ConfigError, match=r"needs hpbandster.*pip install 'hftune\[bohb\]'"):
        validate_study(study({"name": "bohb"}))


def test_reference_example_loads() -> None:
    cfg = load_config(REPO / "examples" / "rte-bayes-asha.yaml")
    assert cfg.strategy.name == "bayes+asha" and cfg.budget.num_samples == 60
    assert cfg.strategy.options["n_initial_points"] == 15
    strategy = build_strategy(cfg.strategy, parse_space(cfg.search_space, training_fields=FIELDS),
                              "accuracy", "max", cfg.seed)
    plan = strategy.plan(cfg.budget.num_samples)
    assert plan.num_samples == 60
    assert plan.scheduler._max_t == 5 and plan.scheduler._time_attr == "training_iteration"


def test_plans_use_the_options() -> None:
    def plan(name: str, **options: Any) -> Any:
        return build_strategy(StrategyConfig(name=name, **options), SPACE, "loss", "min",
                              0).plan(None)

    asha = plan("asha", grace_period=2, reduction_factor=2, max_t=8)
    assert [m for m, _ in asha.scheduler._brackets[0]._rungs] == [8, 4, 2]  # 8 = max_t
    assert len(plan("hyperband", max_t=9).scheduler._brackets) == 3
    assert len(plan("hyperband", max_t=9, brackets=2).scheduler._brackets) == 2
    median = plan("median", grace_period=2)
    assert median.scheduler._grace_period == 2 and median.scheduler._min_time_slice == np.inf
    assert plan("bayes").num_samples == 20 and plan("bayes").scheduler is None
    assert plan("random").searcher.__class__.__name__ == "BasicVariantGenerator"


# -- the score wrapper ------------------------------------------------------------------------


class RecordingSearcher:
    """A stand-in inner searcher: records what it is told."""

    def __init__(self, metric: str = "accuracy", mode: str = "max") -> None:
        self.metric, self.mode = metric, mode
        self.results: list[tuple[str, dict]] = []
        self.completed: list[tuple[str, dict | None, bool]] = []
        self.config: dict[str, Any] = {}

    def suggest(self, trial_id: str) -> dict:
        return self.config

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        self.results.append((trial_id, result))

    def on_trial_complete(self, trial_id: str, result: dict | None = None,
                          error: bool = False) -> None:
        self.completed.append((trial_id, result, error))


def scored(score: str, mode: str = "max", **kw: Any) -> tuple[ScoredSearcher, RecordingSearcher]:
    inner = RecordingSearcher(mode=mode)
    return ScoredSearcher(inner, score=score, space=SPACE, **kw), inner  # type: ignore[arg-type]


@pytest.mark.parametrize(("score", "mode", "learned"), [
    ("best", "max", 0.8), ("last", "max", 0.6), ("best", "min", 0.5), ("last", "min", 0.6)])
def test_searcher_learns_the_trial_score(score: str, mode: str, learned: float) -> None:
    s, inner = scored(score, mode)
    for i, v in enumerate([0.7, 0.8, 0.5], start=1):
        s.on_trial_result("a", {"accuracy": v, "training_iteration": i})
    # the result on which a scheduler stops a trial only reaches on_trial_complete
    s.on_trial_complete("a", {"accuracy": 0.6, "training_iteration": 4})
    assert inner.completed == [("a", {"accuracy": learned, "training_iteration": 4}, False)]


def test_best_counts_the_withheld_final_result() -> None:
    s, inner = scored("best")
    s.on_trial_result("a", {"accuracy": 0.5, "training_iteration": 1})
    s.on_trial_complete("a", {"accuracy": 0.9, "training_iteration": 2})
    assert inner.completed[0][1]["accuracy"] == 0.9
    assert [r["accuracy"] for _, r in inner.results] == [0.5]


def test_running_best_is_per_trial_and_errors_pass_through() -> None:
    s, inner = scored("best")
    s.on_trial_result("a", {"accuracy": 0.9, "training_iteration": 1})
    s.on_trial_result("b", {"accuracy": 0.4, "training_iteration": 1})
    s.on_trial_result("b", {"accuracy": 0.3, "training_iteration": 2})
    assert [r["accuracy"] for _, r in inner.results] == [0.9, 0.4, 0.4]
    s.on_trial_complete("a", error=True)
    assert inner.completed == [("a", None, True)]


def test_budget_key_tags_results_for_bohb() -> None:
    s, inner = scored("best", budget_key="training_iteration")
    s.on_trial_result("a", {"accuracy": 0.6, "training_iteration": 1})
    s.on_trial_complete("a", {"accuracy": 0.7, "training_iteration": 2})
    assert [r["hyperband_info"] for _, r in inner.results] == [{"budget": 1}, {"budget": 2}]


def test_suggestions_are_snapped_onto_the_space() -> None:
    s, inner = scored("best")
    inner.config = {"learning_rate": np.float64(2e-4), "warmup_steps": 137.0,
                    "per_device_train_batch_size": np.int64(32), "weight_decay": 0.5}
    out = s.suggest("a")
    assert out == {"learning_rate": 2e-4, "warmup_steps": 150,
                   "per_device_train_batch_size": 32, "weight_decay": 0.3}
    assert type(out["learning_rate"]) is float and type(out["warmup_steps"]) is int
    assert type(out["per_device_train_batch_size"]) is int


# -- seeding ----------------------------------------------------------------------------------


def test_global_numpy_seed_is_deterministic_and_restores_the_global_state() -> None:
    np.random.seed(123)
    expected_next = np.random.RandomState(123).rand()
    draws = []
    for _ in range(2):
        rng = np.random.default_rng(5)
        with global_numpy_seed(rng):
            draws.append(np.random.rand(3).tolist())
    assert draws[0] == draws[1]
    assert np.random.rand() == expected_next


def test_hyperband_brackets_are_seeded() -> None:
    def brackets(seed: int) -> list[int]:
        sched = SeededAsyncHyperBand(seed=seed, time_attr="training_iteration", max_t=27,
                                     grace_period=1, reduction_factor=3, brackets=4)
        sched.set_search_properties("accuracy", "max")
        for i in range(40):
            sched.on_trial_add(None, SimpleNamespace(trial_id=str(i)))
        return [sched._brackets.index(sched._trial_info[str(i)]) for i in range(40)]

    assert brackets(1) == brackets(1)
    assert brackets(1) != brackets(2)
    assert len(set(brackets(1))) > 1


# -- TPE ----------------------------------------------------------------------------------------

SMOOTH = CurveSpec(optimum={"learning_rate": 0.75, "weight_decay": 0.3, "warmup_steps": 0.6})


def drive(name: str, seed: int, objective: Any, n: int, **options: Any) -> list[dict]:
    """Run a searcher one trial at a time through Ray's Searcher API; returns its configs."""
    strategy = build_strategy(StrategyConfig(name=name, **options), SPACE, "accuracy", "max",
                              seed)
    plan = strategy.plan(n)
    searcher = plan.searcher
    searcher.set_search_properties("accuracy", "max", plan.param_space)
    configs = []
    for i in range(n):
        config = searcher.suggest(f"t{i}")
        searcher.on_trial_result(f"t{i}", {"accuracy": objective(config),
                                           "training_iteration": 1})
        searcher.on_trial_complete(f"t{i}", {"accuracy": objective(config),
                                             "training_iteration": 1})
        configs.append(config)
    return configs


def test_bayes_is_random_for_n_initial_points_then_model_based() -> None:
    def good(c: dict) -> float:
        return final_value(c, SPACE, SMOOTH)

    def reversed_(c: dict) -> float:
        return -good(c)

    a = drive("bayes", 3, good, 8, n_initial_points=5)
    b = drive("bayes", 3, reversed_, 8, n_initial_points=5)
    # the first 5 do not depend on results (random, seeded); the rest follow the model
    assert a[:5] == b[:5]
    assert all(x != y for x, y in zip(a[5:], b[5:], strict=True))
    assert drive("bayes", 4, good, 5, n_initial_points=5) != a[:5]


def test_bayes_beats_random_search_on_a_smooth_objective() -> None:
    def objective(c: dict) -> float:
        return final_value(c, SPACE, SMOOTH)

    budget, seeds = 30, range(5)
    bayes = [max(map(objective, drive("bayes", s, objective, budget, n_initial_points=8)))
             for s in seeds]
    rngs = [np.random.default_rng(100 + s) for s in seeds]
    rand = [max(objective(sample_config(SPACE, rng)) for _ in range(budget)) for rng in rngs]
    assert np.mean(bayes) > np.mean(rand)
    # and by a clear margin on the regret (distance to the optimum's value)
    best = SMOOTH.high
    assert np.mean(best - np.array(bayes)) < 0.7 * np.mean(best - np.array(rand))


def _planned_configs(plan: Any) -> list[dict[str, Any]]:
    """The configs Ray's generator hands out for ``plan``, in order."""
    from ray.tune.experiment import Experiment

    plan.searcher.add_configurations([Experiment("order", run=lambda config: None,
                                                 config=plan.param_space,
                                                 num_samples=plan.num_samples)])
    out = []
    while (trial := plan.searcher.next_trial()) is not None:
        out.append(trial.config)
    return out


def test_grid_runs_long_trials_first() -> None:
    """The order Ray's own generator hands out, sampled axes drawn per trial."""
    space = parse_space({"learning_rate": [2e-5, 5e-5], "num_train_epochs": [2, 4, 3],
                         "per_device_train_batch_size": [16, 32],
                         "weight_decay": {"uniform": [0.0, 0.3]}}, training_fields=FIELDS)
    strategy = build_strategy(StrategyConfig(name="grid"), space, "accuracy", "max", 0)
    order = _planned_configs(strategy.plan(2))
    assert len(order) == 24 == strategy.total_trials(2)
    # every length axis value before any shorter one, whatever the axes' names
    assert [c["num_train_epochs"] for c in order] == [4] * 8 + [3] * 8 + [2] * 8
    # every grid point twice (two samples), each with its own draw of the sampled axis
    points = [(c["learning_rate"], c["num_train_epochs"], c["per_device_train_batch_size"])
              for c in order]
    assert len(set(points)) == 12 and all(points.count(p) == 2 for p in points)
    assert len({c["weight_decay"] for c in order}) == 24
    assert all(0.0 <= c["weight_decay"] <= 0.3 for c in order)


def test_grid_repeats_of_an_all_grid_space_train_with_their_own_seeds() -> None:
    """num_samples > 1 over grid axes only would run identical copies: repeat i of each point
    gets seed base + i (base: training.seed, else the study seed); a searched seed is kept."""
    from hftune.config.schema import TrialContext

    def configs(space_spec: dict[str, Any], training: dict[str, Any],
                samples: int = 3) -> list[dict[str, Any]]:
        space = parse_space(space_spec, training_fields=FIELDS | {"seed"})
        strategy = build_strategy(StrategyConfig(name="grid"), space, "accuracy", "max", 7)
        strategy.context = TrialContext(training=training)
        return _planned_configs(strategy.plan(samples))

    grid = {"learning_rate": [2e-5, 5e-5]}
    assert [(c["learning_rate"], c["seed"]) for c in configs(grid, {})] == [
        (2e-5, 7), (2e-5, 8), (2e-5, 9), (5e-5, 7), (5e-5, 8), (5e-5, 9)]
    assert [c["seed"] for c in configs(grid, {"seed": 40})] == [40, 41, 42] * 2
    # one sample: nothing repeats, the config stays as the space has it
    assert configs(grid, {}, samples=1) == [{"learning_rate": 2e-5}, {"learning_rate": 5e-5}]
    # a searched seed axis, or a sampled axis that already makes repeats differ: untouched
    searched = configs({**grid, "seed": [1, 2]}, {})
    assert sorted(c["seed"] for c in searched) == [1] * 6 + [2] * 6
    sampled = configs({**grid, "weight_decay": {"uniform": [0.0, 0.3]}}, {})
    assert all("seed" not in c for c in sampled)
