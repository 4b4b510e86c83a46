"""A trial's heavy imports, made when a local Ray worker process starts, before it has a trial.

A local Ray starts one idle Python worker per CPU as soon as the driver connects, and Ray Tune's
trial actors are created in those processes. Ray runs a *setup hook* in every worker process it
starts when the raylet's environment names one (:data:`RAY_HOOK_ENV`); hftune's hook,
:func:`preload_trial_imports`, imports torch, transformers' ``Trainer`` and hftune's training
modules. That import is the largest part of a cold trial (about 10 s of CPU per process on the
2-core build machine, ``benchmarks/RESULTS.md``); made in the hook, it overlaps the driver's own
set-up (Ray Tune's start, the study's records) instead of following it.

Only as many live processes as the study runs trials at once preload: each holds one of
``count`` slots in a folder (:data:`SLOTS_ENV` = ``"<folder>:<count>"``), so a 16-CPU machine
running one GPU trial does not import torch sixteen times. The hook never raises (Ray would end
the worker): a preload that fails only means the trial imports these modules itself.
"""

from __future__ import annotations

import fcntl
import importlib
import os
from pathlib import Path

# The environment variable in which Ray's default worker looks for a setup hook
# (ray._private.ray_constants.WORKER_PROCESS_SETUP_HOOK_ENV_VAR; read at worker start).
RAY_HOOK_ENV = "__RAY_WORKER_PROCESS_SETUP_HOOK_ENV_VAR"
SLOTS_ENV = "HFTUNE_PRELOAD_SLOTS"
HOOK = "hftune.training.preload.preload_trial_imports"

# What a trial imports (hftune.training.trainable.run_trial and Ray Tune's function trainable).
TRIAL_MODULES = (
    "torch",
    "transformers.trainer",
    "transformers.data.data_collator",
    "transformers.models.auto.modeling_auto",
    "ray.tune",
    "hftune.training.trainable",
    "hftune.training.batches",
    "hftune.training.callback",
    "hftune.training.checkpoint",
    "hftune.training.metrics",
    "hftune.training.model",
    "hftune.training.timing",
)

_preloaded = False
_held_slots: list[int] = []  # open descriptors of the slots this process holds


def claim_slot(spec: str | None) -> bool:
    """Take one free slot of ``spec`` (``"<folder>:<count>"``) for the life of this process;
    ``True`` when one was free or there is no limit (``spec`` empty).

    A slot is an exclusive ``flock`` on ``<folder>/<i>``: the system frees it when the process
    ends, so a worker started after another one ended (a later step of a study) can preload.
    """
    if not spec:
        return True
    folder, _, count = spec.rpartition(":")
    try:
        slots = int(count)
    except ValueError:
        return False
    for slot in range(slots):
        try:
            fd = os.open(Path(folder) / str(slot), os.O_CREAT | os.O_RDWR, 0o600)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        _held_slots.append(fd)
        return True
    return False


def _is_task_worker() -> bool:
    """``True`` in a Ray worker that runs tasks and actors (not Ray's spill/restore workers)."""
    try:
        import ray

        return ray._private.worker.global_worker.mode == ray.WORKER_MODE
    except Exception:  # noqa: BLE001 - outside Ray, or another Ray layout: not a task worker
        return False


def preload_trial_imports(modules: tuple[str, ...] = TRIAL_MODULES, *,
                          check_worker: bool = True) -> bool:
    """Ray's worker setup hook: import ``modules`` if this process claims a slot.

    Returns whether it imported them; never raises. ``check_worker=False`` skips the check that
    this is a Ray task worker (for tests).
    """
    global _preloaded
    try:
        if check_worker and not _is_task_worker():
            return False
        if not claim_slot(os.environ.get(SLOTS_ENV)):
            return False
        for name in modules:
            importlib.import_module(name)
    except Exception:  # noqa: BLE001 - the trial imports what is missing and reports the error
        return False
    _preloaded = True
    return True


def was_preloaded() -> bool:
    """Whether this process ran the preload (a trial reports it with its start-up timing)."""
    return _preloaded
