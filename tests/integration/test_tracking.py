"""Tracking end to end: one tiny study tracked to MLflow, W&B (offline) and TensorBoard at once.

Every tracked value is read back with the target's own reader and compared with the study's
records (``trials/*.json``), and the whole study folder is searched for the W&B API key.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from hftune.study.loading import validate_study
from hftune.study.runner import run_study
from hftune.study.store import StudyStore

pytestmark = pytest.mark.integration

# Ray's and hftune's bookkeeping fields: none of them may show up as a tracked metric.
NOT_METRICS = {"time_this_iter_s", "time_total_s", "timestamp", "pid", "training_iteration",
               "worker_pid", "torch_threads", "trained_all", "eval_samples", "time",
               "iterations_since_restore", "time_since_restore"}


def tracked_config(out: Path, model: Path, data: Path) -> dict:
    return {
        "name": "track-it",
        "output_dir": str(out),
        "model": str(model),
        "task": {"name": "rte", "data_dir": str(data), "max_train_samples": 128,
                 "max_eval_samples": 64},
        "max_length": 48,
        "search_space": {"learning_rate": [3e-4, 3e-3], "num_train_epochs": [2],
                         "per_device_train_batch_size": [32]},
        "strategy": {"name": "grid"},
        "tracking": {"mlflow": None, "wandb": {"project": "hftune-test"}, "tensorboard": None},
    }


def test_study_tracked_to_mlflow_wandb_tensorboard(ray_session, tiny_bert, shared_data,
                                                    tmp_path, monkeypatch) -> None:
    key = "sk-test-" + secrets.token_hex(20)
    monkeypatch.setenv("WANDB_API_KEY", key)
    monkeypatch.setenv("WANDB_MODE", "offline")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)  # nothing may land in the current directory (./mlruns, ./wandb)
    out = tmp_path / "study"

    result = run_study(validate_study(tracked_config(out, tiny_bert, shared_data / "rte")))

    trials = {t.trial_id: t for t in StudyStore(out).read_trials()}
    assert len(trials) == 2 and {t.state for t in trials.values()} == {"finished"}
    for t in trials.values():
        assert [r["epoch"] for r in t.reports] == [1.0, 2.0]
    assert result.study.status == "finished"
    assert list(cwd.iterdir()) == []

    check_mlflow(out, trials)
    check_wandb(out, trials)
    check_tensorboard(out, trials)

    # the API key is nowhere in the study folder (text or binary, any file)
    needle = key.encode()
    leaked = [p for p in out.rglob("*") if p.is_file() and needle in p.read_bytes()]
    assert leaked == []


def check_mlflow(out: Path, trials: dict) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{out}/mlflow.db")
    experiment = client.get_experiment_by_name("track-it")
    assert experiment is not None
    assert experiment.artifact_location == (out / "mlruns").resolve().as_uri()
    runs = client.search_runs([experiment.experiment_id])
    by_trial = {r.data.tags["hftune.trial_id"]: r for r in runs}
    assert sorted(by_trial) == sorted(trials) and len(runs) == 2
    for trial_id, run in by_trial.items():
        rec = trials[trial_id]
        assert run.info.run_name == trial_id and run.info.status == "FINISHED"
        assert run.data.params == {k: str(v) for k, v in rec.config.items()}
        assert set(run.data.metrics) >= {"accuracy", "loss", "epoch", "step", "learning_rate"}
        assert not set(run.data.metrics) & NOT_METRICS
        for name in ("accuracy", "loss", "epoch"):
            history = sorted(client.get_metric_history(run.info.run_id, name),
                             key=lambda m: m.step)
            assert [m.value for m in history] == [r[name] for r in rec.reports], name
            assert [m.step for m in history] == [r["step"] for r in rec.reports], name


def check_wandb(out: Path, trials: dict) -> None:
    from hftune.testing.wandb_offline import read_offline_run

    run_files = sorted((out / "wandb").glob("offline-run-*/run-*.wandb"))
    runs = {r.name: r for r in map(read_offline_run, run_files)}
    assert len(run_files) == 2 and sorted(runs) == sorted(trials)
    for trial_id, run in runs.items():
        rec = trials[trial_id]
        assert (run.project, run.group, run.run_id) == ("hftune-test", "track-it",
                                                        f"track-it-{trial_id}")
        assert run.config == rec.config
        assert [row["accuracy"] for row in run.history] == [r["accuracy"] for r in rec.reports]
        assert [row["step"] for row in run.history] == [r["step"] for r in rec.reports]
        logged = {k for row in run.history for k in row if not k.startswith("_")}
        assert "loss" in logged and not logged & NOT_METRICS
        assert run.exit_code == 0


def check_tensorboard(out: Path, trials: dict) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    assert sorted(p.name for p in (out / "tensorboard").iterdir()) == sorted(trials)
    for trial_id, rec in trials.items():
        events = EventAccumulator(str(out / "tensorboard" / trial_id))
        events.Reload()
        tags = set(events.Tags()["scalars"])
        assert {"accuracy", "loss", "epoch"} <= tags and not tags & NOT_METRICS
        assert not any(t.startswith("ray/") for t in tags)
        for name in ("accuracy", "loss"):
            scalars = events.Scalars(name)
            assert [s.step for s in scalars] == [r["step"] for r in rec.reports]
            assert [s.value for s in scalars] == pytest.approx(
                [r[name] for r in rec.reports], rel=1e-6)  # stored as float32
        # the hyperparameters are in the run too, for the HParams dashboard
        content = events.PluginTagToContent("hparams")["_hparams_/session_start_info"]
        start = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info
        hparams = {k: getattr(v, v.WhichOneof("kind")) for k, v in start.hparams.items()}
        assert hparams == rec.config
