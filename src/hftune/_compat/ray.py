"""Ray and Ray Tune internals hftune relies on (ray >= 2.60, < 3), one hook per function.

Each hook names what it relies on and what breaks without it, and raises
:class:`~hftune.errors.LibraryInternalsError` (:func:`hftune._compat.internal_moved`) when the
internal is missing or has another shape. Public Ray API is used everywhere else.
"""

from __future__ import annotations

import collections
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hftune._compat import internal_moved

RAY = "ray"
# Ray Tune's built-in logger callbacks that live in optional integration modules.
INTEGRATION_CALLBACKS = ("WandbLoggerCallback", "MLflowLoggerCallback", "CometLoggerCallback",
                         "AimLoggerCallback")
# Ray's experiment snapshot files (TuneController.CKPT_FILE_TMPL).
SNAPSHOT_GLOB = "experiment_state-*.json"


# -- usage statistics: the callback count --------------------------------------------------

def count_callbacks_by_name(callbacks: Sequence[Any] | None) -> dict[str, int]:
    """Callback class name -> count, as Ray Tune's usage statistics count them: built-in
    callbacks by their class name, any other under ``CustomLoggerCallback`` or
    ``CustomCallback``; objects that are not Ray Tune callbacks are not counted."""
    from ray.tune import Callback
    from ray.tune.logger import LoggerCallback
    from ray.tune.utils.callback import DEFAULT_CALLBACK_CLASSES

    built_in = {*INTEGRATION_CALLBACKS, *(cls.__name__ for cls in DEFAULT_CALLBACK_CLASSES)}
    counts: dict[str, int] = collections.defaultdict(int)
    for callback in callbacks or []:
        if not isinstance(callback, Callback):
            continue
        name = type(callback).__name__
        if name in built_in:
            counts[name] += 1
        elif isinstance(callback, LoggerCallback):
            counts["CustomLoggerCallback"] += 1
        else:
            counts["CustomCallback"] += 1
    return counts


def count_callbacks_without_imports() -> None:
    """Make Ray Tune count an experiment's callbacks with :func:`count_callbacks_by_name`.

    Relies on ``ray.air._internal.usage._count_callbacks`` (a function of the callback list,
    since ray 2.2), which ``tag_callbacks`` calls at every experiment's start. Ray's own count
    imports its integration modules to know their class names, and with them ``mlflow``,
    ``wandb``, ``comet_ml`` and ``aim`` when installed: 3-4 s of each study's start on a 2-core
    machine (``benchmarks/RESULTS.md``). It compares class names only, so counting by name
    gives the same counts. Without the hook every study starts seconds later.
    """
    from ray.air._internal import usage

    if not callable(getattr(usage, "_count_callbacks", None)) or not callable(
            getattr(usage, "tag_callbacks", None)):
        raise internal_moved(RAY, "ray.air._internal.usage._count_callbacks",
                             "count callbacks without importing every tracking client")
    usage._count_callbacks = count_callbacks_by_name


# -- the trial actors' runtime environment -------------------------------------------------

def move_tune_actor_env() -> dict[str, str]:
    """Take Ray Tune's fixed per-actor environment variables off its trial actors; returns them,
    for the workers' own environment.

    Relies on ``ray.tune.execution.class_cache.DEFAULT_ENV_VARS`` (a dict, since ray 2.3):
    Ray Tune creates every trainable actor with a runtime environment holding it
    (``PL_DISABLE_FORK=1``), and Ray never gives an actor with a runtime environment a worker
    started without one, such as those it starts when the driver connects. With the variables
    in every worker's environment instead, the actors' runtime environment is empty and they
    get those workers. Without the hook each trial actor waits for a fresh worker process (5-8
    s more per study on the 4x1 benchmark grid).
    """
    from ray.tune.execution import class_cache

    defaults = getattr(class_cache, "DEFAULT_ENV_VARS", None)
    if not isinstance(defaults, dict):
        raise internal_moved(RAY, "ray.tune.execution.class_cache.DEFAULT_ENV_VARS (a dict)",
                             "start trial actors in the workers Ray starts up front")
    moved = {str(k): str(v) for k, v in defaults.items()}
    defaults.clear()
    return moved


# -- token authentication ------------------------------------------------------------------

