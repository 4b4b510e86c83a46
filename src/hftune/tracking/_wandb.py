"""Weights & Biases: one run per trial, ``group`` = the study's name, ``project`` from the config.

Written with the ``wandb`` client in the driver process (one ``wandb.init(reinit="create_new")``
per trial, wandb >= 0.19.10) and not with Ray's ``WandbLoggerCallback``, which (Ray 2.60) starts
two Ray actors per trial, logs every numeric result field (``time_total_s``, ``pid``, ...),
passes only ``WANDB_API_KEY`` to those actors (so ``WANDB_MODE=offline`` set after Ray started
never reaches them) and keeps its files in Ray's trial folders.

Runs are written under ``<study folder>/wandb/`` (offline: ``offline-run-*/``, to upload later
with ``wandb sync``). The run id is ``<study>-<trial id>`` (:func:`wandb_run_id`), W&B's step is
the trial's tracking step (:mod:`hftune.tracking._steps`; ``step`` and ``epoch`` are metrics).

A trial whose run is opened again (``hftune resume``, a retry after a failed trial):

* online, continues its run (``resume="allow"``), at steps past the ones it has;
* offline, gets a new run, ``<study>-<trial id>-r<N>`` (N = 1, 2, ...), with the same group and
  name, config ``hftune.continues`` = the first run's id, and tag ``continuation``: W&B ignores
  ``resume`` offline (wandb 0.31), and a second offline run with the first one's id would start
  its history again at step 0 and, once synced to the same id, replace the first part.
  ``wandb sync <study>/wandb/offline-run-*`` uploads each part as its own run of the group.

After the n-th PBT exploit of a trial its run's config is updated to the new values
(``allow_val_change``) with ``hftune.exploits`` = n.

The API key is never handled here: wandb reads ``WANDB_API_KEY`` (or ``wandb login``) itself,
and this object, which Ray pickles into the study folder, holds none. Console capture and
system metrics are off: the driver's console and machine are not a trial's.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any

from hftune.tracking._base import TrackingCallback

MAX_RUN_ID = 128  # W&B's limit on a run id


def _clean(text: str) -> str:
    return re.sub(r"[^\w.-]", "-", text)


def wandb_run_id(study_name: str, trial_id: str, part: int = 0) -> str:
    """A W&B run id for a trial: ``<study>-<trial id>`` (``-r<part>`` appended for a
    continuation), other characters than [\\w.-] → ``-``. Never over 128 characters: a long
    study part is cut and ends with a hash of the whole study name, so that the trial id (and
    the part) stay, and two studies that share a long prefix do not share ids."""
    tail = f"-{_clean(trial_id)}" + (f"-r{part}" if part else "")
    if len(tail) > MAX_RUN_ID // 2:
        tail = f"-{hashlib.sha1(trial_id.encode()).hexdigest()[:16]}" + (
            f"-r{part}" if part else "")
    study = _clean(study_name)
    room = MAX_RUN_ID - len(tail)
    if len(study) > room:
        digest = hashlib.sha1(study_name.encode()).hexdigest()[:8]
        study = f"{study[:room - len(digest) - 1]}-{digest}"
    return study + tail


def wandb_run_mode(mode: str | None) -> str:
    """The mode a run gets: ``mode``, else ``$WANDB_MODE``, else ``online`` (aliases mapped)."""
    value = mode or os.environ.get("WANDB_MODE") or "online"
    return {"run": "online", "dryrun": "offline"}.get(value, value)


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

        from hftune._compat.wandb import quiet_settings

        settings = quiet_settings(console="off", quiet=True, silent=True, disable_git=True,
                                  save_code=False, disable_job_creation=True)
        first_id = wandb_run_id(self.study_name, trial_id)
        opened = self._state.get(trial_id).opens  # runs this trial had before this one
        part = opened if wandb_run_mode(self.mode) == "offline" else 0
        config, tags = dict(params), list(self.tags)
        if part:
            config["hftune.continues"] = first_id
            tags.append("continuation")
        return wandb.init(
            project=self.project, entity=self.entity, group=self.study_name, name=trial_id,
            id=wandb_run_id(self.study_name, trial_id, part), dir=str(self.study_dir),
            config=config, tags=tags or None, mode=self.mode, reinit="create_new",
            resume="allow", settings=settings)

    def _log(self, run: Any, metrics: dict[str, float], step: int) -> None:
        run.log(metrics, step=step)

    def _log_exploit(self, run: Any, number: int, info: dict[str, Any]) -> None:
        run.config.update({**info["config"], "hftune.exploits": number}, allow_val_change=True)

    def _close(self, run: Any, status: str) -> None:
        run.finish(exit_code=0 if status == "finished" else 1)
