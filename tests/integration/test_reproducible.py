"""Same seed, trials one at a time: two runs of a study report identical metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hftune.study.loading import validate_study
from hftune.study.runner import run_study

pytestmark = pytest.mark.integration

# Fields that describe the process, the clock or the evaluation's identity, not the training
# (and every ``*_s`` timing).
NOT_METRICS = {"time", "worker_pid", "ray_node_id", "torch_threads", "eval_id"}


def _is_metric(key: str) -> bool:
    return key not in NOT_METRICS and not key.endswith("_s")


def _metrics(result: Any) -> dict[tuple[Any, ...], list[dict[str, Any]]]:
    return {tuple(sorted(t.config.items())): [
        {k: v for k, v in r.items() if _is_metric(k)} for r in t.reports]
        for t in result.trials}


def test_same_seed_one_at_a_time_gives_identical_metrics(ray_session, tiny_bert: Path,
                                                        shared_data: Path,
                                                        tmp_path: Path) -> None:
    def run(name: str) -> Any:
        return run_study(validate_study({
            "name": name, "output_dir": str(tmp_path / name), "model": str(tiny_bert),
            "seed": 11,
            "task": {"name": "rte", "data_dir": str(shared_data / "rte"),
                     "max_train_samples": 128, "max_eval_samples": 64},
            "max_length": 48,
            "search_space": {"learning_rate": [5e-4, 2e-3], "num_train_epochs": [2],
                             "model.hidden_dropout_prob": [0.1]},
            "resources": {"cpus_per_trial": 1, "max_concurrent": 1},
        }))

    first, second = run("first"), run("second")
    a, b = _metrics(first), _metrics(second)
    assert len(a) == 2 and all(len(reports) == 2 for reports in a.values())
    assert all({"loss", "accuracy", "learning_rate", "step"} <= set(r)
               for reports in a.values() for r in reports)
    assert a == b
    # the two configs really differ in training: the check compares something
    losses = [reports[-1]["loss"] for reports in a.values()]
    assert losses[0] != losses[1]
