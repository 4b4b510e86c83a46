"""Tracking config and set-up: forms, errors, missing clients, what a target logs (no Ray run)."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

import hftune.tracking as tracking_mod
from hftune.config.loading import apply_overrides
from hftune.errors import ConfigError
from hftune.study.loading import validate_study
from hftune.testing.tracking import TRACKED_BASE as BASE
from hftune.testing.tracking import RecordingTarget, trial_a
from hftune.testing.tracking import tracked_study as study
from hftune.tracking import build_tracking_callbacks, check_tracking_available
from hftune.tracking._base import result_step, select_metrics


@pytest.fixture(autouse=True)
def _offline_wandb(monkeypatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")


def test_no_tracking_by_default() -> None:
    cfg = validate_study(BASE)
    assert cfg.tracking.targets == []
    assert build_tracking_callbacks(cfg, Path("runs/t"), ["learning_rate"]) == []


@pytest.mark.parametrize("form, targets", [
    (["mlflow", "tensorboard"], ["mlflow", "tensorboard"]),
    ("wandb", ["wandb"]),
    ({"wandb": None, "mlflow": True, "tensorboard": False}, ["mlflow", "wandb"]),
    ({"tensorboard": {}}, ["tensorboard"]),
    (None, []),
])
def test_list_or_mapping_forms(form, targets) -> None:
    assert study(form).tracking.targets == targets


def test_options_and_defaults() -> None:
    cfg = study({"mlflow": {"tracking_uri": "http://mlflow:5000"},
                 "wandb": {"project": "x", "mode": "offline", "tags": ["a"]}})
    assert cfg.tracking.mlflow.tracking_uri == "http://mlflow:5000"
    assert cfg.tracking.mlflow.experiment_name is None
    assert (cfg.tracking.wandb.project, cfg.tracking.wandb.mode) == ("x", "offline")
    assert study(["wandb"]).tracking.wandb.project == "hftune"


def test_dumped_config_reads_back_the_same() -> None:
    cfg = study({"mlflow": {"experiment_name": "e"}, "tensorboard": None})
    dumped = cfg.model_dump(mode="json")["tracking"]
    assert set(dumped) == {"mlflow", "tensorboard"}  # targets that are off are left out
    assert study(dumped).tracking == cfg.tracking


def test_set_overrides() -> None:
    data = apply_overrides({**BASE}, ["tracking=[mlflow, tensorboard]"])
    assert study(data["tracking"]).tracking.targets == ["mlflow", "tensorboard"]
    data = apply_overrides({**BASE, "tracking": {"mlflow": None}},
                           ["tracking.wandb.project=p", "tracking.mlflow.experiment_name=e"])
    cfg = study(data["tracking"])
    assert cfg.tracking.targets == ["mlflow", "wandb"]
    assert (cfg.tracking.wandb.project, cfg.tracking.mlflow.experiment_name) == ("p", "e")


@pytest.mark.parametrize("form, message", [
    (["mlfow"], "tracking: unknown target 'mlfow'; valid targets: mlflow, wandb, tensorboard"),
    ({"neptune": {}}, "unknown target 'neptune'; valid targets: mlflow, wandb, tensorboard"),
    ({"mlflow": {"uri": "x"}}, "unknown option 'mlflow.uri'; valid mlflow options: "
                               "tracking_uri, experiment_name"),
    ({"wandb": {"api_key": "x"}}, "unknown option 'wandb.api_key'"),
    ({"tensorboard": {"dir": "x"}}, "valid tensorboard options: none"),
    (3, "tracking: expected a list of targets"),
    ([1], "tracking: expected target names"),
    ({"wandb": {"mode": "live"}}, "tracking.wandb.mode: Input should be"),
])
def test_bad_tracking_is_one_line_error(form, message) -> None:
    with pytest.raises(ConfigError) as info:
        study(form)
    text = str(info.value)
    assert message in text and "\n" not in text


@pytest.mark.parametrize("target", ["mlflow", "wandb", "tensorboard"])
def test_missing_client_names_the_extra(target, monkeypatch) -> None:
    monkeypatch.setattr(tracking_mod, "module_available", lambda name: name != target)
    with pytest.raises(ConfigError) as info:
        check_tracking_available(study([target]))
    assert str(info.value) == (f"tracking: {target} is not installed; install it with: "
                               f"pip install 'hftune[{target}]'")
    others = [t for t in ("mlflow", "wandb", "tensorboard") if t != target]
    check_tracking_available(study(others))  # the others are installed: no error


def test_installed_clients_pass_the_check(monkeypatch) -> None:
    checked: list[str] = []
    real = tracking_mod.module_available

    def available(name: str) -> bool:
        checked.append(name)
        return real(name)

    monkeypatch.setattr(tracking_mod, "module_available", available)
    check_tracking_available(study(["mlflow", "wandb", "tensorboard"]))
    assert checked == [tracking_mod.REQUIRED_MODULES[t] for t in ("mlflow", "wandb",
                                                                  "tensorboard")]


@pytest.mark.parametrize("env_mode, cfg_mode, has_key, fails", [
    (None, None, False, True),          # online by default, no key
    ("online", None, False, True),
    ("offline", "online", False, True),  # the config's mode wins over $WANDB_MODE
    ("online", "offline", False, False),
    ("dryrun", None, False, False),
    ("disabled", None, False, False),
    (None, None, True, False),
])
def test_online_wandb_needs_an_api_key(env_mode, cfg_mode, has_key, fails, monkeypatch) -> None:
    if env_mode is None:
        monkeypatch.delenv("WANDB_MODE", raising=False)
    else:
        monkeypatch.setenv("WANDB_MODE", env_mode)
    monkeypatch.setattr(tracking_mod, "wandb_has_credentials", lambda: has_key)
    cfg = study({"wandb": {"mode": cfg_mode}})
    if fails:
        with pytest.raises(ConfigError, match=r"^tracking.wandb: no W&B API key; set "
                                              r"WANDB_API_KEY or run 'wandb login'"):
            check_tracking_available(cfg)
    else:
        check_tracking_available(cfg)


def test_wandb_credentials_come_from_the_environment(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc, no wandb settings
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("NETRC", raising=False)
    assert tracking_mod.wandb_has_credentials() is False
    monkeypatch.setenv("WANDB_API_KEY", "a" * 40)
    assert tracking_mod.wandb_has_credentials() is True
    assert list(tmp_path.rglob("*netrc*")) == []  # nothing written
    assert "wandb" not in capsys.readouterr().err


def test_missing_client_fails_run_before_any_study_folder(tmp_path, monkeypatch) -> None:
    from hftune.study.runner import run_study

    monkeypatch.setattr(tracking_mod, "module_available", lambda name: name != "mlflow")
    out = tmp_path / "study"
    with pytest.raises(ConfigError, match=r"pip install 'hftune\[mlflow\]'"):
        run_study(study(["mlflow"], output_dir=str(out)))
    assert not out.exists()


def test_commands_that_track_nothing_do_not_need_the_clients(tmp_path, monkeypatch,
                                                              shared_data, tiny_bert) -> None:
    """evaluate, rerun and replay reopen a study without tracking: a machine without the
    study's tracking client (or W&B key) can still run them."""
    from hftune.study.prepare import prepare_study

    monkeypatch.setattr(tracking_mod, "module_available", lambda name: name != "mlflow")
    cfg = validate_study({"name": "t", "model": str(tiny_bert), "max_length": 16,
                          "task": {"name": "rte", "data_dir": str(shared_data / "rte"),
                                   "max_train_samples": 32, "max_eval_samples": 16},
                          "search_space": {"learning_rate": [1e-3]}, "tracking": ["mlflow"]})
    with pytest.raises(ConfigError, match=r"pip install 'hftune\[mlflow\]'"):
        prepare_study(cfg)
    assert len(prepare_study(cfg, tracking=False).tokenized.splits["train"]) == 32