def refresh_auth_mode() -> None:
    """Make this process's Ray read ``RAY_AUTH_MODE`` from the environment again.

    Relies on ``ray._raylet.Config.initialize`` (since ray 2.52), which Ray's own
    ``_enable_token_auth`` calls after setting the variable: Ray caches its config when it is
    first read, so a mode set later would be ignored and the cluster started without token
    authentication.
    """
    try:
        from ray._raylet import Config
    except ImportError:
        Config = None  # noqa: N806
    if Config is None or not callable(getattr(Config, "initialize", None)):
        raise internal_moved(RAY, "ray._raylet.Config.initialize",
                             "turn on token authentication for the Ray it starts")
    Config.initialize("")


def token_auth_enabled() -> bool:
    """Whether this process's Ray is in token-authentication mode.

    Relies on ``ray._private.authentication.authentication_utils.is_token_auth_enabled``
    (since ray 2.52); without it hftune cannot tell whether its Ray is protected.
    """
    try:
        from ray._private.authentication.authentication_utils import is_token_auth_enabled
    except ImportError:
        raise internal_moved(
            RAY, "ray._private.authentication.authentication_utils.is_token_auth_enabled",
            "check that its Ray cluster uses token authentication") from None
    return bool(is_token_auth_enabled())


def gcs_auth(address: str, timeout_s: float = 5.0) -> str:
    """How the Ray GCS at ``HOST:PORT`` treats a client that sends no token: ``"open"`` (it
    answers), ``"token"`` (it refuses: token authentication) or ``"unreachable"`` (no answer:
    nothing listens, a timeout, another service).

    One ``NodeInfoGcsService.GetClusterId`` call over a plain gRPC channel, without the
    authorization metadata Ray's clients add. Relies on ``ray.core.generated.gcs_service_pb2``
    and ``gcs_service_pb2_grpc`` (the GCS's protobuf stubs, since ray 2.5); without them hftune
    can neither warn about an open cluster nor tell a missing token from a missing cluster.
    """
    try:
        import grpc
        from ray.core.generated import gcs_service_pb2, gcs_service_pb2_grpc

        stub_class = gcs_service_pb2_grpc.NodeInfoGcsServiceStub
        request = gcs_service_pb2.GetClusterIdRequest()
    except (ImportError, AttributeError):
        raise internal_moved(RAY, "ray.core.generated.gcs_service_pb2_grpc."
                             "NodeInfoGcsServiceStub.GetClusterId",
                             "check whether a Ray cluster asks for a token") from None
    target = address.split("://", 1)[-1]
    with grpc.insecure_channel(target) as channel:
        try:
            stub_class(channel).GetClusterId(request, timeout=timeout_s)
        except grpc.RpcError as exc:
            code = exc.code() if callable(getattr(exc, "code", None)) else None
            return "token" if code == grpc.StatusCode.UNAUTHENTICATED else "unreachable"
    return "open"


def gcs_answers_without_token(address: str, timeout_s: float = 5.0) -> bool:
    """Whether the Ray GCS at ``HOST:PORT`` answers a client that sends no token
    (:func:`gcs_auth` is ``"open"``)."""
    return gcs_auth(address, timeout_s) == "open"


# -- restoring an experiment ---------------------------------------------------------------

def replace_restored_callbacks(tuner: Any, callbacks: list[Any]) -> Any:
    """Give a ``Tuner.restore``-d tuner ``callbacks`` in place of the ones it unpickled;
    returns its scheduler.

    ``Tuner.restore`` has no ``run_config`` argument: the restored tuner runs the callbacks
    pickled with the experiment, stale copies with no link to this process (the recorder must
    start from the records on disk now and report to this process's live display). Relies on
    ``Tuner._local_tuner`` (a ``TunerInternal`` with ``get_run_config()`` and ``_tune_config``,
    since ray 2.0; absent through Ray Client, ``ray://``, which is refused).
    """
    from hftune.errors import HftuneInputError

    internal = getattr(tuner, "_local_tuner", None)
    if internal is None and getattr(tuner, "_is_ray_client", False):
        raise HftuneInputError("--address: resume does not work through Ray Client (ray://); "
                               "use the cluster's HOST:PORT")
    if internal is None or not callable(getattr(internal, "get_run_config", None)) or not \
            hasattr(internal, "_tune_config"):
        raise internal_moved(RAY, "ray.tune.Tuner._local_tuner.get_run_config",
                             "give a restored study this process's callbacks")
    internal.get_run_config().callbacks = list(callbacks)
    return getattr(internal._tune_config, "scheduler", None)


