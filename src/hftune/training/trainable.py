"""The Ray Tune trainable: one trial is one transformers ``Trainer`` run.

Everything a trial needs and that does not vary between trials travels in one
:class:`TrialSetup`, which the runner hands to Ray once (``tune.with_parameters`` puts it in the
object store); trials only build their model and ``TrainingArguments`` from their config.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

from hftune.space import split_hyperparameters

# Values hftune uses unless the config's `training:` says otherwise.
TRAINING_DEFAULTS: dict[str, Any] = {
    "per_device_eval_batch_size": 64,
    "dataloader_num_workers": 0,
    "logging_strategy": "no",
    "use_cpu": None,  # decided from the trial's GPUs
}


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
    extra: dict[str, Any] = field(default_factory=dict)


def training_arguments(setup: TrialSetup, hparams: dict[str, Any], output_dir: str) -> Any:
    """``TrainingArguments`` for one trial: defaults < config ``training`` < trial config."""
    from transformers import TrainingArguments

    values = {k: v for k, v in TRAINING_DEFAULTS.items() if v is not None}
    values.update(setup.training)
    values.update(hparams)
    values.setdefault("seed", setup.seed)
    values.setdefault("use_cpu", setup.gpus_per_trial == 0)
    if setup.eval_every == "steps":
        values.update(eval_strategy="steps", eval_steps=setup.eval_steps)
    else:
        values.update(eval_strategy="epoch")
    for key in ("per_device_train_batch_size", "num_train_epochs", "warmup_steps", "seed"):
        if key in values and isinstance(values[key], float) and values[key].is_integer():
            values[key] = int(values[key])
    return TrainingArguments(
        output_dir=output_dir, save_strategy="no", report_to=[], disable_tqdm=True, **values)


def set_torch_threads(cpus: float) -> int:
    """Make torch use as many threads as the trial has CPUs (Ray's OMP setting may differ)."""
    import torch

    threads = max(1, int(cpus))
    torch.set_num_threads(threads)
    os.environ["OMP_NUM_THREADS"] = str(threads)
    return torch.get_num_threads()


def run_trial(config: dict[str, Any], setup: TrialSetup, report: Any,
              output_dir: str) -> dict[str, Any]:
    """Train one config, calling ``report(record)`` after every evaluation.

    Returns the last record. Independent of Ray, so it can be tested with any ``report``.
    """
    from transformers import DataCollatorWithPadding, Trainer

    from hftune.training.callback import ReportCallback
    from hftune.training.metrics import make_compute_metrics
    from hftune.training.model import build_model

    started = time.perf_counter()
    threads = set_torch_threads(setup.cpus_per_trial)
    hparams, model_overrides = split_hyperparameters(config)
    args = training_arguments(setup, hparams, output_dir)
    model = build_model(setup.model_path, setup.label_names, model_overrides, args.seed)
    callback = ReportCallback(report, started=started,
                              extra=lambda: {"torch_threads": threads, "worker_pid": os.getpid()})
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=setup.train_dataset,
        eval_dataset=setup.eval_dataset,
        data_collator=DataCollatorWithPadding(setup.tokenizer),
        compute_metrics=make_compute_metrics(setup.metrics, len(setup.label_names)),
        callbacks=[callback],
    )
    trainer.remove_callback(_printer_callback())
    trainer.train()
    return {"reports": callback.reports, "seconds": time.perf_counter() - started}


def _printer_callback() -> Any:
    from transformers.trainer_callback import PrinterCallback

    return PrinterCallback


def ray_trainable(config: dict[str, Any], setup: TrialSetup) -> None:
    """Ray Tune function trainable: reports through ``ray.tune.report``."""
    from ray import tune

    output_dir = tune.get_context().get_trial_dir() or os.getcwd()
    run_trial(config, setup, lambda record: tune.report(record), output_dir)
