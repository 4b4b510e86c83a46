"""Driving tracking callbacks without Ray, and reading back what each target logged.

The callbacks get fake trials (:func:`~hftune.testing.records.ray_trial`) and results shaped as
:func:`hftune.training.trainable.run_trial` reports them: ``worker_pid`` marks a run's first
report, ``restored_from`` / ``restored_epoch`` / ``trial_config`` a restore.
:data:`PBT_RUN` is one PBT member's whole history (an exploit to another batch size, then a
retry from its own checkpoint); :data:`PBT_STEPS` the steps it must be logged at.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from hftune.testing.records import ray_trial
from hftune.tracking._base import TrackingCallback

KEYS = ["per_device_train_batch_size", "learning_rate"]
BS16 = {"per_device_train_batch_size": 16, "learning_rate": 1e-5}
BS32 = {"per_device_train_batch_size": 32, "learning_rate": 1e-5}
EXPLOIT = {"worker_pid": 2, "restored_from": "a_00000", "restored_epoch": 2.0,
           "trial_config": BS32}
# Trial b at batch size 16 (100 steps per epoch) reaches epoch 3; exploits a's epoch-2
# checkpoint, explored to batch size 32 (50 steps per epoch: steps re-expressed); is retried
# from its own epoch-5 checkpoint.
PBT_RUN = [
    {"epoch": 1.0, "step": 100, "accuracy": 0.50, "worker_pid": 1, "trial_config": BS16},
    {"epoch": 2.0, "step": 200, "accuracy": 0.55},
    {"epoch": 3.0, "step": 300, "accuracy": 0.56},
    {"epoch": 3.0, "step": 150, "accuracy": 0.60, **EXPLOIT},
    {"epoch": 4.0, "step": 200, "accuracy": 0.62},
    {"epoch": 5.0, "step": 250, "accuracy": 0.63},
    {"epoch": 6.0, "step": 300, "accuracy": 0.66, "worker_pid": 3, "restored_from": "b_00001",
     "restored_epoch": 5.0, "trial_config": BS32},
    {"epoch": 7.0, "step": 350, "accuracy": 0.67},
]
PBT_STEPS = [100, 200, 300, 350, 400, 450, 500, 550]  # the exploit: 300 + (150 - 100)


def trial_b() -> SimpleNamespace:
    """The PBT member of :data:`PBT_RUN`, as Ray's ``Trial`` (batch size 16 at first)."""
    return ray_trial("b_00001", **BS16)


def feed(callbacks: list[Any], trial: Any, results: list[dict[str, Any]]) -> None:
    """Each callback gets every result of ``trial`` in turn (``on_trial_result``)."""
    for cb in callbacks:
        for result in results:
            cb.on_trial_result(1, [], trial, dict(result))


class RecordingTarget(TrackingCallback):
    """A target that records calls, and fails on demand (its state file in a temporary
    folder unless ``study_dir`` is given)."""

    target = "fake"

    def __init__(self, fail_on: str | None = None, study_dir: Path | None = None) -> None:
        super().__init__("s", study_dir or Path(tempfile.mkdtemp(prefix="hftune-fake-")),
                         ["learning_rate"], frozenset({"accuracy"}))
        self.calls: list[tuple] = []
        self.fail_on = fail_on

    def _call(self, name: str, *args: Any) -> str:
        if name == self.fail_on:
            raise RuntimeError(f"{name} broke\nsecond line")
        self.calls.append((name, *args))
        return "run"

    def _start(self) -> None:
        self._call("start")

    def _open(self, trial_id: str, params: dict[str, Any]) -> str:
        return self._call("open", trial_id, params)

    def _log(self, run: Any, metrics: dict[str, float], step: int) -> None:
        self._call("log", metrics, step)

    def _close(self, run: Any, status: str) -> None:
        self._call("close", status)


def mlflow_run(root: Path, trial_id: str = "b_00001", experiment: str = "s") -> tuple[Any, Any]:
    """``(client, run)`` of a trial in the study's own MLflow store."""
    from mlflow.tracking import MlflowClient

    from hftune.tracking._mlflow import default_tracking_uri

    client = MlflowClient(tracking_uri=default_tracking_uri(root))
    found = client.get_experiment_by_name(experiment)
    (run,) = [r for r in client.search_runs([found.experiment_id])
              if r.data.tags["hftune.trial_id"] == trial_id]
    return client, run


def mlflow_history(root: Path, name: str, trial_id: str = "b_00001") -> list[tuple[int, float]]:
    """``(step, value)`` of every value of metric ``name`` MLflow holds for the trial."""
    client, run = mlflow_run(root, trial_id)
    return [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, name)]


def tb_scalars(root: Path, name: str, trial_id: str = "b_00001") -> list[tuple[int, float]]:
    """``(step, value)`` of the trial's TensorBoard scalar ``name`` (values to 4 places)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(root / "tensorboard" / trial_id))
    events.Reload()
    return [(s.step, round(s.value, 4)) for s in events.Scalars(name)]


def offline_runs(root: Path) -> list[Any]:
    """Every offline W&B run under ``root/wandb``, read back from its ``.wandb`` file."""
    from hftune.testing.wandb_offline import read_offline_run

    return [read_offline_run(f) for f in sorted(root.glob("wandb/offline-run-*/run-*.wandb"))]


# The config tracking tests validate: the study is named ``t`` (its MLflow experiment).
TRACKED_BASE: dict[str, Any] = {"name": "t", "model": "bert-base-uncased", "task": "rte",
                                "search_space": {"learning_rate": [2e-5, 3e-5]}}


def tracked_study(tracking: Any, **changes: Any) -> Any:
    """:data:`TRACKED_BASE` with ``tracking`` (and top-level ``changes``), validated."""
    from hftune.study.loading import validate_study

    return validate_study({**TRACKED_BASE, "tracking": tracking, **changes})


def trial_a(trial_id: str = "a_00000") -> SimpleNamespace:
    """A trial whose config holds a searched learning rate and an unsearched seed."""
    return ray_trial(trial_id, learning_rate=1e-3, seed=1)
