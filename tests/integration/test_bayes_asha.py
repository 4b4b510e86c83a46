"""The reference study's strategy end to end: TPE + ASHA on a tiny BERT and a slice of RTE."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hftune.study.loading import validate_study
from hftune.study.runner import run_study

pytestmark = pytest.mark.integration

EPOCHS = 4


def bayes_asha_config(out: Path, model: Path, data: Path) -> dict[str, Any]:
    # Loss (not accuracy, which ties on 64 examples) so that ASHA's rungs tell trials apart;
    # one trial at a time so that the seeded study is reproducible.
    return {
        "name": "bayes-asha-it",
        "output_dir": str(out),
        "model": str(model),
        "task": {"name": "rte", "data_dir": str(data), "max_train_samples": 128,
                 "max_eval_samples": 64},
        "max_length": 64,
        "search_space": {"learning_rate": {"loguniform": [1e-4, 1e-3]},
                         "per_device_train_batch_size": {"choice": [16, 32]},
                         "num_train_epochs": [EPOCHS]},
        "strategy": {"name": "bayes+asha", "metric": "loss", "mode": "min",
                     "n_initial_points": 3, "grace_period": 1, "reduction_factor": 3,
                     "max_t": EPOCHS},
        "budget": {"num_samples": 6},
        "resources": {"max_concurrent": 1},
    }


def test_bayes_asha_study_stops_trials_early(ray_session: Any, tiny_bert: Path,
                                             shared_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "bayes-asha"
    result = run_study(validate_study(bayes_asha_config(out, tiny_bert, shared_data / "rte")))

    assert result.study.status == "finished"
    assert result.study.strategy == "bayes+asha" and result.study.score == "best"
    assert len(result.trials) == 6
    assert {t.state for t in result.trials} <= {"finished", "stopped"}
    for t in result.trials:
        assert 1e-4 <= t.config["learning_rate"] <= 1e-3
        assert t.config["per_device_train_batch_size"] in (16, 32)
        epochs = [r["epoch"] for r in t.reports]
        assert epochs == [float(e) for e in range(1, len(epochs) + 1)]

    finished = [t for t in result.trials if t.state == "finished"]
    stopped = [t for t in result.trials if t.state == "stopped"]
    assert finished and stopped, [(t.state, len(t.reports)) for t in result.trials]
    for t in finished:
        assert len(t.reports) == EPOCHS and t.reports[-1]["trained_all"] is True
    for t in stopped:
        # stopped at a rung: training ended there, no epoch ran after the stop decision
        assert len(t.reports) < EPOCHS
        assert t.last_epoch < EPOCHS and t.reports[-1]["trained_all"] is False
        assert t.reports[-1]["step"] < t.reports[0]["step"] * EPOCHS

    # the study's best is the lowest loss any trial reported (score: best)
    best_loss = min(r["loss"] for t in result.trials for r in t.reports)
    assert result.study.best_value == best_loss