def test_callbacks_get_the_study_defaults(tmp_path) -> None:
    cfg = study({"mlflow": None, "wandb": {"project": "p"}, "tensorboard": None},
                output_dir=str(tmp_path / "s"))
    mlf, wb, tb = build_tracking_callbacks(cfg, cfg.study_dir, ["learning_rate"],
                                           metrics=("accuracy",))
    root = (tmp_path / "s").resolve()
    assert mlf.tracking_uri is None and mlf.experiment_name == "t"  # the store: at its start
    assert (wb.project, wb.study_name, wb.study_dir) == ("p", "t", root)
    assert tb.log_root == root / "tensorboard"
    assert "accuracy" in tb.metric_keys and "loss" in tb.metric_keys
    other = study({"mlflow": {"tracking_uri": "http://h:5000", "experiment_name": "e"}})
    (remote,) = build_tracking_callbacks(other, tmp_path, [])
    assert (remote.tracking_uri, remote.experiment_name) == ("http://h:5000", "e")


@pytest.mark.parametrize("from_env", [False, True])
def test_mlflow_store_is_the_environments_else_the_studys(from_env, tmp_path,
                                                          monkeypatch) -> None:
    from mlflow.tracking import MlflowClient

    from hftune.tracking._mlflow import MlflowTracking

    elsewhere = f"sqlite:///{(tmp_path / 'team.db').resolve()}"
    if from_env:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", elsewhere)
    else:
        monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    study_dir = tmp_path / "study"
    cb = MlflowTracking("s", study_dir, [], frozenset())
    assert elsewhere.encode() not in pickle.dumps(cb)  # the environment is read at start
    cb._start()
    uri = elsewhere if from_env else f"sqlite:///{study_dir.resolve()}/mlflow.db"
    experiment = MlflowClient(tracking_uri=uri).get_experiment_by_name("s")
    assert experiment is not None
    assert (study_dir / "mlflow.db").exists() is not from_env
    if not from_env:
        assert experiment.artifact_location == (study_dir.resolve() / "mlruns").as_uri()


