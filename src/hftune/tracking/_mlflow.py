"""MLflow: one experiment per study (named after it), one run per trial.

Written with ``mlflow.tracking.MlflowClient`` and not with Ray's ``MLflowLoggerCallback``, which
(Ray 2.60) logs every numeric result field as a metric (``pid``, ``timestamp``,
``time_total_s``, ...), steps by Ray's iteration count, keys its runs by Ray's in-memory trial
objects (a resumed study gets new runs) and leaves the artifact root of a SQLite store at
``./mlruns`` in the current directory.

The store is ``tracking.mlflow.tracking_uri``, else ``$MLFLOW_TRACKING_URI``, else
``sqlite:///<study folder>/mlflow.db`` (the path URL-quoted where it holds ``%``, ``?`` or
``#``) with artifacts under ``<study folder>/mlruns``: ``mlflow ui --backend-store-uri
sqlite:///<study folder>/mlflow.db`` opens it. The config's URI must hold no credential (the
study folder keeps the config, and Ray pickles the callbacks): a server's credentials go in
``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD`` (or ``MLFLOW_TRACKING_TOKEN``), or
the whole URI in ``$MLFLOW_TRACKING_URI``. Each run is named after the trial id and tagged
``hftune.study`` and ``hftune.trial_id``; a resumed study reopens its trials' runs instead of
adding new ones. Parameters are logged once, when a run is created (MLflow's parameters cannot
change); after the n-th PBT exploit of a trial, its run gets the tag
``hftune.config_after_exploit.<n>``: JSON with the new ``config``, ``from_trial``, ``epoch``
(of the checkpoint) and ``step`` (the tracking step from which it applies).

Every call to the server runs with short HTTP limits (:data:`STUDY_LIMITS`: one immediate retry,
10 s timeout), set in the environment only around hftune's own calls and restored after: MLflow's
defaults (7 retries with backoff, 120 s per attempt) would hold Ray's driver loop, and so every
trial, for minutes when the server goes away. A dead host costs at most about 20 s per call,
and three failed calls in a row turn the target off (:mod:`hftune.tracking._base`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from hftune.environ import environ_set
from hftune.tracking._base import TrackingCallback

_SAFE_ID = re.compile(r"[\w.-]+")  # fits in the search filter's quotes as it is
_STATUS = {"finished": "FINISHED", "failed": "FAILED", "killed": "KILLED"}
_MAX_TAG = 5000  # MLflow's limit on a tag value is 8000 (5000 in older servers)

# MLflow reads these at each request: set around hftune's calls only (see the module doc).
STUDY_LIMITS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
PROBE_LIMITS = {**STUDY_LIMITS, "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
                "MLFLOW_HTTP_REQUEST_TIMEOUT": "5"}
_LIMITS_LOCK = threading.RLock()


@contextlib.contextmanager
def http_limits(limits: dict[str, str]) -> Iterator[None]:
    """Set MLflow's HTTP retry and timeout variables to ``limits`` for the block, then put
    back what the environment had (one block at a time in this process)."""
    with _LIMITS_LOCK, environ_set(limits):
        yield


def sqlite_uri(path: Path) -> str:
    """``sqlite:///<absolute path>``, with ``%``, ``?`` and ``#`` URL-quoted (SQLAlchemy
    decodes them; unquoted, ``?`` and ``#`` end the path and ``%xx`` is decoded)."""
    posix = Path(path).resolve().as_posix()
    return "sqlite:///" + re.sub(r"[%?#]", lambda m: f"%{ord(m.group()):02X}", posix)


def default_tracking_uri(study_dir: Path) -> str:
    """``sqlite:///<absolute study folder>/mlflow.db`` (see :func:`sqlite_uri`)."""
    return sqlite_uri(Path(study_dir) / "mlflow.db")


def deleted_experiment_message(name: str, experiment_id: str, where: str) -> str:
    """The one-line refusal of an experiment that was deleted (in the UI: soft delete)."""
    return (f"tracking.mlflow: the experiment '{name}' in {where} is deleted; restore it "
            f"(mlflow experiments restore --experiment-id {experiment_id}) or set "
            f"tracking.mlflow.experiment_name to another name")


