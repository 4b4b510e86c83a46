"""Weights & Biases: one run per trial, ``group`` = the study's name, ``project`` from the config.

Written with the ``wandb`` client in the driver process (one ``wandb.init(reinit="create_new")``
per trial, wandb >= 0.19.10) and not with Ray's ``WandbLoggerCallback``, which (Ray 2.60) starts
two Ray actors per trial, logs every numeric result field (``time_total_s``, ``pid``, ...),
passes only ``WANDB_API_KEY`` to those actors (so ``WANDB_MODE=offline`` set after Ray started
never reaches them) and keeps its files in Ray's trial folders.

Runs are written under ``<study folder>/wandb/`` (offline: ``offline-run-*/``, to upload later
with ``wandb sync``). The run id is ``<study>-<trial id>`` and a resumed study continues it
(``resume="allow"``). The API key is never handled here: wandb reads ``WANDB_API_KEY`` (or
``wandb login``) itself, and this object, which Ray pickles into the study folder, holds none.
Console capture and system metrics are off: the driver's console and machine are not a trial's.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from hftune.tracking._base import TrackingCallback


def wandb_run_id(study_name: str, trial_id: str) -> str:
    """A W&B run id for a trial: ``<study>-<trial id>``, other characters than [\\w.-] → ``-``."""
    return re.sub(r"[^\w.-]", "-", f"{study_name}-{trial_id}")[:128]


class WandbTracking(TrackingCallback):
    """Logs each trial as one W&B run (see the module doc)."""

    target = "wandb"

    def __init__(self, study_name: str, study_dir: Path, search_keys: list[str],
                 metrics: frozenset[str], *, project: str = "hftune",
                 entity: str | None = None, mode: str | None = None,
                 tags: list[str] | None = None,
                 logged_steps: dict[str, int] | None = None) -> None:
        super().__init__(study_name, study_dir, search_keys, metrics, logged_steps)
        self.project = project
        self.entity = entity
        self.mode = mode  # None: wandb's own default ($WANDB_MODE, else online)
        self.tags = list(tags or [])

    def _start(self) -> None:
        import wandb  # noqa: F401 - imported ahead (seconds), off Ray's event loop

    def _open(self, trial_id: str, params: dict[str, Any]) -> Any:
        import wandb

        settings = wandb.Settings(console="off", quiet=True, silent=True,
                                  x_disable_stats=True, disable_git=True, save_code=False,
                                  disable_job_creation=True)
        return wandb.init(
            project=self.project, entity=self.entity, group=self.study_name, name=trial_id,
            id=wandb_run_id(self.study_name, trial_id), dir=str(self.study_dir),
            config=params, tags=self.tags or None, mode=self.mode, reinit="create_new",
            resume="allow", settings=settings)

    def _log(self, run: Any, metrics: dict[str, float], step: int) -> None:
        # W&B's own step counts the reports; hftune's global `step` and `epoch` are metrics.
        run.log(metrics)

    def _close(self, run: Any, status: str) -> None:
        run.finish(exit_code=0 if status == "finished" else 1)
