"""Tracking review fixes: up-front store checks, monotonic steps through PBT, W&B offline
continuations, failure tolerance, run ids, SQLite paths, credentials (no Ray, no network).

The callbacks are driven directly with fake trials and results shaped as
``hftune.training.trainable.run_trial`` reports them: ``worker_pid`` marks a run's first report,
``restored_from`` / ``restored_epoch`` / ``trial_config`` a restore.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from test_tracking_config import _Recording, _trial, study

import hftune.tracking as tracking_mod
from hftune.errors import ConfigError
from hftune.tracking import check_tracking_available, has_password
from hftune.tracking._base import redact_userinfo
from hftune.tracking._mlflow import MlflowTracking, default_tracking_uri
from hftune.tracking._steps import TrialTrack
from hftune.tracking._tensorboard import TensorboardTracking
from hftune.tracking._wandb import WandbTracking, wandb_run_id

DOWN = "http://127.0.0.1:1"  # nothing listens there: connection refused at once
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


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


def trial_b() -> SimpleNamespace:
    return SimpleNamespace(trial_id="b_00001", config=dict(BS16))


def feed(callbacks: list[Any], trial: Any, results: list[dict[str, Any]]) -> None:
    for cb in callbacks:
        for result in results:
            cb.on_trial_result(1, [], trial, dict(result))


def mlflow_run(root: Path, trial_id: str = "b_00001") -> tuple[Any, Any]:
    """``(client, run)`` of a trial in the study's own MLflow store."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=default_tracking_uri(root))
    experiment = client.get_experiment_by_name("s")
    (run,) = [r for r in client.search_runs([experiment.experiment_id])
              if r.data.tags["hftune.trial_id"] == trial_id]
    return client, run


def mlflow_history(root: Path, name: str) -> list[tuple[int, float]]:
    client, run = mlflow_run(root)
    return [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, name)]


def tb_scalars(root: Path, name: str, trial_id: str = "b_00001") -> list[tuple[int, float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(root / "tensorboard" / trial_id))
    events.Reload()
    return [(s.step, round(s.value, 4)) for s in events.Scalars(name)]


def offline_runs(root: Path) -> list[Any]:
    from hftune.testing.wandb_offline import read_offline_run

    return [read_offline_run(f) for f in sorted(root.glob("wandb/offline-run-*/run-*.wandb"))]


# -- 1, 6: the store and the settings are checked before any study folder exists --------------

def test_unreachable_mlflow_server_is_refused_at_once(tmp_path, monkeypatch) -> None:
    """One request, no retry, a 5 s timeout; the user's MLflow variables are put back."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "120")
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", raising=False)
    out = tmp_path / "s"
    for cfg, where in ((study({"mlflow": {"tracking_uri": DOWN}}, output_dir=str(out)),
                        "tracking.mlflow.tracking_uri"),
                       (study(["mlflow"], output_dir=str(out)), "$MLFLOW_TRACKING_URI")):
        if where.startswith("$"):
            monkeypatch.setenv("MLFLOW_TRACKING_URI", DOWN)
        started = time.monotonic()
        with pytest.raises(ConfigError) as info:
            check_tracking_available(cfg)
        assert time.monotonic() - started < 5
        text = str(info.value)
        assert text.startswith(f"{where}: cannot reach the MLflow store '{DOWN}'")
        assert "\n" not in text
    assert not out.exists()
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "120"
    assert "MLFLOW_HTTP_REQUEST_MAX_RETRIES" not in os.environ


@pytest.mark.parametrize("uri, message", [
    ("htp://x:5000", "tracking.mlflow.tracking_uri: MLflow cannot open 'htp://x:5000'"),
    ("file:///nowhere/mlruns", "no longer opens a file store (file:///nowhere/mlruns); use a "
                               "database store, e.g. sqlite:///"),
    ("./mlruns", "or set MLFLOW_ALLOW_FILE_STORE=true"),
])
def test_mlflow_store_the_client_refuses_is_a_config_error(uri, message, monkeypatch) -> None:
    """A bad scheme, and a file store where MLflow (3.x) refuses one; where the user allows
    file stores (MLFLOW_ALLOW_FILE_STORE=true) one passes, and nothing is created."""
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    with pytest.raises(ConfigError) as info:
        check_tracking_available(study({"mlflow": {"tracking_uri": uri}}))
    assert message in str(info.value) and "\n" not in str(info.value)
    if uri != "htp://x:5000":
        monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
        check_tracking_available(study({"mlflow": {"tracking_uri": uri}}))
        assert not Path("/nowhere").exists() and not Path("mlruns").exists()


def test_deleted_experiment_is_refused(tmp_path) -> None:
    """In a SQLite store named by the config, and in a resumed study's own store."""
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path}/team.db"
    client = MlflowClient(tracking_uri=uri)
    client.delete_experiment(client.create_experiment("t"))
    with pytest.raises(ConfigError, match=r"^tracking.mlflow: the experiment 't' in sqlite:///"
                                          r".*team.db is deleted; restore it \(mlflow "
                                          r"experiments restore --experiment-id 1\) or set "
                                          r"tracking.mlflow.experiment_name"):
        check_tracking_available(study({"mlflow": {"tracking_uri": uri}}))
    check_tracking_available(study({"mlflow": {"tracking_uri": uri, "experiment_name": "u"}}))

    own = tmp_path / "study"
    own_client = MlflowClient(tracking_uri=default_tracking_uri(own))
    own_client.delete_experiment(own_client.create_experiment("t"))
    with pytest.raises(ConfigError, match=r"'t' in <study>/mlflow.db is deleted"):
        check_tracking_available(study(["mlflow"], output_dir=str(own)))


