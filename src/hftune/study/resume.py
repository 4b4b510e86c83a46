"""Resume a study that did not end: ``hftune resume DIR`` after a kill, a crash or Ctrl-C.

The study's own config (``study.yaml``) is prepared again exactly as ``hftune run`` prepares it,
the trainable and callbacks are built by the same function (:func:`runner.tune_parts`), and
Ray Tune's ``Tuner.restore`` continues the experiment in ``DIR/ray``:

* trials that ended (finished, stopped, errored) are not run again — neither those Ray's last
  snapshot knows as ended, nor those whose hftune record ended after that snapshot (a hard kill
  can leave Ray's snapshot a few seconds behind; such a trial returns at once);
* interrupted trials continue from their last checkpoint, or start over when they have none.
  What "last checkpoint" is depends on the checkpoint policy: with ``checkpoints.save_best``
  (the default, no PBT) a trial saves only when its metric improves, so it continues from its
  best evaluation and trains the epochs after it again; with PBT/PB2 it saves at every
  evaluation and continues from the last one; with ``save_best: false`` it starts over;
* trials the strategy had not started yet run as planned; errored trials stay errored;
* every trial, restored or new, runs with this run's per-trial resources (a resume on another
  machine: Ray derives a restored trial's request again from the restoring trainable), and
  ``study.json`` ``resources`` says what they are (the earlier ones in ``resources_before``);
* a two-step study (``seeds-then-pbt``) continues the step it stopped in: step 1 and then step 2
  planned from step 1's records, or step 2 alone (its own experiment, ``DIR/ray-pbt``) when
  step 1 had finished; a step 2 that saved nothing starts again.

A record of a trial started after Ray's last snapshot, which Ray therefore never resumes (it
plans that slot again under a new trial id), is moved to ``trials/lost/`` once the resumed
study has finished, so that each planned trial is recorded exactly once.
"""

from __future__ import annotations

import os
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hftune._compat.ray import replace_restored_callbacks
from hftune.errors import HftuneWarning, StudyFolderError
from hftune.study.prepare import PreparedStudy
from hftune.study.ray_session import check_address
from hftune.study.records import ENDED_STATES, StudyRecord, TrialRecord, killed_run_seconds
from hftune.study.runner import (
    StudyResult,
    TuneParts,
    _run,
    execute,
    finalize,
    fit_to_cluster,
    next_phase,
    phase_experiment,
    run_next_phase,
    tune_parts,
)
from hftune.study.store import StudyStore
from hftune.training.checkpoint import META_FILE

LOST_DIR = "lost"


def resume_study(root: Path, *, address: str | None = None,
                 on_change: Callable[[dict[str, TrialRecord]], None] | None = None
                 ) -> StudyResult:
    """Finish the study in ``root``; returns like :func:`hftune.study.runner.run_study`.

    Raises :class:`StudyFolderError` when ``root`` is not a study, another process runs it, or
    it has already finished. All input checks run before anything in ``root`` changes.
    """
    from hftune.study.reopen import prepare_again

    store = StudyStore(Path(root))
    study = store.read_study()
    if store.is_locked():
        raise StudyFolderError(f"{store.root}: another hftune process is running this study")
    if study.status == "finished":
        raise StudyFolderError(f"{store.root}: the study has finished; nothing to resume "
                               f"('hftune run --overwrite' starts it again)")
    check_address(address)
    prepared = fit_to_cluster(prepare_again(store, study), address)
    store.acquire_lock()
    try:
        if not _restorable(store.ray_dir):
            # Stopped before Ray saved anything: no trial can continue, so start it again.
            _clear_run(store)
            return _run(prepared, store, on_change)
        charge_killed_run(store, study)
        study.status = "running"
        study.message = None
        store.write_study(study)
        step2 = next_phase(prepared, store)
        if step2 is not None and _restorable(phase_experiment(store, step2)):
            # a two-step study stopped in step 2: step 1 had finished, so continue step 2
            result = _restore(step2, store, study, on_change)
        else:
            if step2 is not None:  # step 2 had not started, or saved nothing yet
                _clear_phase(store, step2)
            result = _restore(prepared, store, study, on_change)
            result = run_next_phase(prepared, store, on_change, result)
        lost = set_aside_lost_records(store)
        if lost:
            result.study.message = (f"{len(lost)} trial record(s) started after Ray's last "
                                    f"snapshot were planned again; moved to trials/{LOST_DIR}/")
            finalize(store, result.study)
            result = StudyResult(result.study, store.read_trials(), store.root)
        return result
    finally:
        store.release_lock()


