"""Every task type with every kind of strategy: a study ranks trials by the type's metric.

For each type × {grid, bayes+asha, pbt, seeds-then-pbt}, the config of a study of that type
gives the objective (the type's standard metric and its direction), and the strategy built
from it hands Ray Tune's searcher and scheduler that metric; then, on real Ray Tune with the
synthetic trainable reporting the metric under that name, ASHA stops and PBT exploits by it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hftune.config.loading import config_space
from hftune.config.schema import StrategyConfig
from hftune.space import parse_space
from hftune.strategies import build_strategy
from hftune.study.prepare import study_objective
from hftune.testing.configs import study_config
from hftune.testing.synthetic import CurveSpec, run_synthetic_study

TASKS = {  # a study's task section per type, and the metric it ranks by
    "sequence_classification": ({"name": "rte"}, "accuracy"),
    "regression": ({"name": "stsb"}, "pearson"),
    "multi_label": ({"name": "tags", "type": "multi_label", "text_fields": ["t"],
                     "label_field": "y"}, "micro_f1"),
    "token_classification": ({"name": "wnut17"}, "f1"),
    "question_answering": ({"name": "squad"}, "f1"),
    "multiple_choice": ({"name": "swag"}, "accuracy"),
}
STRATEGIES = {
    "grid": {},
    "bayes+asha": {"n_initial_points": 2, "max_t": 3, "reduction_factor": 2},
    "pbt": {"population": 2, "perturbation_interval": 1},
    "seeds-then-pbt": {"seeds": 2, "top_k": 1, "population": 2, "perturbation_interval": 1},
}
SPACE = {"learning_rate": {"loguniform": [1e-5, 1e-3]}, "num_train_epochs": [3]}


@pytest.mark.parametrize("strategy", list(STRATEGIES))
@pytest.mark.parametrize("kind", list(TASKS))
def test_the_strategy_ranks_by_the_task_types_metric(kind: str, strategy: str) -> None:
    task, metric = TASKS[kind]
    space = {"learning_rate": [1e-4, 1e-3], "num_train_epochs": [3]} if strategy == "grid" \
        else SPACE
    cfg = study_config(task=task, search_space=space,
                       strategy={"name": strategy, **STRATEGIES[strategy]})
    assert cfg.task.task_type == kind
    assert study_objective(cfg) == (metric, "max")
    built = build_strategy(cfg.strategy, config_space(cfg), metric, "max", cfg.seed)
    plan = built.plan(None if strategy == "grid" else 2)
    assert (built.metric, built.mode) == (metric, "max")
    for part in (plan.searcher, plan.scheduler):
        if part is not None and getattr(part, "metric", None) is not None:
            assert (part.metric, part.mode) == (metric, "max"), (kind, strategy, part)


def test_asha_stops_by_a_task_metric_reported_under_its_name(ray_session,
                                                            tmp_path: Path) -> None:
    """The synthetic trainable reports ``pearson``: Bayes + ASHA runs on it (Ray refuses a
    metric the results lack) and the trials it lets run longest are the best by pearson."""
    space = parse_space({"learning_rate": {"uniform": [0.0, 1.0]}, "num_train_epochs": [4]},
                        training_fields={"learning_rate", "num_train_epochs"})
    built = build_strategy(StrategyConfig(name="bayes+asha", n_initial_points=2, max_t=4,
                                          reduction_factor=2), space, "pearson", "max", 3)
    spec = CurveSpec(optimum={"learning_rate": 0.9}, noise=0.0, metric="pearson")
    trials = run_synthetic_study(built, 6, spec, tmp_path, seed=3)
    longest = max(len(t.values) for t in trials)
    stopped = [t.values[-1] for t in trials if len(t.values) < longest]
    kept = [t.values[-1] for t in trials if len(t.values) == longest]
    assert stopped, "ASHA stopped no trial"
    assert max(kept) >= max(stopped)