@pytest.mark.parametrize("uri, refused", [
    ("https://alice:S3cret@mlflow.example.com", True),
    ("postgresql://bob:pw@db:5432/mlflow", True),
    ("https://alice@mlflow.example.com", False),  # a user name alone is no secret
    ("http://mlflow:5000", False),
    ("databricks", False),
])
def test_mlflow_uri_with_a_password_is_refused(uri, refused, monkeypatch) -> None:
    monkeypatch.setattr(tracking_mod, "module_available", lambda name: True)
    monkeypatch.setattr(tracking_mod, "check_mlflow_store", lambda cfg: None)  # no server here
    cfg = study({"mlflow": {"tracking_uri": uri}})
    if refused:
        with pytest.raises(ConfigError, match="holds a password.*MLFLOW_TRACKING_PASSWORD"):
            check_tracking_available(cfg)
    else:
        check_tracking_available(cfg)


def test_tracking_failure_message_hides_credentials(capsys) -> None:
    class Unreachable(RecordingTarget):
        def _start(self) -> None:
            raise ConnectionError("API request to https://alice:S3cret@host/api failed")

    cb = Unreachable()
    cb.on_trial_result(1, [], trial_a(), {"accuracy": 0.5, "step": 1})
    err = capsys.readouterr().err
    assert "S3cret" not in err and "https://***@host/api" in err


def test_pickled_callbacks_hold_no_secret_and_no_live_handle(tmp_path, monkeypatch) -> None:
    key = "sk-test-pickle-0123456789"
    monkeypatch.setenv("WANDB_API_KEY", key)
    cfg = study(["mlflow", "wandb", "tensorboard"])
    for cb in build_tracking_callbacks(cfg, tmp_path, ["learning_rate"]):
        cb._runs["x"] = object()  # a live run handle (not picklable)
        data = pickle.dumps(cb)
        assert key.encode() not in data
        assert pickle.loads(data)._runs == {}


def test_only_metric_keys_are_selected() -> None:
    result = {"accuracy": 0.5, "loss": 0.7, "epoch": 1.0, "step": 4, "learning_rate": 1e-5,
              "trained_all": True, "worker_pid": 12, "time_total_s": 3.0, "pid": 12,
              "training_iteration": 1, "trial_config": {"learning_rate": 1e-5},
              "f1": "n/a"}
    keys = frozenset({"accuracy", "f1"}) | tracking_mod.BASE_METRICS
    assert select_metrics(result, keys) == {"accuracy": 0.5, "loss": 0.7, "epoch": 1.0,
                                            "step": 4.0, "learning_rate": 1e-5}
    assert result_step(result) == 4
    assert result_step({"training_iteration": 3}) == 3


