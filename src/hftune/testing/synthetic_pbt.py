"""A checkpointable synthetic trainable for PBT tests: a one-number "model", no HF, seconds.

The state is ``w`` in [0, 1) (reported as ``accuracy``); one epoch moves it towards 1 by
:func:`epoch_step`, faster for a higher learning rate and a lower weight decay. Checkpoints use
the same conventions as the real trainable (``hftune.json`` via
:func:`~hftune.training.checkpoint.write_meta`, restore fallback via
:func:`~hftune.training.checkpoint.find_checkpoint`), and the study is recorded by the real
:class:`~hftune.study.recorder.StudyRecorder`, so lineage and the checkpoint budget are tested on
the real code paths.
"""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from pathlib import Path
from typing import Any

from hftune.study.records import TrialRecord
from hftune.study.store import StudyStore
from hftune.training.checkpoint import META_FILE, find_checkpoint, local_checkpoint_path, write_meta

STATE_FILE = "state.json"


def epoch_step(w: float, config: dict[str, Any]) -> float:
    """One epoch of the synthetic model: ``w + rate · (1 − w)``."""
    rate = min(0.9, float(config["learning_rate"]) * 1e4 * (1.0 - float(config["weight_decay"])))
    return w + rate * (1.0 - w)


def synthetic_pbt_trainable(config: dict[str, Any]) -> None:
    """Ray Tune function trainable: reports and checkpoints every epoch; restores on exploit."""
    from ray import tune

    trial_id = tune.get_context().get_trial_id()
    w, epoch, extra = 0.0, 0, {}
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        folder, fallback = find_checkpoint(local_checkpoint_path(checkpoint))
        meta = json.loads((folder / META_FILE).read_text())
        w = json.loads((folder / STATE_FILE).read_text())["w"]
        epoch = int(meta["epoch"])
        extra = {"trial_config": dict(config), "worker_pid": os.getpid(),
                 "restored_from": meta["trial_id"], "restored_epoch": float(epoch),
                 "restored_eval": meta["record"].get("eval_id"),
                 "restored_w": w, "restore_fallback": fallback,
                 "applied": {"learning_rate": config["learning_rate"],
                             "weight_decay": config["weight_decay"]}}
    total = int(config["num_train_epochs"])
    if extra and epoch >= total and extra["restored_from"] != trial_id:
        # cloned a trial that had already finished: report its state, which becomes this
        # trial's checkpoint (as the real trainable does)
        _report(trial_id, config, w, {"accuracy": w, "epoch": float(epoch), "step": epoch,
                                      "eval_id": uuid.uuid4().hex[:16], "trained_all": True,
                                      "elapsed_s": 0.0, **extra})
        return
    while epoch < total:
        w = epoch_step(w, config)
        epoch += 1
        record = {"accuracy": w, "epoch": float(epoch), "step": epoch,
                  "eval_id": uuid.uuid4().hex[:16], "trained_all": epoch >= total,
                  "elapsed_s": 0.0,
                  "learning_rate": config["learning_rate"],
                  "weight_decay": config["weight_decay"], **extra}
        extra = {}
        _report(trial_id, config, w, record)


def _report(trial_id: str, config: dict[str, Any], w: float, record: dict[str, Any]) -> None:
    """``tune.report`` with a checkpoint of ``w`` (and its ``hftune.json``)."""
    from ray import tune

    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / STATE_FILE).write_text(json.dumps({"w": w}))
        write_meta(Path(tmp), trial_id=trial_id, epoch=float(record["epoch"]),
                   global_step=int(record["step"]), config=dict(config), record=record)
        tune.report(record, checkpoint=tune.Checkpoint.from_directory(tmp))


def run_synthetic_pbt(strategy: Any, store: StudyStore, *, keep: int = 1,
                      max_concurrent: int | None = 2) -> list[TrialRecord]:
    """Run a PBT/PB2 strategy's plan on :func:`synthetic_pbt_trainable` with Ray Tune.

    Records go to ``store`` through the real recorder; ``keep`` is the checkpoint budget
    (checkpoints each trial keeps). The caller owns ``ray.init``.
    """
    from ray import tune

    from hftune.study.budget import CheckpointBudget
    from hftune.study.recorder import StudyRecorder

    plan = strategy.plan(None, max_concurrent=max_concurrent)
    recorder = StudyRecorder(store, list(strategy.space))
    budget = CheckpointBudget(keep, plan.scheduler, metric=strategy.metric, mode=strategy.mode)
    tuner = tune.Tuner(
        tune.with_resources(synthetic_pbt_trainable, {"cpu": 1}),
        param_space=plan.param_space,
        tune_config=tune.TuneConfig(metric=strategy.metric, mode=strategy.mode,
                                    scheduler=plan.scheduler, search_alg=plan.searcher,
                                    num_samples=plan.num_samples, reuse_actors=True),
        run_config=tune.RunConfig(name="ray", storage_path=str(store.root.resolve()),
                                  callbacks=[recorder, budget], verbose=0,
                                  checkpoint_config=tune.CheckpointConfig(num_to_keep=None)),
    )
    tuner.fit()
    return store.read_trials()


def checkpoints_on_disk(store: StudyStore) -> dict[str, int]:
    """How many checkpoints each trial folder holds now (trial folder name → count)."""
    return {p.name: len(list(p.glob("checkpoint_*"))) for p in store.ray_dir.iterdir()
            if p.is_dir()}