def charge_killed_run(store: StudyStore, study: StudyRecord) -> None:
    """Add to ``study.wall_s`` the seconds of a run that was killed before it could (``kill
    -9``, a crash of the machine): from its start to the last event its records hold.

    A run that ended normally, even by Ctrl-C, added its own seconds and cleared
    ``run_started_at``. The time between the killed run's last recorded event and the kill is
    not known, so this is a lower bound.
    """
    if study.run_started_at is None:
        return
    study.wall_s = (study.wall_s or 0.0) + killed_run_seconds(study, store.read_trials())
    study.run_started_at = None


def _restorable(experiment: Path) -> bool:
    from ray import tune

    return (experiment.is_dir() and any(experiment.glob("experiment_state-*.json"))
            and tune.Tuner.can_restore(str(experiment.resolve())))


def _restore(prepared: PreparedStudy, store: StudyStore, study: StudyRecord,
             on_change: Callable[[dict[str, TrialRecord]], None] | None) -> StudyResult:
    """Continue the Ray experiment of ``prepared``'s step to its end."""
    from ray import tune

    experiment = phase_experiment(store, prepared)
    reopen_killed_trials(experiment, store)
    drop_checkpoints_after_snapshot(experiment, store)
    lost = stand_in_for_lost_checkpoints(experiment, store)
    _mark_ended_in_snapshot(experiment, store)
    study.unrestorable = sorted({*study.unrestorable, *lost})
    parts = tune_parts(prepared, store, on_change, run_name=experiment.name)
    tuner = tune.Tuner.restore(str(experiment.resolve()), trainable=parts.trainable,
                               resume_unfinished=True, resume_errored=False,
                               restart_errored=False)
    _use_callbacks(tuner, parts)
    _record_resources(study, prepared)
    return execute(tuner, prepared, store, study)


def stand_in_for_lost_checkpoints(experiment: Path, store: StudyStore) -> list[str]:
    """Before Ray restores ``experiment``: each trial that will continue (its record has not
    ended) from a checkpoint that Ray's newest snapshot names but that is gone continues from
    its newest kept checkpoint at or before it instead, linked in the lost one's place (the
    trial's first report then says ``restore_fallback`` and ``restored_checkpoint``); one
    ``warning:`` line per trial says which. Returns the trials with no such checkpoint: they
    cannot be restored (Ray errors them), each named in a ``warning:`` line with the folder.
    """
    ended = {t.trial_id for t in store.read_trials() if t.state in ENDED_STATES}
    lost = []
    for trial in _snapshot(experiment):
        path = Path(trial.checkpoint) if trial.checkpoint else None
        if path is None or trial.trial_id in ended or not trial.unfinished or path.exists():
            continue
        if path.is_symlink():  # a stand-in whose target is gone too
            path.unlink()
        earlier = sorted(p for p in path.parent.glob("checkpoint_*")
                         if p.name < path.name and not p.is_symlink()
                         and (p / META_FILE).is_file())
        if not earlier:
            warnings.warn(f"trial {trial.trial_id} cannot continue: its checkpoint {path} (in "
                          f"Ray's last snapshot) is gone and no earlier one is kept",
                          HftuneWarning, stacklevel=2)
            lost.append(trial.trial_id)
            continue
        path.symlink_to(earlier[-1].name, target_is_directory=True)
        warnings.warn(f"trial {trial.trial_id}: its checkpoint {path.name} (in Ray's last "
                      f"snapshot) is gone; it continues from {earlier[-1].name}, the newest "
                      f"kept before it", HftuneWarning, stacklevel=2)
    return lost


def drop_checkpoints_after_snapshot(experiment: Path, store: StudyStore) -> list[Path]:
    """Delete the checkpoint folders of each trial Ray will continue that its newest snapshot
    does not know (written by the killed run after the snapshot); returns them.

    The continued run trains those evaluations again, and Ray names its new checkpoints by the
    counter the snapshot holds: left in place, a stale folder would be taken for the newest
    checkpoint of the trial (by the checkpoint budget) or be written into. Export and the
    held-out estimate never used them (their evaluations leave the records). Checkpoints any
    snapshot entry restores from are kept, whatever folder they lie in.
    """
    trials = _snapshot(experiment)
    ended = {t.trial_id for t in store.read_trials() if t.state in ENDED_STATES}
    named = {os.path.realpath(t.checkpoint) for t in trials if t.checkpoint}
    dropped = []
    for trial in trials:
        if not trial.unfinished or trial.trial_id in ended or trial.folder is None:
            continue
        known = {os.path.realpath(p) for p in trial.registered} | named
        for checkpoint in sorted(trial.folder.glob("checkpoint_*")):
            if os.path.realpath(checkpoint) not in known and not checkpoint.is_symlink():
                shutil.rmtree(checkpoint, ignore_errors=True)
                dropped.append(checkpoint)
    return dropped


