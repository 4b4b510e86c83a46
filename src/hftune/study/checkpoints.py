"""The checkpoints a study kept, found by scanning the study folder, and re-evaluating one.

Every checkpoint a trial reported lies under ``<study>/ray/<trial dir>/checkpoint_NNNNNN/`` (a
later step's trials: under ``<study>/ray-<phase>/``) with an ``hftune.json`` (see
:mod:`hftune.training.checkpoint`): the trial that wrote it, its epoch and step, the config it
ran with and the evaluation record it was taken at. The scan trusts that file, not the folder it
lies in, so a PBT trial's checkpoints are attributed to the trial that wrote them.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hftune.training.checkpoint import META_FILE, CheckpointMeta, read_meta


def scan_checkpoints(*ray_dirs: Path) -> list[CheckpointMeta]:
    """Every ``<ray_dir>/*/checkpoint_*/hftune.json`` of the given experiment folders (a
    study's: ``StudyStore.experiment_dirs()``), sorted by path. Skipped: a checkpoint whose
    ``hftune.json`` cannot be read, is not JSON, or is not what hftune writes (not an object,
    a key missing, a value of the wrong type): one being written or deleted right now, or
    damaged; it names no trial and step that could be trusted."""
    found = []
    paths = [p for ray_dir in ray_dirs for p in Path(ray_dir).glob(f"*/checkpoint_*/{META_FILE}")]
    for meta_path in sorted(paths):
        try:
            found.append(read_meta(meta_path.parent))
        except (OSError, KeyError, TypeError, ValueError):  # ValueError: JSON, UTF-8 errors too
            continue
    return found


def best_checkpoint(checkpoints: Sequence[CheckpointMeta], trial_id: str, metric: str,
                    mode: str, rule: str = "best") -> CheckpointMeta | None:
    """The trial's checkpoint that its score rule picks: with ``rule="best"`` the one with the
    best recorded ``metric`` (earliest step on ties), with ``"last"`` its latest one.

    With the ``best`` policy a trial keeps one checkpoint, its best evaluation (``last``: its
    last one); with ``every`` (PBT) it keeps several and this picks among those still on disk.
    ``None`` when the trial kept no checkpoint with a value of the metric.
    """
    own = [c for c in checkpoints if c.trial_id == trial_id and c.value(metric) is not None]
    if not own:
        return None
    own.sort(key=lambda c: c.global_step)
    if rule == "last":
        return own[-1]
    pick = max if mode == "max" else min
    return pick(own, key=lambda c: c.value(metric))  # type: ignore[arg-type, return-value]


def recorded_checkpoint(checkpoints: Sequence[CheckpointMeta], trial: Any, metric: str,
                        mode: str, rule: str = "best") -> CheckpointMeta | None:
    """:func:`best_checkpoint` among the trial's checkpoints taken at an evaluation its record
    reports (same step, same epoch, same value of ``metric``).

    A run killed after Ray's last snapshot can leave checkpoint folders Ray never learns of;
    the resumed run trains those epochs again and the record keeps the new reports only. Such a
    folder's weights belong to no recorded evaluation, so export and the held-out estimate
    skip it, and also one at a recorded step whose value differs from the recorded one (the
    step was trained again, with another result, and that run saved no checkpoint over it).
    The epoch is compared too: after a PBT exploit to another batch size a member can report
    the same step twice, at different epochs. (Records whose reports carry no step: every
    checkpoint of the trial counts.)
    """
    recorded = [r for r in trial.reports if isinstance(r.get("step"), int | float)]
    own = [c for c in checkpoints if c.trial_id == trial.trial_id]
    if recorded:
        own = [c for c in own if any(taken_at(c, r, metric) for r in recorded)]
    return best_checkpoint(own, trial.trial_id, metric, mode, rule)


def taken_at(ck: CheckpointMeta, report: dict[str, Any], metric: str) -> bool:
    """Whether ``ck`` holds the weights of the evaluation ``report`` records: the same step,
    the same epoch (where both say one) and the same value of ``metric`` (where both have
    one)."""
    step = report.get("step")
    if not isinstance(step, int | float) or int(step) != ck.global_step:
        return False
    epoch = report.get("epoch")
    if isinstance(epoch, int | float) and ck.epoch is not None and not math.isclose(
            float(epoch), float(ck.epoch), rel_tol=1e-9, abs_tol=1e-6):
        return False
    return _same_value(ck.value(metric), report.get(metric))


def _same_value(saved: float | None, reported: Any) -> bool:
    """Whether a checkpoint's value is the one the record reports for its step (``True`` where
    either is missing: nothing to compare)."""
    if saved is None or not isinstance(reported, int | float):
        return True
    return math.isclose(float(saved), float(reported), rel_tol=1e-9, abs_tol=1e-12)


def scored_evaluation_kept(ck: CheckpointMeta, trial: Any, metric: str, mode: str,
                           rule: str = "best") -> bool:
    """Whether ``ck`` is the checkpoint of the evaluation that gives ``trial`` its score (its
    scored report). ``False`` when that checkpoint is gone and :func:`recorded_checkpoint`
    fell back to another kept one: its weights then score less than the trial's recorded
    value (export and the held-out estimate say so)."""
    scored = trial.scored_report(metric, mode, rule)
    return scored is None or taken_at(ck, scored, metric)


def evaluate_model(model: Any, dataset: Any, *, tokenizer: Any,
                   metrics: Sequence[str] = (), task_type: Any = None,
                   label_names: Sequence[str] = (), batch_size: int = 64, use_cpu: bool = False,
                   trust_remote_code: bool = False) -> dict[str, float]:
    """Evaluate a model (or a model folder) the way trials do.

    ``dataset``: a :class:`~hftune.tasks.TokenizedSplit` (or its features alone). A plain
    ``Trainer.evaluate`` with the trials' collator (dynamic padding), inputs and metric code of
    ``task_type`` (default: sequence classification reporting ``metrics``), ``batch_size`` rows
    per batch: with the trials' eval batch size the numbers equal what the trial recorded for
    the same weights and rows. ``trust_remote_code``: the study's (a folder of a model with its
    own code). Returns ``{"loss", *metrics}`` (the loss where the type has one).
    """
    from transformers import TrainingArguments
    from transformers.trainer_callback import PrinterCallback

    from hftune.tasks import TokenizedSplit
    from hftune.training.batches import PaddingCollator, model_inputs, trainer_class
    from hftune.training.trainable import TrialSetup

    kind = TrialSetup("", tokenizer, tuple(label_names), None, None, tuple(metrics), {}, 0, 1,
                      0, task_type=task_type).kind()
    split = dataset if isinstance(dataset, TokenizedSplit) else TokenizedSplit(dataset,
                                                                               len(dataset))
    if isinstance(model, str | Path):
        from hftune.training.adapters import is_adapter_folder, load_with_adapter

        if is_adapter_folder(model):
            model = load_with_adapter(model, kind.auto_model(),
                                      kind.model_config(tuple(label_names)), trust_remote_code)
        else:
            model = kind.auto_model().from_pretrained(str(model),
                                                      trust_remote_code=trust_remote_code)
    names = tuple(label_names) or tuple(
        model.config.id2label[i] for i in range(len(model.config.id2label)))
    with tempfile.TemporaryDirectory(prefix="hftune-eval-") as scratch:
        args = TrainingArguments(output_dir=scratch, per_device_eval_batch_size=batch_size,
                                 report_to=[], disable_tqdm=True, use_cpu=use_cpu,
                                 dataloader_num_workers=0, remove_unused_columns=False)
        scorer = kind.scorer(split, tokenizer)
        trainer = trainer_class(ordered_eval=kind.ordered_eval, scored=scorer is not None)(
            model=model, args=args, data_collator=PaddingCollator(kind.collator(tokenizer)),
            compute_metrics=kind.compute_metrics(split, names),
            preprocess_logits_for_metrics=kind.preprocess_logits())
        trainer.remove_callback(PrinterCallback)  # it prints every log line to stdout
        if scorer is not None:
            trainer.set_scorer(scorer)
        out = trainer.evaluate(model_inputs(split.features, model))
    wanted = ("loss", *kind.metrics)
    return {k[5:]: float(v) for k, v in out.items() if k.startswith("eval_") and k[5:] in wanted}
