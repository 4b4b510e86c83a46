"""How each tracking target behaves while a study runs: short HTTP limits on every MLflow call,
a failed call dropped and tracking going on, a target turned off closing its runs, a failed
start tried again, unique W&B run ids, the SQLite store inside an oddly named study folder."""

from __future__ import annotations

import os
from typing import Any

import pytest

from hftune.testing.tracking import (
    KEYS,
    PBT_RUN,
    RecordingTarget,
    feed,
    mlflow_history,
    mlflow_run,
    trial_a,
    trial_b,
)
from hftune.tracking._mlflow import MlflowTracking
from hftune.tracking._wandb import wandb_run_id

pytestmark = pytest.mark.usefixtures("offline_tracking")


def test_study_client_calls_run_with_short_limits(tmp_path, monkeypatch) -> None:
    """Ray's driver loop never waits on MLflow's default 7 retries × 120 s: each call of
    hftune's client sees 1 retry and a 10 s timeout; the user's values stay outside it."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "120")
    cb = MlflowTracking("s", tmp_path, KEYS, frozenset({"accuracy"}))
    feed([cb], trial_b(), PBT_RUN[:1])
    seen: list[tuple[str | None, str | None]] = []
    real = cb._client.log_batch

    def log_batch(*args: Any, **kwargs: Any) -> None:
        seen.append((os.environ.get("MLFLOW_HTTP_REQUEST_MAX_RETRIES"),
                     os.environ.get("MLFLOW_HTTP_REQUEST_TIMEOUT")))
        real(*args, **kwargs)

    cb._client.log_batch = log_batch
    feed([cb], trial_b(), PBT_RUN[1:2])
    assert seen == [("1", "10")]
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "120"
    assert "MLFLOW_HTTP_REQUEST_MAX_RETRIES" not in os.environ


def test_one_failed_call_is_dropped_and_tracking_goes_on(tmp_path, capsys) -> None:
    from mlflow.exceptions import MlflowException

    cb = MlflowTracking("s", tmp_path, KEYS, frozenset({"accuracy"}))
    feed([cb], trial_b(), PBT_RUN[:1])
    real, calls = cb._client.log_batch, []

    def flaky(*args: Any, **kwargs: Any) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise MlflowException("API request to endpoint /api/2.0/mlflow/runs/log-batch "
                                  "failed with error code 503 != 200")
        real(*args, **kwargs)

    cb._client.log_batch = flaky
    feed([cb], trial_b(), PBT_RUN[1:3])
    cb.on_trial_complete(2, [], trial_b())
    _, run = mlflow_run(tmp_path)
    assert run.info.status == "FINISHED" and not cb._off
    assert mlflow_history(tmp_path, "accuracy") == [(100, 0.5), (300, 0.56)]  # 200: dropped
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error code 503 != 200; skipped (1 of 3" in err


def test_a_target_turned_off_closes_its_open_runs(tmp_path, capsys) -> None:
    cb = MlflowTracking("s", tmp_path, KEYS, frozenset({"accuracy"}))
    feed([cb], trial_b(), PBT_RUN[:1])

    def broken(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("server gone")

    cb._client.log_batch = broken
    feed([cb], trial_b(), PBT_RUN[1:5])
    cb.on_experiment_end([])
    _, run = mlflow_run(tmp_path)
    assert cb._off and run.info.status == "KILLED"
    assert "tracking stopped after 3 failures in a row" in capsys.readouterr().err


def test_a_failed_start_is_tried_again() -> None:
    cb = RecordingTarget(fail_on="start")
    cb.on_trial_result(1, [], trial_a(), {"accuracy": 0.5, "step": 1})
    cb.fail_on = None
    cb.on_trial_result(1, [], trial_a(), {"accuracy": 0.6, "step": 2})
    assert [c[0] for c in cb.calls] == ["start", "open", "log"] and not cb._off


def test_long_study_names_keep_wandb_run_ids_unique() -> None:
    name = "rte-bert-base-uncased-lr-sweep-" + "x" * 100
    ids = {wandb_run_id(name, t, part) for t in ("a1b2c3d4_00000", "a1b2c3d4_00001")
           for part in (0, 1)} | {wandb_run_id(name + "y", "a1b2c3d4_00000")}
    assert len(ids) == 5 and all(len(i) <= 128 for i in ids)
    assert wandb_run_id(name, "a1b2c3d4_00001", 2).endswith("-a1b2c3d4_00001-r2")
    assert wandb_run_id("s", "a_00000") == "s-a_00000"


def test_default_sqlite_store_stays_in_a_study_folder_with_odd_characters(tmp_path) -> None:
    for name in ("rte?v=2", "rte%41"):
        (tmp_path / name).mkdir()
        cb = MlflowTracking(name, tmp_path / name, KEYS, frozenset({"accuracy"}))
        feed([cb], trial_b(), PBT_RUN[:1])
        assert not cb._off and (tmp_path / name / "mlflow.db").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rte%41", "rte?v=2"]  # no strays