def reopen_killed_trials(experiment: Path, store: StudyStore) -> list[str]:
    """Records ``errored`` whose trial Ray's newest snapshot still holds as unfinished are
    reopened (state ``running``): Ray runs them again. A hard kill of a study's process group
    kills the trial workers first, and the dying driver can still record their deaths as
    errors; a trial that really raised after the snapshot raises again (its earlier
    tracebacks stay in ``error``). Finished and stopped records still win over the snapshot.
    Returns the reopened trial ids."""
    unfinished = {t.trial_id for t in _snapshot(experiment) if t.unfinished}
    reopened = []
    for record in store.read_trials():
        if record.state == "errored" and record.trial_id in unfinished:
            record.state = "running"
            record.ended_at = None
            store.write_trial(record)
            reopened.append(record.trial_id)
    return reopened


def _mark_ended_in_snapshot(experiment: Path, store: StudyStore) -> None:
    """Trials whose records ended after Ray's newest snapshot (finished, stopped, errored) are
    marked ended in it too (:func:`hftune._compat.ray.mark_ended`): Ray runs them no more."""
    from hftune._compat.ray import mark_ended, newest_snapshot

    snapshot = newest_snapshot(experiment)
    if snapshot is not None:
        mark_ended(snapshot, {t.trial_id: t.state for t in store.read_trials()
                              if t.state in ENDED_STATES})


def _snapshot(experiment: Path) -> list[Any]:
    """The trials of Ray's newest snapshot of ``experiment`` (none without one)."""
    from hftune._compat.ray import newest_snapshot, read_snapshot

    snapshot = newest_snapshot(experiment)
    return [] if snapshot is None else read_snapshot(snapshot)


def _record_resources(study: StudyRecord, prepared: PreparedStudy) -> None:
    """Keep ``study.resources`` the per-trial resources of the latest run; a resume with
    other resources (another machine) keeps the earlier ones in ``resources_before``."""
    res = prepared.resources
    now = {"cpus_per_trial": res.cpus_per_trial, "gpus_per_trial": res.gpus_per_trial,
           "max_concurrent": res.max_concurrent}
    if study.resources and study.resources != now:
        study.resources_before = [*study.resources_before, study.resources]
    study.resources = now


def _clear_phase(store: StudyStore, prepared: PreparedStudy) -> None:
    """Forget a step that saved nothing: its Ray folder and its trial records."""
    phase = prepared.strategy.phase
    store.forget_trials({t.trial_id for t in store.read_trials() if t.phase == phase})
    shutil.rmtree(phase_experiment(store, prepared), ignore_errors=True)


def _use_callbacks(tuner: Any, parts: TuneParts) -> None:
    """Give the restored tuner this process's callbacks (Ray would unpickle stale copies).

    The recorder must start from the records on disk now and report to this process's live
    display; callbacks that follow the scheduler are pointed at the restored one.
    """
    callbacks = list(parts.run_config.callbacks or [])
    scheduler = replace_restored_callbacks(tuner, callbacks)
    for callback in callbacks:
        if hasattr(callback, "scheduler"):
            callback.scheduler = scheduler


def set_aside_lost_records(store: StudyStore) -> list[str]:
    """Move records that never ended out of ``trials/`` (after a resumed study finished)."""
    lost = [t.trial_id for t in store.read_trials() if t.state not in ENDED_STATES]
    if lost:
        folder = store.trials_dir / LOST_DIR
        folder.mkdir(exist_ok=True)
        for trial_id in lost:
            os.replace(store.trials_dir / f"{trial_id}.json", folder / f"{trial_id}.json")
    return lost


def _clear_run(store: StudyStore) -> None:
    """Forget a run that saved nothing: trial records, Ray folders, PBT lineage events."""
    (store.root / "lineage.jsonl").unlink(missing_ok=True)
    for folder in (store.trials_dir, *store.experiment_dirs()):
        shutil.rmtree(folder, ignore_errors=True)
