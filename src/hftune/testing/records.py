"""Small study folders, trial records and checkpoint metadata written by hand, for tests.

Every builder goes through :class:`~hftune.study.store.StudyStore` (as ``hftune run`` writes
a folder); the numbers are the caller's, so a test can work out what a report or an export
must say. :func:`ray_trial` is the stand-in for a Ray ``Trial`` that callbacks receive.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from hftune.study.records import StudyRecord, TrialRecord
from hftune.study.store import StudyStore
from hftune.testing.fixtures import STARTED
from hftune.training.checkpoint import write_meta

# What a study record gets unless the caller says otherwise.
STUDY_DEFAULTS: dict[str, Any] = {
    "status": "finished", "strategy": "grid", "metric": "accuracy", "mode": "max",
    "started_at": STARTED, "resources": {"cpus_per_trial": 2, "gpus_per_trial": 0}}


def evaluation(epoch: int, value: Any, metric: str = "accuracy", **extra: Any) -> dict[str, Any]:
    """One report as a trial records it: epoch ``epoch`` (step ``10 × epoch``, ``60 s`` an
    epoch from :data:`STARTED`) with ``metric`` = ``value``; ``extra`` overrides or adds."""
    return {metric: value, "epoch": float(epoch), "step": 10 * epoch,
            "elapsed_s": 60.0 * epoch, "time": STARTED + 60.0 * epoch, **extra}


def trial_record(trial_id: str, values: Iterable[Any] = (), *, metric: str = "accuracy",
                 config: dict[str, Any] | None = None, state: str = "finished",
                 **fields: Any) -> TrialRecord:
    """A trial record that reported ``values`` at epochs 1, 2, ... (:func:`evaluation`);
    ``reports=`` gives its reports whole instead."""
    reports = fields.pop("reports", None)
    if reports is None:
        reports = [evaluation(e, v, metric) for e, v in enumerate(values, start=1)]
    fields.setdefault("started_at", STARTED)
    return TrialRecord(trial_id=trial_id, config=dict(config or {}), state=state,
                       reports=list(reports), **fields)


def trials_with(values: Sequence[Sequence[Any]], metric: str = "accuracy") -> list[TrialRecord]:
    """Trials ``t0``, ``t1``, ... with learning rates 1e-5, 2e-5, ... and these values."""
    return [trial_record(f"t{i}", vs, metric=metric, config={"learning_rate": 1e-5 * (i + 1)})
            for i, vs in enumerate(values)]


def study_folder(root: Path, trial_records: Iterable[TrialRecord] = (), *,
                 config: dict[str, Any] | None = None, **fields: Any) -> Path:
    """A study folder at ``root``: ``study.json`` (:data:`STUDY_DEFAULTS` updated with
    ``fields``; the name defaults to the folder's), the trial records and, given ``config``,
    ``study.yaml``. Returns the folder."""
    store = StudyStore(Path(root))
    store.write_study(StudyRecord(**{"name": Path(root).name, **STUDY_DEFAULTS, **fields}))
    if config is not None:
        store.write_config(config)
    for record in trial_records:
        store.write_trial(record)
    return store.root


def two_trial_study(root: Path, *, best: str = "b",
                    config: dict[str, Any] | None = None) -> StudyStore:
    """A finished two-trial study ``toy`` (trials a at 0.5, b at 0.75: b best), labels
    yes/no, a ``study.yaml``; no checkpoints."""
    records = [trial_record(t, [v], config={"learning_rate": 1e-3})
               for t, v in (("a", 0.5), ("b", 0.75))]
    return StudyStore(study_folder(
        root, records, name="toy", label_names=["yes", "no"], best_trial_id=best,
        best_value=0.75, config=config or {"name": "toy", "model": "m", "task": {"name": "rte"}}))


def checkpoint_meta(folder: Path, trial_id: str, epoch: float, value: float | None, *,
                    step: int | None = None, metric: str = "accuracy",
                    config: dict[str, Any] | None = None) -> Path:
    """Make ``folder`` a checkpoint of ``trial_id`` (its ``hftune.json`` only, no weights) at
    ``epoch`` and step ``step`` (default ``10 × epoch``), recorded with ``metric`` =
    ``value`` (none if ``None``) and a loss of 0.5. Returns ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True)
    step = int(epoch * 10) if step is None else step
    record: dict[str, Any] = {"epoch": epoch, "step": step, "loss": 0.5}
    if value is not None:
        record[metric] = value
    write_meta(folder, trial_id=trial_id, epoch=epoch, global_step=step,
               config={"learning_rate": 1e-3 * epoch} if config is None else config,
               record=record)
    return folder


def ray_trial(trial_id: str = "t_00000", **config: Any) -> SimpleNamespace:
    """What Ray Tune callbacks read of a ``Trial``: its id and config (default: a learning
    rate of 1e-3)."""
    return SimpleNamespace(trial_id=trial_id, config=config or {"learning_rate": 1e-3})


class KeptRun:
    """A ``report`` for :func:`~hftune.training.trainable.run_trial` that keeps what Ray keeps:
    every record (in :attr:`records`) and a copy of each checkpoint folder it is handed, as
    ``root/checkpoint_NNNNNN`` numbered by the record it came with (in :attr:`checkpoints`)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.records: list[dict[str, Any]] = []
        self.checkpoints: list[Path] = []

    def __call__(self, record: dict[str, Any], folder: Path | None) -> None:
        import shutil

        self.records.append(record)
        if folder is not None:
            dest = self.root / f"checkpoint_{len(self.records) - 1:06d}"
            shutil.copytree(folder, dest)
            self.checkpoints.append(dest)
