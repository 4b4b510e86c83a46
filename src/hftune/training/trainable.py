"""The Ray Tune trainable: one trial is one transformers ``Trainer`` run.

Everything a trial needs and that does not vary between trials travels in one
:class:`TrialSetup`, which the runner hands to Ray once (``tune.with_parameters`` puts it in the
object store); trials only build their model and ``TrainingArguments`` from their config
(:func:`hftune.trial_arguments.training_arguments`, plain values in, no config schema).
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hftune.space import split_hyperparameters
from hftune.training.heap import prepare_heap
from hftune.trial_arguments import training_arguments


@dataclass
class TrialSetup:
    """The study-wide inputs of every trial."""

    model_path: str
    tokenizer: Any
    label_names: tuple[str, ...]
    train_dataset: Any
    eval_dataset: Any
    metrics: tuple[str, ...]
    training: dict[str, Any]
    seed: int
    cpus_per_trial: float
    gpus_per_trial: float
    eval_every: str = "epoch"
    eval_steps: int | None = None
    metric: str | None = None
    mode: str = "max"
    checkpoints: str = "none"  # "none" | "best" | "last" | "every" (see training.callback)
    trust_remote_code: bool = False  # the config's trust_remote_code (model code from the Hub)
    # the task type (hftune.tasks: model class, collator, metrics); None: sequence
    # classification with ``metrics``
    task_type: Any = None
    # what the metrics need besides predictions and targets (TokenizedSplit.references)
    eval_references: Any = None
    # more validation splits, each evaluation scores them too: {prefix: TokenizedSplit}, their
    # metrics reported as ``<prefix>_<metric>`` (never what a strategy ranks by)
    extra_eval: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    # the config's peft: section (an adapter instead of full fine-tuning); None: full
    peft: dict[str, Any] | None = None

    def kind(self) -> Any:
        """The task type of the trials (:attr:`task_type`, else sequence classification
        reporting :attr:`metrics`)."""
        if self.task_type is not None:
            return self.task_type
        from hftune.tasks import TaskSettings
        from hftune.tasks.sequence_classification import SequenceClassification

        return SequenceClassification(TaskSettings("task", metrics=tuple(self.metrics)))


def set_torch_threads(cpus: float) -> int:
    """Make torch use as many threads as the trial has CPUs (Ray's OMP setting may differ)."""
    import torch

    threads = max(1, int(cpus))
    torch.set_num_threads(threads)
    os.environ["OMP_NUM_THREADS"] = str(threads)
    return torch.get_num_threads()


def run_trial(config: dict[str, Any], setup: TrialSetup, report: Any, output_dir: str, *,
              trial_id: str = "local", restore_from: Path | None = None,
              stop_at_epoch: float | None = None) -> dict[str, Any]:
    """Train one config, calling ``report(record, checkpoint_dir)`` after every evaluation.

    ``restore_from``: a checkpoint to continue from (a crash resume, or a PBT exploit); the
    restore rule is in :mod:`hftune.training.checkpoint`. ``stop_at_epoch``: end training after
    that epoch's evaluation (a segment of a PBT schedule being replayed). Independent of Ray,
    so it can be tested with any ``report``. Returns a small summary.

    The run's first report also carries its bookkeeping: ``worker_pid`` (it marks the start of
    a run), ``torch_threads``, ``ray_node_id``, ``trial_config``, ``worker_trials`` and the
    per-trial resources it runs with, ``cpus_per_trial`` and ``gpus_per_trial`` (floats).
    """
    from hftune.tasks import TokenizedSplit
    from hftune.training.adapters import adapter_in_force, adapter_settings
    from hftune.training.batches import PaddingCollator, model_inputs, trainer_class
    from hftune.training.callback import ReportCallback, StopAtEpoch, new_eval_id
    from hftune.training.checkpoint import ApplyConfigOnRestore, prepare_restore, write_meta
    from hftune.training.model import build_model
    from hftune.training.timing import StartupTiming

    kind = setup.kind()
    eval_split = TokenizedSplit(setup.eval_dataset, len(setup.eval_dataset),
                                setup.eval_references)
    scorer = kind.scorer(eval_split, setup.tokenizer)
    # imports transformers' Trainer (a cold worker's first trial)
    trainer_cls = trainer_class(ordered_eval=kind.ordered_eval,
                                extra_evaluations=bool(setup.extra_eval),
                                scored=scorer is not None)
    started = time.perf_counter()
    timing = StartupTiming(started)
    prepare_heap()
    threads = set_torch_threads(setup.cpus_per_trial)
    hparams, model_overrides = split_hyperparameters(config)
    args = training_arguments(
        setup.training, hparams, output_dir, seed=setup.seed, gpus_per_trial=setup.gpus_per_trial,
        eval_every=setup.eval_every, eval_steps=setup.eval_steps, checkpoints=setup.checkpoints)
    restored = None
    if restore_from is not None:
        restored = prepare_restore(
            restore_from, Path(output_dir) / "restored", train_rows=len(setup.train_dataset),
            batch_size=args.train_batch_size, grad_accumulation=args.gradient_accumulation_steps)
    # Merged into this run's first report. A run's resources price its seconds in the report
    # (hftune.study.records.TrialRecord.compute_parts): a resume may run with others.
    first: dict[str, Any] = {"torch_threads": threads, "worker_pid": os.getpid(),
                             "ray_node_id": _ray_node_id(), "trial_config": dict(config),
                             "worker_trials": _count_trial(),
                             "cpus_per_trial": float(setup.cpus_per_trial),
                             "gpus_per_trial": float(setup.gpus_per_trial)}
    if restored is not None:
        first.update(restored_from=restored.meta.trial_id, restored_epoch=restored.meta.epoch,
                     restored_eval=restored.meta.record.get("eval_id"),
                     restore_fallback=restored.fallback, restored_checkpoint=restored.source)
        if _trained_out(restored, args):  # nothing left to train for this config
            if restored.meta.trial_id == trial_id and restored.meta.config == dict(config):
                return {"reports": 0, "seconds": 0.0}  # own final checkpoint: already reported
            # a clone of a trial that had finished: its metrics, no training, no optimizer;
            # the cloned weights become this trial's checkpoint, so that what the study reports
            # for this trial and what export (or a later exploit of it) takes are the same.
            # Its step is the checkpoint's step in this config's batches, as its meta records
            # it (export and the held-out estimate match checkpoints to reports by step).
            metrics = {k: v for k, v in restored.meta.record.items() if k not in _NOT_CLONED}
            record = {**metrics, **first, "step": restored.global_step, "trained_all": True,
                      "eval_id": new_eval_id(),
                      "trained": False,
                      "elapsed_s": time.perf_counter() - started}  # not the source's seconds
            write_meta(restored.folder, trial_id=trial_id, epoch=restored.meta.epoch,
                       global_step=restored.global_step, config=dict(config), record=record)
            report(record, restored.folder)
            return {"reports": 1, "seconds": time.perf_counter() - started}
    apply = ApplyConfigOnRestore(config_keys=hparams) if restored is not None else None

    def extra() -> dict[str, Any]:
        out = {**first, "eval_samples": len(setup.eval_dataset)}
        if first:  # the first report: start-up timing
            out.update(timing.fields())
        if apply is not None and apply.applied is not None:
            out["applied"] = apply.applied
        first.clear()
        return out

    stop = StopAtEpoch(stop_at_epoch) if stop_at_epoch is not None else None
    model = build_model(setup.model_path, setup.label_names, model_overrides, args.seed,
                        task_type=kind, trust_remote_code=setup.trust_remote_code,
                        adapter=adapter_settings(setup.peft, config))
    if setup.peft is not None:  # the adapter in force, read back (explore takes effect)
        first["adapter"] = adapter_in_force(model)
    callback = ReportCallback(
        report, started=started, extra=extra, checkpoints=setup.checkpoints,
        metric=setup.metric, mode=setup.mode,
        best=restored.meta.value(setup.metric) if restored and setup.metric else None,
        on_checkpoint=lambda folder, rec: write_meta(
            folder, trial_id=trial_id, epoch=rec["epoch"], global_step=rec["step"],
            config=dict(config), record=rec))
    trainer = trainer_cls(
        model=model,
        args=args,
        train_dataset=model_inputs(setup.train_dataset, model),
        eval_dataset=model_inputs(setup.eval_dataset, model),
        data_collator=PaddingCollator(kind.collator(setup.tokenizer)),
        compute_metrics=kind.compute_metrics(eval_split, setup.label_names),
        preprocess_logits_for_metrics=kind.preprocess_logits(),
        callbacks=[c for c in (apply, callback, stop, timing) if c is not None],
    )
    trainer.remove_callback(_printer_callback())
    if scorer is not None:
        trainer.set_scorer(scorer)
    for prefix, split in setup.extra_eval.items():
        trainer.add_extra_evaluation(prefix, model_inputs(split.features, model),
                                     kind.compute_metrics(split, setup.label_names))
    trainer.train(resume_from_checkpoint=str(restored.folder) if restored else None)
    return {"reports": callback.reports, "seconds": time.perf_counter() - started}


# Fields of the donor's record a clone of a finished trial does not take over: what the
# donor's optimizer held and the donor's own timings (the clone neither trained nor evaluated).
_NOT_CLONED = frozenset({"applied", "learning_rate", "weight_decay", "eval_s", "setup_s",
                         "first_step_s"})


def _trained_out(restored: Any, args: Any) -> bool:
    """Whether a restored checkpoint has reached the end of training for ``args`` (the
    ``Trainer`` stops at ``max_steps`` when it is set, else after ``num_train_epochs``)."""
    if args.max_steps > 0:
        return restored.global_step >= args.max_steps
    return restored.meta.epoch >= args.num_train_epochs


_trials_in_process = 0


def _count_trial() -> int:
    """How many trials this process ran before this one (0: a cold worker)."""
    global _trials_in_process
    _trials_in_process += 1
    return _trials_in_process - 1


def _ray_node_id() -> str | None:
    """The Ray node this process runs on (``None`` outside Ray)."""
    import ray

    return ray.get_runtime_context().get_node_id() if ray.is_initialized() else None


def _printer_callback() -> Any:
    from transformers.trainer_callback import PrinterCallback

    return PrinterCallback


def ray_trainable(config: dict[str, Any], setup: TrialSetup) -> None:
    """Ray Tune function trainable: reports (and checkpoints) through ``ray.tune.report``."""
    from ray import tune

    context = tune.get_context()
    checkpoint = tune.get_checkpoint()
    # The Trainer's scratch folder stays outside Ray's trial folder, which Ray syncs to the
    # study folder: checkpoints reach the study only through tune.report.
    with tempfile.TemporaryDirectory(prefix="hftune-trial-") as output_dir:
        _run_in_ray(config, setup, context, checkpoint, output_dir)


def _run_in_ray(config: dict[str, Any], setup: TrialSetup, context: Any, checkpoint: Any,
                output_dir: str) -> None:
    from ray import tune

    def report(record: dict[str, Any], folder: Path | None) -> None:
        tune.report(record, checkpoint=tune.Checkpoint.from_directory(str(folder))
                    if folder is not None else None)

    if checkpoint is None:
        run_trial(config, setup, report, output_dir, trial_id=context.get_trial_id())
        return
    from hftune.training.checkpoint import local_checkpoint_path

    run_trial(config, setup, report, output_dir, trial_id=context.get_trial_id(),
              restore_from=local_checkpoint_path(checkpoint))
