"""seeds-then-pbt: a seed screen with early stopping, then PBT from the best seeds, in one
study folder with both steps visible."""

from __future__ import annotations

import pytest

from hftune.strategies._seeds_then_pbt import top_seeds
from hftune.study.checkpoints import best_checkpoint, scan_checkpoints
from hftune.study.export import choose_export
from hftune.study.loading import validate_study
from hftune.study.runner import run_study
from hftune.study.store import StudyStore

pytestmark = pytest.mark.integration


def test_seeds_then_pbt(ray_session, tiny_bert, shared_data, tmp_path) -> None:
    out = tmp_path / "stp"
    cfg = validate_study({
        "name": "stp", "output_dir": str(out), "model": str(tiny_bert), "seed": 10,
        "task": {"name": "rte", "data_dir": str(shared_data / "rte"), "max_train_samples": 96,
                 "max_eval_samples": 64},
        "max_length": 48,
        "search_space": {"learning_rate": {"loguniform": [3e-4, 3e-3]},
                         "weight_decay": {"uniform": [0.0, 0.2]}, "num_train_epochs": [2]},
        "strategy": {"name": "seeds-then-pbt", "metric": "loss", "mode": "min", "seeds": 4,
                     "top_k": 2, "population": 2, "grace_period": 1, "reduction_factor": 2},
    })
    result = run_study(cfg)
    trials = result.trials
    screen = [t for t in trials if t.phase == "screen"]
    pbt = [t for t in trials if t.phase == "pbt"]

    assert result.study.status == "finished"
    assert not [t.error for t in trials if t.state == "errored"]
    # step 1: four seeds at one fixed config, under early stopping
    assert sorted(t.config["seed"] for t in screen) == [11, 12, 13, 14]
    assert len({(t.config["learning_rate"], t.config["weight_decay"]) for t in screen}) == 1
    assert screen[0].config["learning_rate"] == pytest.approx((3e-4 * 3e-3) ** 0.5)
    # step 2: PBT members start from the two best seeds of step 1 (an exploit may later copy
    # a donor's whole config, seed included, so compare the configs the members started with)
    best = top_seeds(screen, "loss", "min", 2)
    assert len(pbt) == 2 and sorted(t.initial_config["seed"] for t in pbt) == sorted(best)
    assert all(t.reports for t in pbt)
    store = StudyStore(out)
    assert store.ray_dir.is_dir() and (out / "ray-pbt").is_dir()
    # every trial of both steps still has the checkpoint of the value the study reports for
    # it (PBT's checkpoint budget keeps each trial's best); export takes the selected one's
    checkpoints = scan_checkpoints(*store.experiment_dirs())
    for trial in trials:
        kept = best_checkpoint(checkpoints, trial.trial_id, "loss", "min")
        assert kept is not None and kept.value("loss") == pytest.approx(
            trial.score("loss", "min")), trial.trial_id
    _, chosen, ck = choose_export(store)
    assert chosen.trial_id == result.study.best_trial_id
    assert ck.value("loss") == pytest.approx(result.study.best_value)
