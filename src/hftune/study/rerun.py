"""``hftune rerun``: retrain the study's top configs with several seeds, to measure seed noise.

A new Ray Tune run over the fixed grid (top configs × seeds) through the study's own data and
resources (:func:`hftune.study.runner.study_trainable`); no scheduler stops a rerun early and
no checkpoint is kept. Each rerun's score is the study's score rule applied to its reports, so
it is comparable to the study's values.

A PBT trial's weights came from a schedule, not from its final config: after each exploit it
continued another trial's weights with new hyperparameters. A rerun of such a trial trains that
schedule from scratch (:func:`hftune.study.replay.pbt_schedule`, the same segments ``hftune
replay`` follows), so that its seed noise is the noise of what the study found; a trial that
never changed config is one segment, its config.

Seeds are fresh: the first ``n`` integers after the study's ``seed`` that no trial of the study
trained with (``seed + 1 .. seed + n`` unless the study searched or screened seeds), so that
the reruns do not include the seed whose lucky draw may have won selection.

Written to the study folder: ``reruns/trials/<id>.json`` (each rerun's full record),
``reruns/ray/`` (Ray's state), ``reruns.csv`` (one row per rerun), ``reruns.json`` (per config:
the seeds, values, mean, std, n) and ``study.json`` ``reruns`` (per config: mean, std, n; and
``seed_std``, the pooled standard deviation over configs).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import statistics
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import pandas as pd

from hftune.environ import environ_set
from hftune.errors import StudyFolderError
from hftune.study.holdout import select_top_k
from hftune.study.records import StudyRecord, TrialRecord
from hftune.study.replay import Segment, check_epoch_schedule, pbt_schedule, train_schedule
from hftune.study.store import StudyStore

RERUN_DIR = "reruns"
RERUN_KEYS = ["config_index", "seed"]


def fresh_seeds(base: int, trials: Sequence[TrialRecord], n: int) -> list[int]:
    """The first ``n`` seeds after ``base`` that none of ``trials`` trained with (a trial's
    ``seed`` is in its config, where the study searched or screened it, else ``base``)."""
    used = {base}
    for trial in trials:
        for config in (trial.initial_config, trial.config):
            if config.get("seed") is not None:
                used.add(int(config["seed"]))
    out, candidate = [], base + 1
    while len(out) < n:
        if candidate not in used:
            out.append(candidate)
        candidate += 1
    return out


def rerun_trainable(config: dict[str, Any], setup: Any, schedules: list[list[Segment]]) -> None:
    """Ray Tune trainable: ``schedules[config_index]`` from scratch with TrainingArguments
    ``seed`` (a one-segment schedule is one config trained as the study trained it)."""
    from ray import tune

    index, seed = int(config["config_index"]), int(config["seed"])
    ran_as = {"config_index": index, "seed": seed}

    def report(record: dict[str, Any]) -> None:
        # the rerun's own config, so that a later segment's restore reads as a resume
        tune.report({**record, "trial_config": ran_as})

    with tempfile.TemporaryDirectory(prefix="hftune-rerun-") as scratch:
        train_schedule(schedules[index], setup, report, Path(scratch),
                       trial_id=tune.get_context().get_trial_id(), seed=seed)


def summarize_reruns(runs: list[TrialRecord], configs: list[dict[str, Any]],
                     sources: list[TrialRecord], metric: str, mode: str,
                     rule: str = "best",
                     schedules: list[list[Segment]] | None = None) -> dict[str, Any]:
    """Per config: the seeds, each rerun's score, mean, std (sample, ``n - 1``; ``None`` for
    ``n < 2``) and n; plus ``seed_std``, the pooled std (root of the mean variance over configs
    with ``n >= 2``). Reruns without a score (errored early) are left out of n. A config whose
    rerun followed a schedule of several segments (PBT) also gets ``schedule``."""
    rows = []
    variances = []
    for index, config in enumerate(configs):
        values, seeds = [], []
        for run in sorted(runs, key=lambda r: int(r.config.get("seed", 0))):
            if int(run.config.get("config_index", -1)) != index:
                continue
            score = run.score(metric, mode, rule)
            if score is not None:
                values.append(score)
                seeds.append(int(run.config["seed"]))
        std = statistics.stdev(values) if len(values) >= 2 else None
        if std is not None:
            variances.append(std ** 2)
        source = sources[index]
        row = {"rank": index + 1, "trial_id": source.trial_id, "config": config,
               "study_score": source.score(metric, mode, rule), "seeds": seeds,
               "values": values, "n": len(values),
               "mean": statistics.fmean(values) if values else None, "std": std}
        if schedules is not None and len(schedules[index]) > 1:
            row["schedule"] = [asdict(seg) for seg in schedules[index]]
        rows.append(row)
    seed_std = math.sqrt(statistics.fmean(variances)) if variances else None
    return {"metric": metric, "mode": mode, "score": rule, "configs": rows, "seed_std": seed_std}


def rerun_study(root: Path, *, top: int = 3, seeds: int = 5, address: str | None = None,
                on_change: Callable[[dict[str, TrialRecord]], None] | None = None
                ) -> dict[str, Any]:
    """Retrain the ``top`` best configs with ``seeds`` fresh seeds each; returns the summary.

    Replaces an earlier rerun of the same study. Holds the study's lock while it runs. Raises
    :class:`StudyFolderError` when the study is running or has no scored trial, and
    :class:`~hftune.errors.HftuneInputError` at once when nothing answers at ``address``
    (:func:`~hftune.study.ray_session.check_address`), before the data is prepared.
    """
    from ray import tune

    from hftune.study.ray_session import check_address, connect_ray
    from hftune.study.recorder import StudyRecorder
    from hftune.study.reopen import prepare_again
    from hftune.study.runner import TUNE_ENV, study_trainable, trial_setup

    if top < 1 or seeds < 1:
        raise StudyFolderError("--top and --seeds must be at least 1")
    check_address(address)  # fail fast: ray.init retries an unreachable address for minutes
    store = StudyStore(Path(root))
    if store.is_locked():
        raise StudyFolderError(f"{store.root}: another hftune process is running this study")
    study = store.read_study()
    sources = select_top_k(store.read_trials(), study.metric, study.mode, study.score, top)
    if not sources:
        raise StudyFolderError(f"{store.root}: no trial reported {study.metric}; "
                               f"nothing to rerun")
    prepared = prepare_again(store, study, tracking=False)
    configs = [dict(t.config) for t in sources]
    trials, lineage = store.read_trials(), store.read_lineage()
    schedules = [pbt_schedule(trials, lineage, t.trial_id) for t in sources]
    if any(len(schedule) > 1 for schedule in schedules):
        check_epoch_schedule(store.root, prepared.config.evaluation)
    seed_values = fresh_seeds(prepared.config.seed, store.read_trials(), seeds)
    connect_ray(address)
    store.acquire_lock()
    try:
        runs_store = StudyStore(store.root / RERUN_DIR)
        shutil.rmtree(runs_store.root, ignore_errors=True)
        setup = replace(trial_setup(prepared), checkpoints="none")
        res = prepared.resources
        tuner = tune.Tuner(
            study_trainable(prepared, rerun_trainable, setup=setup, schedules=schedules),
            param_space={"config_index": tune.grid_search(list(range(len(configs)))),
                         "seed": tune.grid_search(seed_values)},
            tune_config=tune.TuneConfig(num_samples=1, max_concurrent_trials=res.max_concurrent,
                                        reuse_actors=True),
            run_config=tune.RunConfig(
                name="ray", storage_path=str(runs_store.root.resolve()), verbose=0,
                callbacks=[StudyRecorder(runs_store, RERUN_KEYS, on_change=on_change)],
                failure_config=tune.FailureConfig(
                    max_failures=prepared.config.budget.max_failures)))
        with environ_set(TUNE_ENV):
            tuner.fit()
        runs = runs_store.read_trials()
        summary = summarize_reruns(runs, configs, sources, study.metric, study.mode,
                                   study.score, schedules)
        summary["seed_values"] = seed_values
        _write(store, study, summary, runs)
    finally:
        store.release_lock()
    return summary


def _write(store: StudyStore, study: StudyRecord, summary: dict[str, Any],
           runs: list[TrialRecord]) -> None:
    tmp = store.root / ".reruns.json.tmp"
    tmp.write_text(json.dumps(summary, indent=1, default=str), encoding="utf-8")
    os.replace(tmp, store.root / "reruns.json")
    rows = []
    for run in runs:
        index = int(run.config["config_index"])
        source = summary["configs"][index]
        rows.append({"rerun_id": run.trial_id, "rank": index + 1,
                     "trial_id": source["trial_id"], "seed": int(run.config["seed"]),
                     **{f"config.{k}": v for k, v in source["config"].items()},
                     "state": run.state,
                     "value": run.score(study.metric, study.mode, study.score),
                     "compute_s": run.compute_s})
    pd.DataFrame(rows).to_csv(store.root / "reruns.csv", index=False)
    study.reruns = {"seeds": summary["seed_values"], "seed_std": summary["seed_std"],
                    "configs": [{k: c[k] for k in ("rank", "trial_id", "config", "study_score",
                                                   "mean", "std", "n")}
                                for c in summary["configs"]]}
    store.write_study(study)
