"""Run a prepared study on Ray Tune's ``Tuner`` and keep the study folder up to date.

Where it runs is Ray's business: a local Ray started here by default, or the cluster at
``address``. The study folder is Ray's ``storage_path`` too, so on a cluster it must be on
storage every node reaches.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hftune.config.schema import StudyConfig
from hftune.environ import environ_set
from hftune.errors import StudyFolderError
from hftune.strategies.base import TunePlan
from hftune.study.prepare import PreparedStudy, prepare_study
from hftune.study.ray_session import check_address, connect_ray
from hftune.study.records import StudyRecord, TrialRecord, select_best
from hftune.study.store import StudyStore
from hftune.training.trainable import TrialSetup, ray_trainable

# Ray Tune settings for the length of a ``Tuner.fit`` (:func:`execute`), each a documented
# Ray Tune environment variable. The driver's environment is as it was afterwards.
TUNE_ENV = {
    # Ray Tune's own console table is replaced by hftune's progress display.
    "RAY_AIR_NEW_OUTPUT": "0",
    # Best-epoch checkpoints make Ray snapshot its experiment often; its warning about it is
    # noise.
    "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0",
    # No CSV/JSON/TensorBoard files per trial (result.json, progress.csv, events.out.*): the
    # study records hold every report (trials/<id>.json, reports.csv), and the tracking targets
    # log what the user asked for. About 3 KB per evaluation per trial (benchmarks/RESULTS.md).
    "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",
}

@dataclass
class StudyResult:
    """What ``hftune run`` prints: the study record and its trials."""

    study: StudyRecord
    trials: list[TrialRecord]
    root: Path
    # seconds of budget.time_budget_s the run left (None: no budget); a next step gets these
    budget_left_s: float | None = None


def run_study(cfg: StudyConfig, *, address: str | None = None, overwrite: bool = False,
              on_change: Callable[[dict[str, TrialRecord]], None] | None = None) -> StudyResult:
    """Prepare (all input checks first), then run the study to its end.

    Nothing is written to the study folder (not even its ``.lock``) before every check has
    passed: the folder (:func:`_check_folder`), ``--address``, the config and data
    (:func:`prepare_study`), the strategy's plan (built here, before Ray starts) and the
    per-trial resources against the machine or cluster (:func:`fit_to_cluster`).
    """
    store = StudyStore(cfg.study_dir)
    _check_folder(store, overwrite)
    check_address(address)
    prepared = prepare_study(cfg)
    plan = prepared.strategy.plan(cfg.budget.num_samples, prepared.resources.max_concurrent)
    prepared = fit_to_cluster(prepared, address)  # max_concurrent stays: the plan holds
    store.acquire_lock()
    try:
        if overwrite:
            _clear_study_files(store)
        return _run(prepared, store, on_change, plan)
    finally:
        store.release_lock()


def fit_to_cluster(prepared: PreparedStudy, address: str | None) -> PreparedStudy:
    """Connect to Ray (:func:`connect_ray`); on a cluster (``address``), size the per-trial
    resources the config leaves open to the cluster's largest node, not to this machine (which
    may have no GPU, or more CPUs than any node). ``max_concurrent`` is never changed.

    Per-trial resources the config sets that fit on no node are a :class:`ConfigError`
    (:func:`~hftune.study.preflight.check_trial_fits`): for a local Ray, checked against this
    machine before Ray starts; on a cluster (or a Ray this process already runs), against its
    alive nodes.
    """
    import ray

    from hftune.study.preflight import (
        check_trial_fits,
        machine_shape,
        node_shapes,
        sets_trial_resources,
    )

    cfg = prepared.config
    local = not address and not ray.is_initialized()
    if local:
        check_trial_fits(cfg, prepared.resources, [machine_shape()], "this machine")
    connect_ray(address)
    if address:
        from hftune.study.prepare import default_resources
        from hftune.study.ray_session import cluster_node_shape

        sized = cfg
        if cfg.resources.gpus_per_trial == "auto":  # measured in prepare_study: not probed again
            resources = cfg.resources.model_copy(
                update={"gpus_per_trial": prepared.resources.gpus_per_trial})
            sized = cfg.model_copy(update={"resources": resources})
        cpus, gpus = cluster_node_shape()
        prepared = dataclasses.replace(
            prepared, resources=default_resources(sized, total_cpus=cpus, total_gpus=gpus))
    if not local and sets_trial_resources(cfg):  # (ray.nodes() only when there is a check)
        where = f"the Ray cluster at {address}" if address else "the running Ray instance"
        check_trial_fits(cfg, prepared.resources, node_shapes(ray.nodes()), where)
    return prepared


def _check_folder(store: StudyStore, overwrite: bool) -> None:
    """Raise :class:`StudyFolderError` unless ``hftune run`` may write the study to
    ``store.root``: a folder that can be made and written
    (:func:`~hftune.study.preflight.check_output_dir`), no other process running it, and no
    study in it yet unless ``overwrite``."""
    from hftune.study.preflight import check_output_dir

    check_output_dir(store.root)
    if store.is_locked():
        raise StudyFolderError(f"{store.root}: another hftune process is running this study")
    if store.exists() and not overwrite:
        status = store.read_study().status
        status = "interrupted" if status == "running" else status
        article = "an" if status[:1] in "aeiou" else "a"
        raise StudyFolderError(
            f"{store.root}: holds {article} {status} study; use --overwrite to start again "
            f"(or 'hftune resume {store.root}' to continue it)")


def _clear_study_files(store: StudyStore) -> None:
    import shutil

    for name in ("study.json", "study.yaml", "trials.csv", "reports.csv", "reruns.json",
                 "reruns.csv", "lineage.jsonl", "replay.json", "mlflow.db"):
        (store.root / name).unlink(missing_ok=True)
    for folder in (store.trials_dir, *store.experiment_dirs(), store.root / "reruns",
                   store.root / "mlruns",
                   store.root / "tensorboard", store.root / "wandb", store.root / "tracking"):
        shutil.rmtree(folder, ignore_errors=True)


def checkpoint_policy(prepared: PreparedStudy) -> str:
    """``every`` for strategies that clone trials; with ``checkpoints.save_best``, the weights
    of each trial's scored evaluation: ``best`` (the default score) or ``last``
    (``strategy.score: last``); else ``none``."""
    if prepared.strategy.needs_checkpoints:
        return "every"
    if not prepared.config.checkpoints.save_best:
        return "none"
    return "last" if prepared.config.strategy.score == "last" else "best"


def ray_checkpoint_config(prepared: PreparedStudy) -> Any:
    """What Ray keeps of the checkpoints trials report (the checkpoint budget)."""
    from ray import tune

    policy = checkpoint_policy(prepared)
    if policy == "every":  # hftune.study.budget.CheckpointBudget deletes them
        return tune.CheckpointConfig(num_to_keep=None)
    if policy == "last":
        return tune.CheckpointConfig(num_to_keep=1)  # the newest
    return tune.CheckpointConfig(num_to_keep=1, checkpoint_score_attribute=prepared.metric,
                                 checkpoint_score_order=prepared.mode)


def trial_setup(prepared: PreparedStudy) -> TrialSetup:
    cfg, task, tok = prepared.config, prepared.task, prepared.tokenized
    return TrialSetup(
        model_path=prepared.model_path,
        tokenizer=prepared.tokenizer,
        label_names=tok.label_names,
        train_dataset=tok.splits[task.train_split].features,
        eval_dataset=tok.splits[task.validation_split].features,
        eval_references=tok.splits[task.validation_split].references,
        extra_eval={prefix: tok.splits[split] for prefix, split in
                    task.extra_evaluations.items()},
        task_type=task.type,
        metrics=task.metrics,
        training=dict(cfg.training),
        seed=cfg.seed,
        cpus_per_trial=prepared.resources.cpus_per_trial,
        gpus_per_trial=prepared.resources.gpus_per_trial,
        eval_every=cfg.evaluation.every,
        eval_steps=cfg.evaluation.eval_steps,
        metric=prepared.metric,
        mode=prepared.mode,
        checkpoints=checkpoint_policy(prepared),
        trust_remote_code=cfg.trust_remote_code,
        peft=dict(cfg.peft) if cfg.peft is not None else None,
    )


def study_trainable(prepared: PreparedStudy, fn: Callable[..., None] = ray_trainable,
                    setup: TrialSetup | None = None, **params: Any) -> Any:
    """``fn`` as Ray runs it: given ``setup`` (default: the study's) and ``params`` through the
    object store, with the study's per-trial resources."""
    from ray import tune

    res = prepared.resources
    return tune.with_resources(
        tune.with_parameters(fn, setup=setup or trial_setup(prepared), **params),
        {"cpu": res.cpus_per_trial, "gpu": res.gpus_per_trial})


def _run(prepared: PreparedStudy, store: StudyStore,
         on_change: Callable[[dict[str, TrialRecord]], None] | None,
         plan: TunePlan | None = None) -> StudyResult:
    """Write ``study.yaml`` and ``study.json`` (``running``) and run the study. ``plan``: the
    strategy's, built before anything was written (default: built here, before the writes)."""
    from ray import tune

    if plan is None:
        plan = prepared.strategy.plan(prepared.config.budget.num_samples,
                                      prepared.resources.max_concurrent)

    cfg = prepared.config
    res = prepared.resources
    study = StudyRecord(
        name=cfg.name, status="running", strategy=cfg.strategy.name, metric=prepared.metric,
        mode=prepared.mode, score=cfg.strategy.score, started_at=time.time(),
        tokenize_s=prepared.tokenized.seconds, label_names=list(prepared.tokenized.label_names),
        task_type=prepared.task.type.name, planned_trials=plan.num_samples,
        extra_evaluations=list(prepared.task.extra_evaluations),
        data_source=prepared.data.source, model=prepared.model_path,
        resources={"cpus_per_trial": res.cpus_per_trial, "gpus_per_trial": res.gpus_per_trial,
                   "max_concurrent": res.max_concurrent})
    store.write_config(cfg.model_dump(mode="json"))
    store.write_study(study)
    parts = tune_parts(prepared, store, on_change, plan=plan)
    tuner = tune.Tuner(parts.trainable, param_space=parts.param_space,
                       tune_config=parts.tune_config, run_config=parts.run_config)
    result = execute(tuner, prepared, store, study)
    return run_next_phase(prepared, store, on_change, result)


def _has_next_phase(prepared: PreparedStudy) -> bool:
    return getattr(prepared.strategy, "next_phase", None) is not None


def next_phase(prepared: PreparedStudy, store: StudyStore) -> PreparedStudy | None:
    """Step 2 of a two-step strategy (seeds-then-pbt), planned from the step-1 records in
    ``store``; None for one-step strategies or when no step-1 trial scored."""
    if not _has_next_phase(prepared):
        return None
    phase = prepared.strategy.phase
    strategy = prepared.strategy.next_phase(  # type: ignore[attr-defined]
        [t for t in store.read_trials() if t.phase == phase])
    return None if strategy is None else dataclasses.replace(prepared, strategy=strategy)


def phase_experiment(store: StudyStore, prepared: PreparedStudy) -> Path:
    """The Ray experiment folder of ``prepared``'s step: ``ray`` (step 1 or the only one),
    ``ray-<phase>`` for a later step."""
    if _has_next_phase(prepared):
        return store.ray_dir
    phase = prepared.strategy.phase
    return store.ray_dir if phase is None else store.root / f"{store.ray_dir.name}-{phase}"


def run_next_phase(prepared: PreparedStudy, store: StudyStore,
                   on_change: Callable[[dict[str, TrialRecord]], None] | None,
                   result: StudyResult) -> StudyResult:
    """After step 1 finished, run step 2 (if any) in the same study folder, as its own Ray
    experiment; returns ``result`` unchanged when there is no step 2 to run. With
    ``budget.time_budget_s``, step 2 gets what step 1 left of it (``budget_left_s``), and
    does not run when step 1 used it all."""
    from ray import tune

    if result.study.status != "finished" or not _has_next_phase(prepared):
        return result
    left = result.budget_left_s
    phase2 = next_phase(prepared, store) if left is None or left > 0 else None
    if phase2 is None:  # no step-1 trial scored, or no time left: the study ends with step 1
        if left is not None and left <= 0:
            result.study.message = (f"{result.study.message or 'budget.time_budget_s reached'}"
                                    f" in step 1; step 2 not run")
            finalize(store, result.study)
        return StudyResult(_holdout(prepared, store, result.study), store.read_trials(),
                           store.root)
    result.study.status = "running"  # until step 2 ends too
    parts = tune_parts(phase2, store, on_change, run_name=phase_experiment(store, phase2).name,
                       time_budget_s=left)
    result.study.planned_trials = (result.study.planned_trials or 0) \
        + parts.tune_config.num_samples
    store.write_study(result.study)
    tuner = tune.Tuner(parts.trainable, param_space=parts.param_space,
                       tune_config=parts.tune_config, run_config=parts.run_config)
    return execute(tuner, phase2, store, result.study, budget_s=left)


@dataclass
class TuneParts:
    """What a study's ``Tuner`` is built from: the same for a fresh run and a resume."""

    trainable: Any
    param_space: dict[str, Any]
    tune_config: Any
    run_config: Any


def tune_parts(prepared: PreparedStudy, store: StudyStore,
               on_change: Callable[[dict[str, TrialRecord]], None] | None = None,
               run_name: str | None = None, time_budget_s: float | None = None,
               plan: TunePlan | None = None) -> TuneParts:
    """The trainable (study setup, per-trial resources), Ray's configs and hftune's callbacks.

    ``time_budget_s`` replaces ``budget.time_budget_s`` (what a study's step 2 has left of
    it). ``plan``: the strategy's plan when already built (default: built here). (Before a
    resume, :mod:`hftune.study.resume` brings Ray's snapshot in line with the records.)
    """
    from ray import tune
    from ray.tune.search import Searcher

    from hftune.study.budget import CheckpointBudget
    from hftune.study.recorder import StudyRecorder

    cfg = prepared.config
    res = prepared.resources
    if plan is None:
        plan = prepared.strategy.plan(cfg.budget.num_samples, res.max_concurrent)
    recorder = StudyRecorder(store, list(dict.fromkeys([*prepared.space, *plan.param_space])),
                             on_change=on_change, phase=prepared.strategy.phase)
    budget = ([CheckpointBudget(cfg.checkpoints.keep, plan.scheduler, metric=prepared.metric,
                                mode=prepared.mode)]
              if checkpoint_policy(prepared) == "every" else [])
    setup = trial_setup(prepared)
    tune_config = tune.TuneConfig(
        metric=prepared.metric, mode=prepared.mode, search_alg=plan.searcher,
        scheduler=plan.scheduler, num_samples=plan.num_samples,
        # Ray ignores max_concurrent_trials for a ready-made grid/random generator; the
        # strategy passed it to that generator itself (Strategy.plan).
        max_concurrent_trials=res.max_concurrent if isinstance(plan.searcher, Searcher)
        else None,
        time_budget_s=cfg.budget.time_budget_s if time_budget_s is None else time_budget_s,
        reuse_actors=True)
    from hftune.tracking import build_tracking_callbacks

    logged = {t.trial_id: t.last_step for t in recorder.records.values()
              if t.last_step is not None}
    tracking = build_tracking_callbacks(cfg, store.root, recorder.search_keys,
                                        metrics=prepared.task.metrics, logged_steps=logged)
    run_config = tune.RunConfig(
        name=run_name or store.ray_dir.name, storage_path=str(store.root.resolve()),
        callbacks=[recorder, *budget, *tracking], verbose=0,
        checkpoint_config=ray_checkpoint_config(prepared),
        failure_config=tune.FailureConfig(max_failures=cfg.budget.max_failures))
    return TuneParts(study_trainable(prepared, setup=setup), plan.param_space, tune_config,
                     run_config)


def execute(tuner: Any, prepared: PreparedStudy, store: StudyStore,
            study: StudyRecord, budget_s: float | None = None) -> StudyResult:
    """Run ``tuner`` to its end and keep ``study.json`` true to how it ended.

    ``budget_s``: the seconds ``tuner`` was given (its ``TuneConfig.time_budget_s``; default
    ``budget.time_budget_s``). The result's ``budget_left_s`` is what this run left of it.

    For step 1 of a two-step strategy, ``finished`` means that step finished (the caller runs
    step 2 next, with the study ``running`` again) and the held-out evaluation waits for step 2.

    ``finished``: Ray ran every trial to an end, or ``budget.time_budget_s`` ended the run (the
    trials it stopped are recorded ``stopped``; :func:`stop_running_records`). ``interrupted``:
    Ctrl-C. Ray catches the first
    SIGINT itself, saves the experiment and returns normally with trials not ended; that is
    detected here, and both cases raise :class:`KeyboardInterrupt` after the study is marked
    and the way to resume is printed. ``failed``: anything else raised. ``wall_s`` adds this
    run's seconds to those of earlier runs (a resume); ``run_started_at`` is set while it runs
    (see :func:`hftune.study.resume.charge_killed_run`).
    """
    started = time.perf_counter()
    before = study.wall_s or 0.0
    run_start = study.run_started_at = time.time()
    store.write_study(study)
    budget_s = prepared.config.budget.time_budget_s if budget_s is None else budget_s
    try:
        try:
            with environ_set(TUNE_ENV):
                grid = tuner.fit()
        except KeyboardInterrupt:
            grid = None
        note = None
        if grid is not None and budget_s and time.perf_counter() - started >= budget_s:
            stopped = stop_running_records(store, since=run_start)
            note = (f"budget.time_budget_s ({budget_s:g} s) reached"
                    + (f": {stopped} running trial(s) stopped" if stopped else ""))
        if grid is None or _not_ended(grid, store, since=run_start):
            study.status = "interrupted"
            study.message = f"interrupted; continue with: hftune resume {store.root}"
            sys.stderr.write(study.message + "\n")
            raise KeyboardInterrupt(study.message)
        study.status = "finished"
        study.message = note
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        study.status = "failed"
        study.message = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        study.wall_s = before + time.perf_counter() - started
        study.run_started_at = None
        study.ended_at = time.time()
        finalize(store, study)
    if study.status == "finished" and not _has_next_phase(prepared):
        study = _holdout(prepared, store, study)
    left = None if not budget_s else budget_s - (time.perf_counter() - started)
    return StudyResult(study, store.read_trials(), store.root, budget_left_s=left)


def _holdout(prepared: PreparedStudy, store: StudyStore, study: StudyRecord) -> StudyRecord:
    """Held-out evaluation of the top trials, once the study's last step has finished."""
    if prepared.holdout is None:
        return study
    from hftune.study.holdout import evaluate_holdout

    return evaluate_holdout(store, prepared, strict=False)


def _of_this_run(trial: TrialRecord, since: float | None) -> bool:
    """Whether ``trial`` has an event at or after ``since`` (the start of this Ray run).

    A resumed run continues the trials of Ray's last snapshot; a record made after that
    snapshot (its trial was planned again under another id) has no event in the new run and
    is left to :func:`hftune.study.resume.set_aside_lost_records`.
    """
    last = trial.last_activity()
    return since is None or (last is not None and last >= since)


def stop_running_records(store: StudyStore, since: float | None = None) -> int:
    """Mark the records of this run (events since ``since``) still ``running`` as
    ``stopped``; returns how many.

    For a run that reached ``budget.time_budget_s``: Ray then stops the running trials without
    its end-of-trial events (and ends those not started), so their records would stay
    ``running`` and the study would look interrupted. The caller decides it was the budget:
    ``fit`` returned normally after at least that many seconds (a Ctrl-C before the budget
    ends returns sooner).
    """
    now = time.time()
    stopped = 0
    for trial in store.read_trials():
        if trial.state == "running" and _of_this_run(trial, since):
            trial.state = "stopped"
            trial.ended_at = now
            store.write_trial(trial)
            stopped += 1
    return stopped


def _not_ended(grid: Any, store: StudyStore, since: float | None = None) -> bool:
    """Whether ``fit`` returned with trials not ended (Ray caught a SIGINT).

    Ray stops the trials' actors after a SIGINT, so its result grid may call them terminated;
    the records of this run (events since ``since``), which only Ray's end-of-trial events
    end, are the reliable witness.
    """
    from hftune.study.records import ENDED_STATES

    if len(grid) > grid.num_terminated + grid.num_errors:
        return True
    return any(t.state not in ENDED_STATES and _of_this_run(t, since)
               for t in store.read_trials())


def finalize(store: StudyStore, study: StudyRecord) -> StudyRecord:
    """Pick the best trial from the records, write ``study.json`` and the CSV tables."""
    select_best(study, store.read_trials())
    study.disk_bytes = store.disk_bytes()
    store.write_study(study)
    store.write_tables(study)
    return study