# -- checkpoints a scheduler or a snapshot still needs -------------------------------------

def pbt_exploit_sources(scheduler: Any) -> set[str]:
    """Paths of the checkpoints PBT (or PB2) keeps as the exploit source of each trial.

    Relies on ``PopulationBasedTraining._trial_state`` (trial -> ``_PBTTrialState`` with
    ``last_checkpoint``: a ``Checkpoint``, a ``_FutureTrainingResult`` of a save still under
    way, or ``None``; since ray 2.7). Without it the checkpoint budget could delete the
    checkpoint a weak trial is about to clone. A future not resolved yet names no path (the
    save it waits for writes a new checkpoint, which the budget keeps as the newest).
    """
    from ray.tune.schedulers import PopulationBasedTraining

    if not isinstance(scheduler, PopulationBasedTraining):
        return set()
    states = getattr(scheduler, "_trial_state", None)
    if not isinstance(states, dict):
        raise internal_moved(RAY, "PopulationBasedTraining._trial_state",
                             "keep the checkpoints PBT may still clone")
    paths = set()
    for state in states.values():
        if not hasattr(state, "last_checkpoint"):
            raise internal_moved(RAY, "_PBTTrialState.last_checkpoint",
                                 "keep the checkpoints PBT may still clone")
        checkpoint = state.last_checkpoint
        if checkpoint is not None and not hasattr(checkpoint, "path"):
            resolve = getattr(checkpoint, "resolve", None)
            if not callable(resolve):
                raise internal_moved(RAY, "_FutureTrainingResult.resolve",
                                     "keep the checkpoints PBT may still clone")
            result = resolve(block=False)
            checkpoint = getattr(result, "checkpoint", None)
        path = getattr(checkpoint, "path", None)
        if path:
            paths.add(str(Path(path).resolve()))
    return paths


def driver_staging_dirs(trials: Iterable[Any]) -> set[Path]:
    """The driver-side staging folders of the trials' experiment, where Ray writes its
    snapshot before a background thread copies it into the experiment folder.

    Relies on ``Trial.storage.experiment_driver_staging_path`` (Ray Train's ``StorageContext``,
    since ray 2.7). Without it the budget would not see a snapshot still being copied.
    """
    dirs = set()
    for trial in trials:
        storage = getattr(trial, "storage", None)
        path = getattr(storage, "experiment_driver_staging_path", None)
        if storage is None or not isinstance(path, str):
            raise internal_moved(RAY, "Trial.storage.experiment_driver_staging_path",
                                 "keep the checkpoints Ray's experiment snapshot names")
        dirs.add(Path(path))
    return dirs


def newest_snapshot(folder: Path) -> Path | None:
    """The snapshot file ``Tuner.restore`` would read in ``folder`` (Ray's
    ``_find_newest_experiment_checkpoint``: the greatest ``experiment_state-<session>.json``
    name), or ``None``."""
    files = sorted(Path(folder).glob(SNAPSHOT_GLOB))
    return files[-1] if files else None


@dataclass(frozen=True)
class SnapshotTrial:
    """One trial as Ray's experiment snapshot holds it."""

    trial_id: str
    status: str  # Ray's: PENDING, RUNNING, PAUSED, TERMINATED, ERROR
    checkpoint: str | None  # the folder a restore continues it from (None: starts over)
    folder: Path | None = None  # the trial's own folder in the experiment
    registered: frozenset[str] = frozenset()  # its own checkpoints Ray knew of then

    @property
    def unfinished(self) -> bool:
        """Whether ``Tuner.restore(resume_unfinished=True)`` runs the trial again."""
        return self.status in ("PENDING", "RUNNING", "PAUSED")


