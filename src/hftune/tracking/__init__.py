"""Experiment tracking: the config's ``tracking:`` targets as Ray Tune callbacks.

``tracking: [mlflow, wandb, tensorboard]`` (or a mapping with per-target options, see
:class:`hftune.config.schema.TrackingConfig`) adds, next to the study folder, one run per trial
with its hyperparameters (and, after each PBT exploit, its new config) and per-evaluation
metrics, grouped per study:

* ``mlflow``: one experiment named after the study; store ``tracking_uri``, else
  ``$MLFLOW_TRACKING_URI``, else ``sqlite:///<study>/mlflow.db`` (artifacts under
  ``<study>/mlruns``); a URI with a credential is refused (credentials come from the
  environment);
* ``wandb``: ``group=<study name>``, ``project`` from the config (default ``hftune``); runs under
  ``<study>/wandb/``; ``WANDB_MODE=offline`` works without an account; the API key only from
  the environment;
* ``tensorboard``: one event folder per trial under ``<study>/tensorboard/``.

Each target is a driver-side Ray Tune ``Callback`` beside the study recorder (one small module
per target). Per trial, values are logged at a strictly increasing tracking step, each
evaluation once, also across PBT exploits, retries and resumes (:mod:`hftune.tracking._steps`;
each target keeps its count in ``<study>/tracking/<target>.json``). :func:`check_tracking_available`
runs with the other input checks, before any study folder exists (:mod:`hftune.tracking._checks`).
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
from collections.abc import Iterable
from pathlib import Path

from hftune.config.schema import StudyConfig
from hftune.errors import ConfigError
from hftune.tracking._base import BASE_METRICS, TrackingCallback
from hftune.tracking._checks import check_mlflow_store, check_wandb_settings, uri_credential

__all__ = ["BASE_METRICS", "REQUIRED_MODULES", "TrackingCallback", "build_tracking_callbacks",
           "check_tracking_available"]

# target → the module it cannot work without (the extra of the same name installs it)
REQUIRED_MODULES = {"mlflow": "mlflow", "wandb": "wandb", "tensorboard": "tensorboard"}


def module_available(name: str) -> bool:
    """Whether ``name`` can be imported (without importing it)."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def wandb_mode(cfg: StudyConfig) -> str:
    """The W&B mode a study's runs get: the config's, else ``$WANDB_MODE``, else ``online``."""
    mode = (cfg.tracking.wandb.mode if cfg.tracking.wandb else None) or os.environ.get(
        "WANDB_MODE") or "online"
    return {"run": "online", "dryrun": "offline"}.get(mode, mode)


def wandb_has_credentials() -> bool:
    """Whether wandb finds an API key: ``$WANDB_API_KEY``, else what ``wandb login`` stored.

    No network, no prompt, nothing written; wandb's process-wide state is torn down after
    asking it, so that the study's runs read the environment afresh.
    """
    if os.environ.get("WANDB_API_KEY"):
        return True
    import wandb

    try:
        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
            return bool(wandb.login(prompt=False, verify=False))
    finally:
        wandb.teardown()


def has_password(uri: str) -> bool:
    """Whether ``uri`` carries a credential: a password in its user info
    (``scheme://user:password@host``), a token as its user name, or a credential-looking
    query parameter (``token=``, ``access_token=``, ``api_key=``, ``password=``, ...)."""
    return uri_credential(uri) is not None


def check_tracking_available(cfg: StudyConfig) -> None:
    """Raise :class:`ConfigError` (one line) for the first tracking target that cannot work.

    In order: a target whose client is not installed names the extra to install; an MLflow
    ``tracking_uri`` with a credential says where credentials go instead; the MLflow store is
    checked (:func:`~hftune.tracking._checks.check_mlflow_store`: a refused ``file:`` store, a
    bad scheme, a server that cannot be reached within 5 s, a deleted experiment); the W&B
    settings are validated (project, entity, tags; no network); ``wandb`` in online mode
    without an API key says how to give one (or to run offline).
    """
    for target in cfg.tracking.targets:
        if not module_available(REQUIRED_MODULES[target]):
            raise ConfigError(f"tracking: {target} is not installed; install it with: "
                              f"pip install 'hftune[{target}]'")
    mlflow = cfg.tracking.mlflow
    held = uri_credential(mlflow.tracking_uri) if mlflow is not None and (
        mlflow.tracking_uri) else None
    if held is not None:
        raise ConfigError(
            f"tracking.mlflow.tracking_uri holds {held}, and the study folder keeps its "
            f"config; give credentials in MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD "
            f"(or MLFLOW_TRACKING_TOKEN), or leave tracking_uri unset and give the whole URI in "
            f"$MLFLOW_TRACKING_URI")
    if mlflow is not None:
        check_mlflow_store(cfg)
    if cfg.tracking.wandb is not None:
        check_wandb_settings(cfg)
    if cfg.tracking.wandb is not None and wandb_mode(cfg) == "online" and not (
            wandb_has_credentials()):
        raise ConfigError("tracking.wandb: no W&B API key; set WANDB_API_KEY or run 'wandb "
                          "login', or set tracking.wandb.mode: offline (or WANDB_MODE=offline)")


def build_tracking_callbacks(cfg: StudyConfig, study_dir: Path, search_keys: Iterable[str],
                             metrics: Iterable[str] = (),
                             logged_steps: dict[str, int] | None = None
                             ) -> list[TrackingCallback]:
    """One Ray Tune callback per enabled target, in the order mlflow, wandb, tensorboard.

    ``search_keys``: the hyperparameters to log (the trial config's search-space keys).
    ``metrics``: the task's metric names; they are logged with ``loss``, ``epoch``, ``step``,
    ``learning_rate`` and the other keys of :data:`BASE_METRICS`, and nothing else.
    ``logged_steps``: on a resume, each trial's highest step already logged (its record's
    ``last_step``); used only by a target without its own state file (a study folder written
    before hftune kept one: :mod:`hftune.tracking._steps`), so that epochs a restarted trial
    trains again are not logged twice.
    Nothing is imported or connected here: each callback starts at its first trial result.
    """
    keys, names = list(search_keys), frozenset(metrics)
    common = {"logged_steps": logged_steps}
    callbacks: list[TrackingCallback] = []
    tracking = cfg.tracking
    if tracking.mlflow is not None:
        from hftune.tracking._mlflow import MlflowTracking

        callbacks.append(MlflowTracking(cfg.name, study_dir, keys, names, **common,
                                        **tracking.mlflow.model_dump()))
    if tracking.wandb is not None:
        from hftune.tracking._wandb import WandbTracking

        callbacks.append(WandbTracking(cfg.name, study_dir, keys, names, **common,
                                       **tracking.wandb.model_dump()))
    if tracking.tensorboard is not None:
        from hftune.tracking._tensorboard import TensorboardTracking

        callbacks.append(TensorboardTracking(cfg.name, study_dir, keys, names, **common))
    return callbacks