@pytest.mark.parametrize("options, message", [
    ({"project": "my/proj"}, "tracking.wandb: Invalid project name 'my/proj': cannot contain"),
    ({"tags": ["lr-sweep-" + "x" * 60]}, "tracking.wandb: tags: Tag 'lr-sweep-"),
])
def test_wandb_settings_are_validated_up_front(options, message) -> None:
    with pytest.raises(ConfigError) as info:
        check_tracking_available(study({"wandb": {"mode": "offline", **options}}))
    assert str(info.value).startswith(message) and "\n" not in str(info.value)


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


# -- 2, 3, 9: PBT exploits, restarts and resumes ------------------------------------------------

def test_pbt_trial_steps_increase_and_every_evaluation_is_logged_once(tmp_path) -> None:
    mlf = MlflowTracking("s", tmp_path, KEYS, frozenset({"accuracy"}))
    tb = TensorboardTracking("s", tmp_path, KEYS, frozenset({"accuracy"}))
    feed([mlf, tb], trial_b(), PBT_RUN)
    for cb in (mlf, tb):
        cb.on_trial_complete(2, [], trial_b())
    accuracy = [(step, r["accuracy"]) for step, r in zip(PBT_STEPS, PBT_RUN, strict=True)]
    assert mlflow_history(tmp_path, "accuracy") == accuracy
    assert tb_scalars(tmp_path, "accuracy") == accuracy
    # the global step and the epoch stay metrics
    assert [v for _, v in mlflow_history(tmp_path, "step")] == [r["step"] for r in PBT_RUN]
    assert [v for _, v in tb_scalars(tmp_path, "epoch")] == [r["epoch"] for r in PBT_RUN]
    _, run = mlflow_run(tmp_path)  # "latest" = the trial's last evaluation
    assert (run.data.metrics["accuracy"], run.data.metrics["step"]) == (0.67, 350.0)
    # 9: the config the exploit gave the trial (MLflow: a tag; TensorBoard: a text summary)
    assert run.data.params["per_device_train_batch_size"] == "16"  # immutable: the first
    assert json.loads(run.data.tags["hftune.config_after_exploit.1"]) == {
        "config": BS32, "from_trial": "a_00000", "epoch": 2.0, "step": 350}
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "tensorboard" / "b_00001"))
    events.Reload()
    (text,) = events.Tensors("hftune/config_after_exploit/text_summary")
    assert text.step == 350 and b'"per_device_train_batch_size": 32' in (
        text.tensor_proto.string_val[0])


