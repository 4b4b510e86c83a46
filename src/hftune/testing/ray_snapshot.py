"""Ray experiment snapshots for tests, written with Ray's own serialization.

:func:`write_snapshot` writes ``experiment_state-<session>.json`` as ``TuneController
.save_to_dir`` does (``Trial.get_json_state()`` per trial), for trials whose latest checkpoint
is given: what :mod:`hftune._compat.ray` reads back.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path


def write_snapshot(experiment: Path, checkpoints: Mapping[str, str | None],
                   session: str = "2026-12-02_10-00-00",
                   statuses: Mapping[str, str] | None = None,
                   registered: Mapping[str, list[str]] | None = None) -> Path:
    """Write a snapshot into ``experiment`` naming each trial's latest checkpoint (``None``:
    none); ``statuses``: Ray statuses to set (default PENDING); ``registered``: checkpoints a
    trial reported before its latest. Trial ``x``'s folder is ``experiment/trial_x``. Returns
    the snapshot's path."""
    from ray.train._internal.session import _TrainingResult
    from ray.train._internal.storage import StorageContext
    from ray.tune import Checkpoint
    from ray.tune.experiment import Trial

    experiment = Path(experiment)
    data = []
    for trial_id, checkpoint in checkpoints.items():
        storage = StorageContext(storage_path=str(experiment.parent),
                                 experiment_dir_name=experiment.name,
                                 trial_dir_name=f"trial_{trial_id}")
        trial = Trial("f", stub=True, config={"x": 1}, trial_id=trial_id, storage=storage)
        trial.relative_logdir = f"trial_{trial_id}"  # as a trial that ran has it
        if statuses and trial_id in statuses:
            trial.set_status(statuses[trial_id])
        manager = trial.run_metadata.checkpoint_manager
        for earlier in (registered or {}).get(trial_id, []):
            manager.register_checkpoint(
                _TrainingResult(checkpoint=Checkpoint(earlier), metrics={"m": 0.5}))
        if checkpoint is not None:
            manager.register_checkpoint(
                _TrainingResult(checkpoint=Checkpoint(checkpoint), metrics={"m": 1.0}))
        data.append(trial.get_json_state())
    path = experiment / f"experiment_state-{session}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"trial_data": data, "runner_data": {}}), encoding="utf-8")
    return path
