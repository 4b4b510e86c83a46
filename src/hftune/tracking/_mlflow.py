"""MLflow: one experiment per study (named after it), one run per trial.

Written with ``mlflow.tracking.MlflowClient`` and not with Ray's ``MLflowLoggerCallback``, which
(Ray 2.60) logs every numeric result field as a metric (``pid``, ``timestamp``,
``time_total_s``, ...), steps by Ray's iteration count, keys its runs by Ray's in-memory trial
objects (a resumed study gets new runs) and leaves the artifact root of a SQLite store at
``./mlruns`` in the current directory.

The store is ``tracking.mlflow.tracking_uri``, else ``$MLFLOW_TRACKING_URI``, else
``sqlite:///<study folder>/mlflow.db`` with artifacts under ``<study folder>/mlruns``:
``mlflow ui --backend-store-uri sqlite:///<study folder>/mlflow.db`` opens it. The config's
URI must hold no password (the study folder keeps the config, and Ray pickles the callbacks):
a server's credentials go in ``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD``, or
the whole URI in ``$MLFLOW_TRACKING_URI``. Each run is named after the trial id and tagged
``hftune.study`` and ``hftune.trial_id``; a resumed study reopens its trials' runs instead of
adding new ones. Parameters are logged once, when a run is created (later values of a PBT trial
are in its record's ``config_history``).
"""

from __future__ import annotations

import logging
import os
import re
import time
from pathlib import Path
from typing import Any

from hftune.tracking._base import TrackingCallback

_SAFE_ID = re.compile(r"[\w.-]+")  # fits in the search filter's quotes as it is
_STATUS = {"finished": "FINISHED", "failed": "FAILED", "killed": "KILLED"}


def default_tracking_uri(study_dir: Path) -> str:
    """``sqlite:///<absolute study folder>/mlflow.db``."""
    return f"sqlite:///{(Path(study_dir).resolve() / 'mlflow.db').as_posix()}"


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

    def _start(self) -> None:
        from mlflow.tracking import MlflowClient

        # Creating a SQLite store runs its migrations, which log each step at INFO.
        for name in ("alembic", "mlflow.store.db.utils"):
            logging.getLogger(name).setLevel(logging.WARNING)
        uri = self.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
        client = MlflowClient(tracking_uri=uri or default_tracking_uri(self.study_dir))
        experiment = client.get_experiment_by_name(self.experiment_name)
        if experiment is None:
            # Artifacts of the default store stay in the study folder (not ./mlruns).
            self._experiment_id = client.create_experiment(
                self.experiment_name,
                artifact_location=None if uri else (self.study_dir / "mlruns").as_uri())
        else:
            self._experiment_id = experiment.experiment_id
        self._client = client

    def _open(self, trial_id: str, params: dict[str, Any]) -> str:
        from mlflow.entities import Param

        client = self._client
        found = [run for run in client.search_runs(
            [self._experiment_id], filter_string=f"tags.`hftune.trial_id` = '{trial_id}'")
            if run.data.tags.get("hftune.study") == self.study_name
        ] if _SAFE_ID.fullmatch(trial_id) else []
        if found:
            run = found[0]
            client.update_run(run.info.run_id, status="RUNNING")
        else:
            run = client.create_run(self._experiment_id, run_name=trial_id,
                                    tags={"hftune.study": self.study_name,
                                          "hftune.trial_id": trial_id})
        logged = run.data.params
        new = [Param(k, str(v)) for k, v in params.items() if k not in logged]
        if new:
            client.log_batch(run.info.run_id, params=new)
        return run.info.run_id

    def _log(self, run: str, metrics: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self._client.log_batch(run, metrics=[Metric(k, v, now, step)
                                             for k, v in metrics.items()])

    def _close(self, run: str, status: str) -> None:
        self._client.set_terminated(run, status=_STATUS[status])