def test_resume_after_an_exploit_logs_the_rest_once(tmp_path) -> None:
    """``hftune resume`` builds fresh callbacks with the records' highest step (300, from
    before the exploit); each target continues from its own state file."""
    def callbacks(logged: dict[str, int] | None = None) -> list[Any]:
        return [MlflowTracking("s", tmp_path, KEYS, frozenset({"accuracy"}),
                               logged_steps=logged),
                TensorboardTracking("s", tmp_path, KEYS, frozenset({"accuracy"}),
                                    logged_steps=logged)]

    first = callbacks()
    for cb in first:
        cb.setup()  # as Ray sets it up: its state is kept in <study>/tracking/
    feed(first, trial_b(), PBT_RUN[:5])  # up to epoch 4, after the exploit
    for cb in first:
        cb.on_experiment_end([])
    second = callbacks({"b_00001": 300})
    for cb in second:
        cb.setup()
    feed(second, trial_b(), [
        {"epoch": 5.0, "step": 250, "accuracy": 0.63, "worker_pid": 4,
         "restored_from": "b_00001", "restored_epoch": 4.0, "trial_config": BS32},
        {"epoch": 6.0, "step": 300, "accuracy": 0.66}])
    for cb in second:
        cb.on_trial_complete(2, [], trial_b())
    expected = [(100, 0.5), (200, 0.55), (300, 0.56), (350, 0.6), (400, 0.62), (450, 0.63),
                (500, 0.66)]
    assert mlflow_history(tmp_path, "accuracy") == expected
    assert tb_scalars(tmp_path, "accuracy") == expected
    state = json.loads((tmp_path / "tracking" / "tensorboard.json").read_text())
    assert state["trials"]["b_00001"]["last"] == 500


def test_exploit_retried_from_the_same_checkpoint_is_not_logged_again(tmp_path) -> None:
    """A trial that fails before it wrote a checkpoint of its own restarts from the donor's
    again: the same segment, its epochs already logged."""
    tb = TensorboardTracking("s", tmp_path, KEYS, frozenset({"accuracy"}))
    feed([tb], trial_b(), [*PBT_RUN[:5],
                           {**PBT_RUN[3], "accuracy": 0.61, "worker_pid": 9},
                           {**PBT_RUN[4], "accuracy": 0.64}, PBT_RUN[5]])
    tb.on_trial_complete(2, [], trial_b())
    assert tb_scalars(tmp_path, "accuracy") == [(100, 0.5), (200, 0.55), (300, 0.56),
                                                (350, 0.6), (400, 0.62), (450, 0.63)]


@pytest.mark.parametrize("restart, new_segment", [
    ({}, False),                                                   # from scratch
    ({"restored_from": "b_00001", "restored_epoch": 2.0}, False),  # its own checkpoint
    ({"restored_from": "b_00001", "restored_epoch": 2.0, "trial_config": BS32}, True),
    ({"restored_from": "a_00000", "restored_epoch": 2.0}, True),   # an exploit
])
def test_what_begins_a_segment(restart, new_segment) -> None:
    track = TrialTrack(last=300, config=dict(BS16))
    begun = track.begin_run("b_00001", {"epoch": 3.0, "step": 150, **restart},
                            restart.get("trial_config", BS16))
    assert begun is new_segment
    assert track.tracking_step({"step": 150}) == (350 if new_segment else None)


# -- 4, 9: W&B offline ------------------------------------------------------------------------

