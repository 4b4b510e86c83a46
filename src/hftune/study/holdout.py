"""The held-out estimate: the top-k trials' best checkpoints scored on rows selection never saw.

Selection (the best trial, the top k) reads only the validation metric the trials reported on
the selection rows (:func:`select_top_k`); the held-out rows are evaluated afterwards, for those
k trials only, and their numbers are written next to the selection numbers without ever being
read back by selection: ``study.json`` gets ``best_holdout`` (the selected trial's held-out
metric) and ``holdout`` (how it was measured), and each evaluated trial's record gets
``holdout`` plus ``holdout_<metric>`` keys in the report its checkpoint was taken at.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hftune.errors import StudyFolderError
from hftune.study.checkpoints import (
    CheckpointMeta,
    evaluate_model,
    recorded_checkpoint,
    scan_checkpoints,
    scored_evaluation_kept,
)
from hftune.study.prepare import PreparedStudy
from hftune.study.records import StudyRecord, TrialRecord, select_best
from hftune.study.store import StudyStore

HOLDOUT_PREFIX = "holdout_"


def select_top_k(trials: list[TrialRecord], metric: str, mode: str, rule: str = "best",
                 k: int = 1) -> list[TrialRecord]:
    """The ``k`` best trials by their selection score, best first.

    The score is :meth:`TrialRecord.score` of ``metric`` (the validation metric on the selection
    rows); nothing else in a record is read, so held-out values cannot change the choice. Ties
    keep trial order, so the first one is the trial :func:`records.best_trial` picks.
    """
    scored = []
    for t in trials:
        s = t.score(metric, mode, rule)
        if s is not None:
            scored.append((s, t))
    scored.sort(key=lambda st: st[0], reverse=(mode == "max"))
    return [t for _, t in scored[:k]]


@dataclass
class HoldoutEvaluation:
    """One trial's checkpoint scored on the held-out rows. ``scored``: the checkpoint is that
    of the evaluation that gives the trial its score (``False``: that one was gone, and this
    is the trial's next kept one; see :func:`~hftune.study.checkpoints.scored_evaluation_kept`).
    """

    trial_id: str
    checkpoint: CheckpointMeta
    metrics: dict[str, float]
    scored: bool = True


def record_holdout(study: StudyRecord, trials: list[TrialRecord],
                   results: list[HoldoutEvaluation], *, source: str, rows: int, top_k: int,
                   missing: list[str] | None = None) -> list[TrialRecord]:
    """Write held-out results into the records (in memory); returns the trial records changed.

    Never touches the selection: ``best_trial_id``, ``best_value`` and every reported validation
    value stay as they are. ``best_holdout`` is the held-out metric of ``study.best_trial_id``
    (``None`` when that trial was not evaluated). Results of an earlier evaluation are removed
    first, from every trial: a record holds the latest evaluation's values only (a trial not
    evaluated this time, e.g. one whose checkpoint is gone, has none).
    """
    by_id = {t.trial_id: t for t in trials}
    changed = {t.trial_id: t for t in trials if _forget_holdout(t)}
    for res in results:
        trial = by_id[res.trial_id]
        ck = res.checkpoint
        trial.holdout = {"metrics": dict(res.metrics), "epoch": ck.epoch, "step": ck.global_step,
                         "checkpoint": ck.path.name, "rows": rows, "source": source,
                         "scored_checkpoint": res.scored}
        for report in trial.reports:
            if report.get("step") == ck.global_step and report.get("epoch") == ck.epoch:
                report.update({f"{HOLDOUT_PREFIX}{k}": v for k, v in res.metrics.items()})
        changed[trial.trial_id] = trial
    values = {r.trial_id: r.metrics.get(study.metric) for r in results}
    study.best_holdout = values.get(study.best_trial_id) if study.best_trial_id else None
    study.holdout = {"source": source, "rows": rows, "top_k": top_k, "metric": study.metric,
                     "trials": values, "missing_checkpoints": list(missing or []),
                     "not_scored_checkpoints": [r.trial_id for r in results if not r.scored]}
    return list(changed.values())


def _forget_holdout(trial: TrialRecord) -> bool:
    """Remove an earlier held-out evaluation from ``trial``; whether there was one."""
    had = trial.holdout is not None
    trial.holdout = None
    for report in trial.reports:
        for key in [k for k in report if k.startswith(HOLDOUT_PREFIX)]:
            del report[key]
            had = True
    return had


def evaluate_holdout(store: StudyStore, prepared: PreparedStudy | None = None,
                     top_k: int | None = None, *, strict: bool = True) -> StudyRecord:
    """Score the top-k trials' best checkpoints on the held-out rows and record the results.

    The top k are selected from the trial records (:func:`~hftune.study.records.select_best`
    also brings ``study.json``'s best up to date). A trial whose scored evaluation kept no
    checkpoint is scored at its next kept one, and its record says so
    (``holdout.scored_checkpoint: false``); one that kept none is listed as missing.

    ``prepared``: the study as prepared for the run (``hftune run`` passes its own); otherwise
    the study is prepared again from its folder, which yields the same rows. ``top_k`` defaults
    to ``evaluation.holdout_top_k``. Raises :class:`StudyFolderError` when the study has no
    held-out part, or (``strict``) when none of the top trials kept a checkpoint; not strict,
    that is only noted in ``study.json`` (``hftune run`` must not fail after its trials ran).
    Returns the updated study record.
    """
    from hftune.study.prepare import prepare_study
    from hftune.study.reopen import eval_batch_size, study_config

    study = store.read_study()
    if prepared is None:
        cfg = study_config(store, study)
        if cfg.evaluation.holdout is None and not cfg.task.test_split:
            raise StudyFolderError(
                f"{store.root}: the study has no held-out part; it needs evaluation.holdout "
                f"(a share of the validation data) or task.test_split in its config")
        prepared = prepare_study(cfg, tracking=False)
    if prepared.holdout is None:
        raise StudyFolderError(
            f"{store.root}: the study has no held-out part; it needs evaluation.holdout "
            f"(a share of the validation data) or task.test_split in its config")
    k = top_k or prepared.config.evaluation.holdout_top_k
    trials = store.read_trials()
    select_best(study, trials)  # study.json's best can be stale (a run that was killed)
    top = select_top_k(trials, study.metric, study.mode, study.score, k)
    checkpoints = scan_checkpoints(*store.experiment_dirs())
    results, missing = [], []
    metrics = tuple(prepared.task.metrics)
    for trial in top:
        ck = recorded_checkpoint(checkpoints, trial, study.metric, study.mode, study.score)
        if ck is None:
            missing.append(trial.trial_id)
            continue
        values = evaluate_model(ck.path, prepared.holdout, tokenizer=prepared.tokenizer,
                                metrics=metrics, task_type=prepared.task.type,
                                label_names=prepared.tokenized.label_names,
                                batch_size=eval_batch_size(prepared.config),
                                trust_remote_code=prepared.config.trust_remote_code)
        scored = scored_evaluation_kept(ck, trial, study.metric, study.mode, study.score)
        results.append(HoldoutEvaluation(trial.trial_id, ck, values, scored))
    if not results:
        why = (f"{store.root}: none of the top {k} trials kept a checkpoint to evaluate on the "
               f"held-out rows (checkpoints.save_best must be on)")
        if strict:
            raise StudyFolderError(why)
        study.message = why
    for trial in record_holdout(study, trials, results, source=prepared.holdout_source or "",
                                rows=len(prepared.holdout), top_k=k, missing=missing):
        store.write_trial(trial)
    store.write_study(study)
    store.write_tables(study)
    return study


def holdout_summary(study: StudyRecord) -> dict[str, Any]:
    """What ``hftune evaluate`` prints: the selected trial's held-out value and the others, the
    top trials that kept no checkpoint (``missing``) and those scored at a checkpoint other
    than their scored evaluation's (``not_scored_checkpoint``)."""
    info = study.holdout or {}
    return {"metric": study.metric, "best_trial_id": study.best_trial_id,
            "best_value": study.best_value, "best_holdout": study.best_holdout,
            "source": info.get("source"), "rows": info.get("rows"),
            "trials": info.get("trials", {}),
            "missing": list(info.get("missing_checkpoints", [])),
            "not_scored_checkpoint": list(info.get("not_scored_checkpoints", []))}