def read_snapshot(snapshot: Path) -> list[SnapshotTrial]:
    """The trials of a Ray experiment snapshot file (:func:`newest_snapshot`).

    Relies on Ray's snapshot layout (ray 2.7+): ``{"trial_data": [[trial_json,
    run_metadata_json], ...]}``, the trial JSON holding ``trial_id``, ``status`` and
    ``relative_logdir``, the run metadata a ``_TrainingRunMetadata`` JSON whose
    ``checkpoint_manager`` (a cloudpickled ``_CheckpointManager``) has
    ``latest_checkpoint_result`` (what ``Trial.checkpoint`` returns after a restore, also a
    donor's checkpoint after a PBT exploit) and ``best_checkpoint_results`` (every checkpoint
    the trial reported, with ``CheckpointConfig(num_to_keep=None)``). The file is one Ray wrote
    for this study; it is unpickled as Ray's own restore does. Raises :class:`ValueError` for
    a file that does not parse (being written), ``LibraryInternalsError`` for another layout.
    """
    from ray.tune.trainable.metadata import _TrainingRunMetadata

    data = json.loads(Path(snapshot).read_text(encoding="utf-8"))
    entries = data.get("trial_data") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise internal_moved(RAY, "the experiment snapshot's trial_data",
                             "know which checkpoints a resume restores")
    out = []
    for entry in entries:
        try:
            trial_json, metadata_json = entry
            trial = json.loads(trial_json)
            manager = _TrainingRunMetadata.from_json_state(metadata_json).checkpoint_manager
            latest = manager.latest_checkpoint_result if manager is not None else None
            results = manager.best_checkpoint_results if manager is not None else []
            trial_id, status = str(trial["trial_id"]), str(trial["status"])
            logdir = trial.get("relative_logdir")
        except (TypeError, KeyError, AttributeError) as exc:
            raise internal_moved(RAY, f"the experiment snapshot's trial entries ({exc!r})",
                                 "know which checkpoints a resume restores") from None
        path = getattr(getattr(latest, "checkpoint", None), "path", None)
        registered = frozenset(str(r.checkpoint.path) for r in results
                               if getattr(r, "checkpoint", None) is not None)
        out.append(SnapshotTrial(trial_id, status, str(path) if path else None,
                                 Path(snapshot).parent / logdir if logdir else None,
                                 registered))
    return out


# hftune's ended record states as Ray's trial statuses
RAY_ENDED_STATUS = {"finished": "TERMINATED", "stopped": "TERMINATED", "errored": "ERROR"}


def mark_ended(snapshot: Path, states: dict[str, str]) -> list[str]:
    """Rewrite ``snapshot`` (atomically) so that each trial in ``states`` (trial id ->
    hftune's ended state: finished, stopped, errored) has the matching Ray status; returns
    the trials it changed.

    hftune's records are written at every event, Ray's snapshot at most every ~10 s: a trial
    that ended after the snapshot would be run again by ``Tuner.restore`` (and one that had
    not reported before the snapshot then fails Ray's metric check). Relies on the snapshot
    layout :func:`read_snapshot` reads: the trial JSON's ``status`` key, which
    ``Trial.from_json_state`` restores.
    """
    text = Path(snapshot).read_text(encoding="utf-8")
    data = json.loads(text)
    changed = []
    for entry in data.get("trial_data") or []:
        trial = json.loads(entry[0])
        wanted = RAY_ENDED_STATUS.get(states.get(str(trial.get("trial_id")), ""))
        if "status" not in trial:
            raise internal_moved(RAY, "the experiment snapshot's trial status",
                                 "keep ended trials from running again on a resume")
        if wanted is not None and trial["status"] != wanted:
            trial["status"] = wanted
            entry[0] = json.dumps(trial, indent=2)
            changed.append(str(trial["trial_id"]))
    if changed:
        scratch = Path(snapshot).with_suffix(".hftune-tmp")
        scratch.write_text(json.dumps(data), encoding="utf-8")
        os.replace(scratch, snapshot)
    return changed


def snapshot_referenced(folders: Iterable[Path]) -> set[str] | None:
    """The resolved checkpoint paths named by the newest snapshot in each of ``folders``
    (:func:`read_snapshot`); ``None`` when one of those files does not parse (it is
    being written or copied: nothing can be known for sure)."""
    paths: set[str] = set()
    for folder in folders:
        snapshot = newest_snapshot(folder)
        if snapshot is None:
            continue
        try:
            trials = read_snapshot(snapshot)
        except (OSError, ValueError):
            return None
        paths.update(os.path.realpath(t.checkpoint) for t in trials if t.checkpoint)
    return paths
