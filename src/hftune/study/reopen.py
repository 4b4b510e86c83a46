"""Reopen a finished study: its config, and its data prepared exactly as the trials had it.

``hftune evaluate`` and ``hftune rerun`` need the same tokenized rows, label order and model the
study ran with. The config comes from ``study.yaml``; where the study found its data and model by
itself (``$HFTUNE_DATA_DIR``, a relative path, ``packaged:minilm``), ``study.json`` has the
resolved place (``data_source``, ``model``), which is used when it still exists.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from hftune.config.schema import StudyConfig
from hftune.errors import HftuneWarning, StudyFolderError, waiving_policy
from hftune.study.loading import validate_study
from hftune.study.prepare import PreparedStudy, prepare_study
from hftune.study.records import StudyRecord
from hftune.study.store import StudyStore
from hftune.trial_arguments import TRAINING_DEFAULTS


def study_config(store: StudyStore, study: StudyRecord | None = None) -> StudyConfig:
    """The study's resolved config, pointed at the data folder and model it really used.

    Settings that hftune now refuses for a new study but that an earlier version accepted
    (:class:`~hftune.errors.PolicyError`) do not stop it: each is an
    :class:`~hftune.errors.HftuneWarning`, and the study opens as it ran.
    """
    if not (store.root / "study.yaml").is_file():
        raise StudyFolderError(f"{store.root}: not a study folder (no study.yaml)")
    study = study or store.read_study()
    data: dict[str, Any] = store.read_config()
    data["output_dir"] = str(store.root)
    task = data.get("task") or {}
    task = {"name": task} if isinstance(task, str) else dict(task)  # ``task: rte`` by hand
    source = study.data_source
    if task.get("data_dir") is None and source and not source.startswith("hub:") \
            and Path(source).is_dir():
        task["data_dir"] = source
    data["task"] = task
    if study.model and Path(study.model).is_dir():
        data["model"] = study.model
    with waiving_policy() as waived:
        cfg = validate_study(data)
    for message in waived:
        warnings.warn(f"{store.root / 'study.yaml'}: {message} (a new study is refused this; "
                      f"this one already ran with it)", HftuneWarning, stacklevel=2)
    return cfg


def prepare_again(store: StudyStore, study: StudyRecord | None = None, *,
                  tracking: bool = True) -> PreparedStudy:
    """:func:`prepare_study` on the study's own config (same rows, same held-out split);
    ``tracking=False`` for commands that track nothing."""
    return prepare_study(study_config(store, study), tracking=tracking)


def eval_batch_size(cfg: StudyConfig) -> int:
    """The per-device eval batch size the trials used."""
    return int(cfg.training.get("per_device_eval_batch_size",
                                TRAINING_DEFAULTS["per_device_eval_batch_size"]))
