"""hftune._compat.ray: each Ray internal hftune hooks into does what hftune needs, and a hook
whose internal moved raises LibraryInternalsError naming ray, its version and the internal."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hftune._compat import ray as compat
from hftune.errors import HftuneInputError, LibraryInternalsError


def _names(error: pytest.ExceptionInfo, internal: str) -> None:
    text = str(error.value)
    assert text.startswith("ray ") and internal in text, text


# -- the callback count --------------------------------------------------------------------

def _callbacks() -> list[object]:
    from ray.tune import Callback
    from ray.tune.logger import CSVLoggerCallback, LoggerCallback

    from hftune.study.recorder import StudyRecorder

    class MyLogger(LoggerCallback):
        pass

    class MLflowLoggerCallback(Callback):  # a built-in's name: counted under it, as Ray does
        pass

    recorder = StudyRecorder.__new__(StudyRecorder)
    return [recorder, recorder, MyLogger(), CSVLoggerCallback(), MLflowLoggerCallback(),
            object()]


def test_counts_match_rays_own() -> None:
    from ray.air._internal.usage import _count_callbacks

    callbacks = _callbacks()
    ours = dict(compat.count_callbacks_by_name(callbacks))
    assert ours == dict(_count_callbacks(callbacks))
    assert ours == {"CustomCallback": 2, "CustomLoggerCallback": 1, "CSVLoggerCallback": 1,
                    "MLflowLoggerCallback": 1}
    assert compat.count_callbacks_by_name(None) == {}


def test_experiment_start_imports_no_tracking_client() -> None:
    """What Ray Tune calls at an experiment's start, in a fresh process: with hftune's count,
    ``mlflow`` and ``wandb`` (both installed here) stay unimported."""
    code = textwrap.dedent("""
        import sys
        from ray.air._internal import usage
        from ray.tune import Callback
        from hftune._compat.ray import count_callbacks_without_imports
        count_callbacks_without_imports()
        usage.tag_callbacks([Callback()])
        print(sorted(m for m in ("mlflow", "wandb") if m in sys.modules))
        """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_callback_count_hook_fails_loudly_when_ray_moves_it(monkeypatch) -> None:
    from ray.air._internal import usage

    monkeypatch.delattr(usage, "_count_callbacks")
    with pytest.raises(LibraryInternalsError) as error:
        compat.count_callbacks_without_imports()
    _names(error, "_count_callbacks")


# -- the trial actors' environment ---------------------------------------------------------

def test_tune_actor_variables_move_to_the_workers(monkeypatch) -> None:
    from ray.tune.execution import class_cache

    monkeypatch.setattr(class_cache, "DEFAULT_ENV_VARS", {"PL_DISABLE_FORK": "1"})
    for name in class_cache.ENV_VARS_TO_PROPAGATE:
        monkeypatch.delenv(name, raising=False)
    assert compat.move_tune_actor_env() == {"PL_DISABLE_FORK": "1"}

    class Trainable:
        pass

    remote = class_cache._ActorClassCache().get(Trainable)
    assert class_cache.DEFAULT_ENV_VARS == {}
    assert not (remote._default_options.get("runtime_env") or {}).get("env_vars")


def test_actor_env_hook_fails_loudly_when_ray_reshapes_it(monkeypatch) -> None:
    from ray.tune.execution import class_cache

    monkeypatch.setattr(class_cache, "DEFAULT_ENV_VARS", (("PL_DISABLE_FORK", "1"),))
    with pytest.raises(LibraryInternalsError) as error:
        compat.move_tune_actor_env()
    _names(error, "DEFAULT_ENV_VARS")


# -- token authentication ------------------------------------------------------------------

def test_auth_mode_refresh_fails_loudly_without_rays_config(monkeypatch) -> None:
    import ray._raylet

    monkeypatch.setattr(ray._raylet, "Config", object())
    with pytest.raises(LibraryInternalsError) as error:
        compat.refresh_auth_mode()
    _names(error, "Config.initialize")


def test_auth_check_fails_loudly_without_rays_helper(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "ray._private.authentication.authentication_utils", None)
    with pytest.raises(LibraryInternalsError) as error:
        compat.token_auth_enabled()
    _names(error, "is_token_auth_enabled")


def test_gcs_probe_fails_loudly_without_the_stubs(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "ray.core.generated.gcs_service_pb2_grpc", None)
    with pytest.raises(LibraryInternalsError) as error:
        compat.gcs_answers_without_token("127.0.0.1:1")
    _names(error, "NodeInfoGcsServiceStub")


def test_gcs_probe_counts_nothing_listening_as_no_answer() -> None:
    import socket

    with socket.socket() as sock:  # a free port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert compat.gcs_auth(f"127.0.0.1:{port}", timeout_s=2) == "unreachable"
    assert compat.gcs_answers_without_token(f"127.0.0.1:{port}", timeout_s=2) is False


def test_local_ray_refuses_a_client_without_the_token(ray_session) -> None:
    """The Ray hftune starts (the test session's) is in token mode, and its GCS refuses a
    plain gRPC client that sends no token."""
    ray = ray_session
    assert compat.token_auth_enabled()
    assert compat.gcs_auth(ray.get_runtime_context().gcs_address) == "token"


# -- restoring an experiment ---------------------------------------------------------------

def test_restored_tuner_gets_this_processes_callbacks() -> None:
    from ray import tune

    scheduler = tune.schedulers.FIFOScheduler()
    tuner = tune.Tuner(lambda config: None, tune_config=tune.TuneConfig(scheduler=scheduler),
                       run_config=tune.RunConfig(callbacks=[tune.Callback()]))
    ours = [tune.Callback(), tune.Callback()]
    assert compat.replace_restored_callbacks(tuner, ours) is scheduler
    assert tuner._local_tuner.get_run_config().callbacks == ours


def test_restored_callbacks_hook_fails_loudly_without_the_local_tuner() -> None:
    class Tuner:  # what a Tuner would look like if Ray renamed its internal tuner
        _is_ray_client = False

    with pytest.raises(LibraryInternalsError) as error:
        compat.replace_restored_callbacks(Tuner(), [])
    _names(error, "_local_tuner")


def test_resume_through_ray_client_is_refused_as_input() -> None:
    class Tuner:
        _is_ray_client = True

    with pytest.raises(HftuneInputError, match="ray://"):
        compat.replace_restored_callbacks(Tuner(), [])


# -- what a scheduler or a snapshot still needs --------------------------------------------

class _State:
    def __init__(self, last_checkpoint: object) -> None:
        self.last_checkpoint = last_checkpoint


class _Future:
    """A save still under way (Ray's _FutureTrainingResult): resolves, or not yet."""

    def __init__(self, result: object) -> None:
        self.result = result

    def resolve(self, block: bool = True) -> object:
        assert block is False  # the budget never waits for a save
        return self.result


def test_pbt_exploit_sources_follow_checkpoints_and_resolved_saves(tmp_path: Path) -> None:
    from ray import tune
    from ray.tune.schedulers import PopulationBasedTraining

    a, b = tmp_path / "a" / "checkpoint_000001", tmp_path / "b" / "checkpoint_000002"
    resolved = type("Result", (), {"checkpoint": tune.Checkpoint(str(b))})()
    pbt = PopulationBasedTraining(metric="m", mode="max", hyperparam_mutations={"x": [1, 2]})
    pbt._trial_state = {"t1": _State(tune.Checkpoint(str(a))), "t2": _State(_Future(resolved)),
                        "t3": _State(_Future(None)), "t4": _State(None)}
    assert compat.pbt_exploit_sources(pbt) == {str(a.resolve()), str(b.resolve())}
    assert compat.pbt_exploit_sources(None) == set()


def test_pbt_exploit_sources_fail_loudly_when_ray_reshapes_the_state() -> None:
    from ray.tune.schedulers import PopulationBasedTraining

    pbt = PopulationBasedTraining(metric="m", mode="max", hyperparam_mutations={"x": [1, 2]})
    pbt._trial_state = {"t1": object()}  # no last_checkpoint
    with pytest.raises(LibraryInternalsError) as error:
        compat.pbt_exploit_sources(pbt)
    _names(error, "last_checkpoint")
    del pbt._trial_state
    with pytest.raises(LibraryInternalsError) as error:
        compat.pbt_exploit_sources(pbt)
    _names(error, "_trial_state")


def test_staging_dirs_fail_loudly_without_the_trials_storage() -> None:
    with pytest.raises(LibraryInternalsError) as error:
        compat.driver_staging_dirs([object()])
    _names(error, "experiment_driver_staging_path")


def _write_snapshot(tmp_path: Path, checkpoints: dict[str, str | None]) -> Path:
    from hftune.testing.ray_snapshot import write_snapshot

    return write_snapshot(tmp_path / "exp", checkpoints)


def test_snapshot_names_each_trials_latest_checkpoint(tmp_path: Path) -> None:
    a = str(tmp_path / "exp" / "trial_a" / "checkpoint_000003")
    donor = str(tmp_path / "exp" / "trial_b" / "checkpoint_000001")  # an exploit's donor
    snapshot = _write_snapshot(tmp_path, {"a": a, "b": None, "c": donor})
    assert compat.newest_snapshot(snapshot.parent) == snapshot
    trials = {t.trial_id: t for t in compat.read_snapshot(snapshot)}
    assert {k: t.checkpoint for k, t in trials.items()} == {"a": a, "b": None, "c": donor}
    assert all(t.unfinished for t in trials.values())  # PENDING
    assert compat.snapshot_referenced([snapshot.parent]) == {a, donor}


def test_a_snapshot_being_written_names_nothing_for_sure(tmp_path: Path) -> None:
    snapshot = _write_snapshot(tmp_path, {"a": str(tmp_path / "c1")})
    snapshot.write_text(snapshot.read_text()[:100])  # cut short
    assert compat.snapshot_referenced([snapshot.parent]) is None
    assert compat.snapshot_referenced([tmp_path / "no-experiment-here"]) == set()


def test_mark_ended_makes_ray_skip_the_trial(tmp_path: Path) -> None:
    """The status Ray's Trial.__setstate__ restores (and Tuner.restore skips TERMINATED and,
    with resume_errored=False, ERROR trials) is the one hftune's records say."""
    snapshot = _write_snapshot(tmp_path, {"a": None, "b": None, "c": None})
    changed = compat.mark_ended(snapshot, {"a": "finished", "b": "errored"})
    assert sorted(changed) == ["a", "b"]
    entries = json.loads(snapshot.read_text())["trial_data"]
    statuses = {json.loads(e[0])["trial_id"]: json.loads(e[0])["status"] for e in entries}
    assert statuses == {"a": "TERMINATED", "b": "ERROR", "c": "PENDING"}
    assert compat.mark_ended(snapshot, {"a": "finished"}) == []  # already so: no rewrite


def test_snapshot_reader_fails_loudly_on_another_layout(tmp_path: Path) -> None:
    path = tmp_path / "experiment_state-x.json"
    path.write_text(json.dumps({"trials": []}))
    with pytest.raises(LibraryInternalsError) as error:
        compat.read_snapshot(path)
    _names(error, "trial_data")
    path.write_text(json.dumps({"trial_data": [[json.dumps({"id": "a"}), "{}"]]}))
    with pytest.raises(LibraryInternalsError):
        compat.read_snapshot(path)