@contextlib.contextmanager
def _no_stray_folder(uri: str, real: Path) -> Iterator[None]:
    """MLflow creates the parent folder of a SQLite URI's path as it is written, not decoded
    (``rte%3Fv=2/``); remove that folder again when MLflow made it and left it empty."""
    literal = Path(uri.removeprefix("sqlite:///")).parent
    made: list[Path] = []
    if literal != real.parent:
        top = literal
        while not top.parent.exists() and top.parent != top:
            top = top.parent
        made = [] if top.exists() else [p for p in (literal, *literal.parents)
                                         if p == top or top in p.parents]
    try:
        yield
    finally:
        for folder in made:  # deepest first
            with contextlib.suppress(OSError):
                folder.rmdir()


class MlflowTracking(TrackingCallback):
    """Logs each trial to MLflow (see the module doc)."""

    target = "mlflow"
    _transient = ("_client", "_experiment_id")

    def __init__(self, study_name: str, study_dir: Path, search_keys: list[str],
                 metrics: frozenset[str], *, tracking_uri: str | None = None,
                 experiment_name: str | None = None,
                 logged_steps: dict[str, int] | None = None) -> None:
        super().__init__(study_name, study_dir, search_keys, metrics, logged_steps)
        # The config's URI (checked to hold no password); else $MLFLOW_TRACKING_URI, read when
        # the callback starts and never kept in its pickled state; else the study's own store.
        self.tracking_uri = tracking_uri
        self.experiment_name = experiment_name or study_name
        self._client: Any = None
        self._experiment_id: str | None = None

    def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        with http_limits(STUDY_LIMITS):
            return fn(*args, **kwargs)

    def _start(self) -> None:
        from mlflow.tracking import MlflowClient

        # Creating a SQLite store runs its migrations, which log each step at INFO.
        for name in ("alembic", "mlflow.store.db.utils"):
            logging.getLogger(name).setLevel(logging.WARNING)
        uri = self.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
        own = default_tracking_uri(self.study_dir)
        if not uri:
            self.study_dir.mkdir(parents=True, exist_ok=True)  # MLflow would make another
        with (_no_stray_folder(own, self.study_dir / "mlflow.db") if not uri
              else contextlib.nullcontext()):
            client = self._call(MlflowClient, tracking_uri=uri or own)
            experiment = self._call(client.get_experiment_by_name, self.experiment_name)
        if experiment is None:
            # Artifacts of the default store stay in the study folder (not ./mlruns).
            self._experiment_id = self._call(
                client.create_experiment, self.experiment_name,
                artifact_location=None if uri else (self.study_dir / "mlruns").as_uri())
        elif experiment.lifecycle_stage == "deleted":
            raise RuntimeError(deleted_experiment_message(
                self.experiment_name, experiment.experiment_id, "the MLflow store"))
        else:
            self._experiment_id = experiment.experiment_id
        self._client = client

    def _open(self, trial_id: str, params: dict[str, Any]) -> str:
        from mlflow.entities import Param

        client = self._client
        found = [run for run in self._call(
            client.search_runs, [self._experiment_id],
            filter_string=f"tags.`hftune.trial_id` = '{trial_id}'")
            if run.data.tags.get("hftune.study") == self.study_name
        ] if _SAFE_ID.fullmatch(trial_id) else []
        if found:
            run = found[0]
            self._call(client.update_run, run.info.run_id, status="RUNNING")
        else:
            run = self._call(client.create_run, self._experiment_id, run_name=trial_id,
                             tags={"hftune.study": self.study_name,
                                   "hftune.trial_id": trial_id})
        logged = run.data.params
        new = [Param(k, str(v)) for k, v in params.items() if k not in logged]
        if new:
            self._call(client.log_batch, run.info.run_id, params=new)
        return run.info.run_id

    def _log(self, run: str, metrics: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self._call(self._client.log_batch, run,
                   metrics=[Metric(k, v, now, step) for k, v in metrics.items()])

    def _log_exploit(self, run: str, number: int, info: dict[str, Any]) -> None:
        value = json.dumps(info, sort_keys=True, default=str)
        if len(value) > _MAX_TAG:
            value = value[:_MAX_TAG - 3] + "..."
        self._call(self._client.set_tag, run, f"hftune.config_after_exploit.{number}", value)

    def _close(self, run: str, status: str) -> None:
        self._call(self._client.set_terminated, run, status=_STATUS[status])

    def _abandon(self, run: str, status: str) -> None:
        with http_limits(PROBE_LIMITS):  # one attempt, 5 s
            self._client.set_terminated(run, status=_STATUS[status])