@pytest.mark.parametrize("state_file", [True, False])
def test_offline_wandb_resume_writes_a_continuation_run(state_file, tmp_path) -> None:
    """Offline, W&B ignores ``resume``: a trial's second run gets its own id (``-r1``), its
    steps continue the first run's, and its config names the first run. Also for a study
    folder written before hftune kept its tracking state (``state_file=False``): then
    ``logged_steps`` from the records says the trial had a run."""
    def callback(logged: dict[str, int] | None = None) -> WandbTracking:
        return WandbTracking("s", tmp_path, ["learning_rate"], frozenset({"accuracy"}),
                             project="p", logged_steps=logged)

    trial = _trial()
    first = callback()
    first.setup()
    feed([first], trial, [{"epoch": 1.0, "step": 100, "accuracy": 0.5, "worker_pid": 1},
                          {"epoch": 2.0, "step": 200, "accuracy": 0.6}])
    first.on_experiment_end([])  # interrupted
    if not state_file:
        (tmp_path / "tracking" / "wandb.json").unlink()
    second = callback({"a_00000": 200})  # as hftune resume builds it
    second.setup()
    feed([second], trial, [{"epoch": 3.0, "step": 300, "accuracy": 0.7, "worker_pid": 2,
                            "restored_from": "a_00000", "restored_epoch": 2.0}])
    second.on_trial_complete(2, [], trial)
    runs = {run.run_id: run for run in offline_runs(tmp_path)}
    assert sorted(runs) == ["s-a_00000", "s-a_00000-r1"]
    before, after = runs["s-a_00000"], runs["s-a_00000-r1"]
    assert [(h["_step"], h["accuracy"]) for h in before.history] == [(100, 0.5), (200, 0.6)]
    assert [(h["_step"], h["step"], h["accuracy"]) for h in after.history] == [(300, 300, 0.7)]
    assert (after.group, after.name, after.exit_code) == ("s", "a_00000", 0)
    assert after.config == {"learning_rate": 1e-3, "hftune.continues": "s-a_00000"}


def test_wandb_run_config_follows_the_exploits(tmp_path) -> None:
    cb = WandbTracking("s", tmp_path, KEYS, frozenset({"accuracy"}), project="p")
    feed([cb], trial_b(), PBT_RUN[:5])
    cb.on_trial_complete(2, [], trial_b())
    (run,) = offline_runs(tmp_path)
    assert run.config == {**BS32, "hftune.exploits": 1}
    assert [h["_step"] for h in run.history] == PBT_STEPS[:5]


# -- 5: failures --------------------------------------------------------------------------------

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
    cb = _Recording(fail_on="start")
    cb.on_trial_result(1, [], _trial(), {"accuracy": 0.5, "step": 1})
    cb.fail_on = None
    cb.on_trial_result(1, [], _trial(), {"accuracy": 0.6, "step": 2})
    assert [c[0] for c in cb.calls] == ["start", "open", "log"] and not cb._off


# -- 7, 8: run ids and SQLite paths -------------------------------------------------------------

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


# -- 10: credentials ----------------------------------------------------------------------------

@pytest.mark.parametrize("text, shown", [
    ("failed: https://alice:p@ss@host/api", "failed: https://***@host/api"),
    ("url=https://host/?token=abc&x=1", "url=https://host/?token=***&x=1"),
    ("https://h/?access_token=S3CRET", "https://h/?access_token=***"),
])
def test_messages_mask_every_credential(text, shown) -> None:
    assert redact_userinfo(text) == shown


CREDENTIAL_URIS = [
    ("https://host/api?access_token=SECRET", "a credential in its query ('access_token=')"),
    ("https://host/?api_key=1", "a credential in its query ('api_key=')"),
    ("https://ghp_SECRETTOKEN1234@host", "a token as its user name"),
    ("https://a1B2c3D4e5F6g7H8i9J0k1L2@host", "a token as its user name"),
    ("https://alice:S3cret@host", "a password"),
    ("https://alice@mlflow.example.com", None),  # a user name alone is no secret
    ("https://host/api?experiment=1", None),
]


def test_credentials_in_the_uri_are_refused(monkeypatch) -> None:
    """A token as the user name and credential-looking query parameters are refused like a
    password (the study folder keeps the config); a plain user name is not."""
    monkeypatch.setattr(tracking_mod, "check_mlflow_store", lambda cfg: None)  # no server here
    for uri, held in CREDENTIAL_URIS:
        assert has_password(uri) is (held is not None), uri
        cfg = study({"mlflow": {"tracking_uri": uri}})
        if held is None:
            check_tracking_available(cfg)
            continue
        with pytest.raises(ConfigError) as info:
            check_tracking_available(cfg)
        assert str(info.value).startswith(
            f"tracking.mlflow.tracking_uri holds {held}, and the study folder keeps its "
            f"config; give credentials in MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD")
