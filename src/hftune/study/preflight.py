"""Checks ``hftune run`` makes before it prepares data or starts Ray: can the study folder be
written, and does one trial fit on the machine (or on a node of the cluster)? Also whether a
folder can be written at all (:func:`folder_problem`, for ``export -o`` and ``report -o`` too).

Each problem is a one-line :class:`~hftune.errors.HftuneInputError` naming the config key, so
that it is found in a second, not after tokenizing, and never as a study that waits forever.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hftune.errors import ConfigError, StudyFolderError

if TYPE_CHECKING:  # light to import: export and report use folder_problem
    from hftune.config.schema import StudyConfig
    from hftune.study.prepare import Resources


def check_output_dir(root: Path) -> None:
    """Raise :class:`StudyFolderError` naming ``output_dir`` unless the study folder ``root``
    can be made and written (:func:`folder_problem`)."""
    problem = folder_problem(Path(root))
    if problem is not None:
        raise StudyFolderError(f"output_dir: {root} {problem}; choose another output_dir")


def folder_problem(folder: Path) -> str | None:
    """Why ``folder`` cannot be made or written, as the end of a sentence that starts with the
    path ("is a file, not a folder"); ``None`` when it can: it is a folder or does not exist
    yet, no part of its path is a file, and a folder can be made in it (or, when it does not
    exist, in its nearest existing parent).

    Nothing is left behind: the write test makes a hidden empty folder and removes it (the
    permission bits alone say nothing for root, or on a read-only or virtual file system).
    """
    if folder.exists() and not folder.is_dir():
        return "is a file, not a folder"
    nearest = folder
    while not nearest.exists() and not nearest.is_symlink() and nearest != nearest.parent:
        nearest = nearest.parent
    if nearest.is_symlink() and not nearest.exists():
        return f"cannot be created ({nearest} is a broken symbolic link)"
    if not nearest.is_dir():
        return f"lies under {nearest}, which is a file, not a folder"
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".hftune-write-test-", dir=nearest))
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        if nearest == folder:
            return f"cannot be written ({reason})"
        return f"cannot be created ({reason} in {nearest})"
    return None


def machine_shape() -> tuple[float, int]:
    """``(CPUs, GPUs)`` a local Ray started by hftune gets: every CPU of this machine
    (:func:`hftune.study.ray_session.connect_ray`) and the CUDA devices this process sees."""
    from hftune.study.prepare import cuda_device_count

    return float(os.cpu_count() or 1), cuda_device_count()


def node_shapes(nodes: Sequence[Mapping[str, Any]]) -> list[tuple[float, float]]:
    """``(CPUs, GPUs)`` of each alive node in ``ray.nodes()``."""
    alive = [dict(n.get("Resources") or {}) for n in nodes if n.get("Alive", True)]
    return [(float(r.get("CPU", 0)), float(r.get("GPU", 0))) for r in alive]


def sets_trial_resources(cfg: StudyConfig) -> bool:
    """Whether the config sets ``resources.cpus_per_trial`` or a number of
    ``resources.gpus_per_trial`` (what :func:`check_trial_fits` checks)."""
    return (cfg.resources.cpus_per_trial is not None
            or isinstance(cfg.resources.gpus_per_trial, int | float))


def check_trial_fits(cfg: StudyConfig, resources: Resources,
                     nodes: Sequence[tuple[float, float]], where: str) -> None:
    """Raise :class:`ConfigError` when one trial's ``resources`` fit on none of ``nodes``
    (``(CPUs, GPUs)`` each; one trial runs on one node): Ray would wait for them forever.

    Only values the config sets are checked (``resources.cpus_per_trial``, a number for
    ``resources.gpus_per_trial``): those hftune derives are sized to the machine or the largest
    node. The message names the key and ``where``'s numbers (``where``: "this machine", "the
    Ray cluster at HOST:PORT").
    """
    if not sets_trial_resources(cfg):
        return
    set_cpus = cfg.resources.cpus_per_trial is not None
    set_gpus = isinstance(cfg.resources.gpus_per_trial, int | float)
    cpus, gpus = resources.cpus_per_trial, resources.gpus_per_trial
    if any(node_cpus >= cpus and node_gpus >= gpus for node_cpus, node_gpus in nodes):
        return
    most_cpus = max((c for c, _ in nodes), default=0.0)
    most_gpus = max((g for _, g in nodes), default=0.0)
    node = "" if len(nodes) <= 1 else "the largest node of "
    if set_cpus and cpus > most_cpus:
        raise ConfigError(f"resources.cpus_per_trial: {cpus:g} CPUs per trial, but {node}"
                          f"{where} has {most_cpus:g}; no trial could start (Ray would wait "
                          f"forever); set cpus_per_trial to at most {most_cpus:g}")
    if set_gpus and gpus > most_gpus:
        fix = ("set gpus_per_trial: 0" if not most_gpus
               else f"set gpus_per_trial to at most {most_gpus:g}")
        raise ConfigError(f"resources.gpus_per_trial: {gpus:g} GPUs per trial, but {node}"
                          f"{where} has {most_gpus:g}; no trial could start (Ray would wait "
                          f"forever); {fix}")
    raise ConfigError(f"resources.cpus_per_trial / resources.gpus_per_trial: no node of {where} "
                      f"has {cpus:g} CPUs and {gpus:g} GPUs together (a trial runs on one "
                      f"node); no trial could start; ask for fewer")