def test_events_open_log_and_close_one_run_per_trial() -> None:
    cb = RecordingTarget()
    cb.setup()
    trial = trial_a()
    for epoch in (1.0, 2.0):
        cb.on_trial_result(1, [], trial, {"accuracy": 0.5 * epoch, "epoch": epoch,
                                          "step": int(4 * epoch), "pid": 9})
    cb.on_trial_complete(2, [], trial)
    cb.on_trial_error(2, [], trial_a("never_reported"))
    cb.on_trial_result(3, [], trial_a("b_00001"), {"accuracy": 0.1, "step": 4})
    cb.on_experiment_end([])
    assert cb.calls == [
        ("start",),
        ("open", "a_00000", {"learning_rate": 1e-3}),  # search keys only (not `seed`)
        ("log", {"accuracy": 0.5, "epoch": 1.0, "step": 4.0}, 4),
        ("log", {"accuracy": 1.0, "epoch": 2.0, "step": 8.0}, 8),
        ("close", "finished"),
        ("open", "b_00001", {"learning_rate": 1e-3}),
        ("log", {"accuracy": 0.1, "step": 4.0}, 4),
        ("close", "killed"),  # still open when the experiment ended
    ]


@pytest.mark.parametrize("fail_on", ["start", "open", "log"])
def test_a_failing_target_warns_and_turns_off_after_three_in_a_row(fail_on, capsys) -> None:
    cb = RecordingTarget(fail_on=fail_on)
    cb.setup()
    for step in (1, 2, 3, 4):
        cb.on_trial_result(1, [], trial_a(), {"accuracy": 0.5, "step": step})  # never raises
    cb.on_trial_complete(2, [], trial_a())
    err = capsys.readouterr().err
    assert err.count(f"hftune: fake tracking: logging a result: RuntimeError: {fail_on} "
                     f"broke; skipped") == 2
    assert err.count("hftune: fake tracking stopped after 3 failures in a row") == 1
    assert "second line" not in err
    assert [call for call in cb.calls if call[0] == "log"] == []
    # a run that was open when the target turned off is closed (best effort), once
    assert [call for call in cb.calls if call[0] == "close"] == (
        [("close", "killed")] if fail_on == "log" else [])


def test_tensorboard_writes_only_the_trials_values(tmp_path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from hftune.tracking._tensorboard import TensorboardTracking

    cb = TensorboardTracking("s", tmp_path, ["learning_rate"], frozenset({"accuracy"}))
    trial = trial_a()
    for step, acc in ((4, 0.25), (8, 0.75)):
        cb.on_trial_result(1, [], trial, {"accuracy": acc, "step": step, "time_total_s": 1.0,
                                          "worker_pid": 3, "trained_all": False})
    cb.on_trial_complete(2, [], trial)
    events = EventAccumulator(str(tmp_path / "tensorboard" / "a_00000"))
    events.Reload()
    assert set(events.Tags()["scalars"]) == {"accuracy", "step"}
    assert [(s.step, s.value) for s in events.Scalars("accuracy")] == [(4, 0.25), (8, 0.75)]


def test_mlflow_resumed_study_reopens_the_trials_run(tmp_path) -> None:
    from mlflow.tracking import MlflowClient

    from hftune.tracking._mlflow import MlflowTracking

    def callback() -> MlflowTracking:
        return MlflowTracking("s", tmp_path, ["learning_rate"], frozenset({"accuracy"}))

    first = callback()
    first.on_trial_result(1, [], trial_a(), {"accuracy": 0.25, "step": 4, "pid": 1})
    first.on_experiment_end([])  # interrupted: the run ends as KILLED
    second = pickle.loads(pickle.dumps(first))  # as Ray restores it (hftune resume)
    second.on_trial_result(1, [], trial_a(), {"accuracy": 0.75, "step": 8})
    second.on_trial_complete(2, [], trial_a())

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path.resolve()}/mlflow.db")
    experiment = client.get_experiment_by_name("s")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED" and run.info.run_name == "a_00000"
    assert run.data.params == {"learning_rate": "0.001"}
    assert set(run.data.metrics) == {"accuracy", "step"}
    history = client.get_metric_history(run.info.run_id, "accuracy")
    assert sorted((m.step, m.value) for m in history) == [(4, 0.25), (8, 0.75)]
    assert list(tmp_path.iterdir()) == [tmp_path / "mlflow.db"]  # no ./mlruns elsewhere
