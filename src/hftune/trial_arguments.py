"""The one place that turns plain values into a trial's ``transformers.TrainingArguments``.

Below both of its users, and importing neither: the trainable (:mod:`hftune.training.trainable`)
builds every trial's arguments here, and the config's validation
(:mod:`hftune.config.training_args`) builds the same arguments on the CPU to check a config
before any trial runs. It takes plain values (the config's ``training`` mapping, the trial's
hyperparameters, the study's seed and evaluation cadence), never the config's schema.

Precedence: :data:`TRAINING_DEFAULTS` < the config's ``training`` < the trial's hyperparameters;
on a GPU, bf16/tf32 where the device has them (:func:`cuda_precision_defaults`) unless the
values choose ``fp16``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Values hftune uses unless the config's `training:` says otherwise.
TRAINING_DEFAULTS: dict[str, Any] = {
    "per_device_eval_batch_size": 64,
    "dataloader_num_workers": 0,
    "logging_strategy": "no",
    # batches of similar lengths (shuffled in groups of 50 batches): less padding, less
    # arithmetic (benchmarks/RESULTS.md, ablations); `random` is transformers' own default
    "train_sampling_strategy": "group_by_length",
    "use_cpu": None,  # decided from the trial's GPUs
}

# Whole numbers a config may give as floats (``16.0``): TrainingArguments wants ints.
_INTEGRAL = ("per_device_train_batch_size", "num_train_epochs", "warmup_steps", "seed")


def training_arguments(training: Mapping[str, Any], hparams: Mapping[str, Any],
                       output_dir: str, *, seed: int, gpus_per_trial: float,
                       eval_every: str = "epoch", eval_steps: int | None = None,
                       checkpoints: str = "none") -> Any:
    """``TrainingArguments`` for one trial: defaults < ``training`` < ``hparams``.

    ``seed`` applies unless the values set one; ``gpus_per_trial`` of 0 means a CPU trial
    (``use_cpu``), above 0 a GPU trial (precision defaults of this process's GPU);
    ``eval_every`` (``"epoch"`` or ``"steps"``, with ``eval_steps``) is the evaluation cadence;
    ``checkpoints`` (``"none"``, ``"best"``, ``"last"``, ``"every"``: see
    :mod:`hftune.training.callback`) decides whether a checkpoint keeps only the weights.
    """
    from transformers import TrainingArguments

    from hftune._compat.transformers import import_integrations

    import_integrations()  # what TrainingArguments imports first prints on import
    values = {k: v for k, v in TRAINING_DEFAULTS.items() if v is not None}
    values.update(training)
    values.update(hparams)
    values.setdefault("seed", seed)
    values.setdefault("use_cpu", gpus_per_trial == 0)
    if gpus_per_trial and "fp16" not in values:  # bf16/tf32 where the GPU has them
        for key, value in cuda_precision_defaults().items():
            values.setdefault(key, value)
    if eval_every == "steps":
        values.update(eval_strategy="steps", eval_steps=eval_steps)
    else:
        values.update(eval_strategy="epoch")
    for key in _INTEGRAL:
        if key in values and isinstance(values[key], float) and values[key].is_integer():
            values[key] = int(values[key])
    # The trial hands the Trainer only the model's columns (and `length` for length-grouped
    # batches, which Trainer would drop): hftune.training.batches
    values["remove_unused_columns"] = False
    # Checkpoints are asked for by the report callback (TrainerControl.should_save), never by
    # a save schedule; "best" and "last" keep only the weights (what export needs).
    values["save_only_model"] = checkpoints in ("best", "last")
    return TrainingArguments(
        output_dir=output_dir, save_strategy="no", report_to=[], disable_tqdm=True, **values)


def precision_defaults(has_cuda: bool, bf16_supported: bool,
                       capability: tuple[int, int] | None) -> dict[str, Any]:
    """TrainingArguments for GPU trials: bf16 where the GPU has it, tf32 on Ampere and later."""
    if not has_cuda:
        return {}
    out: dict[str, Any] = {}
    if bf16_supported:
        out["bf16"] = True
    if capability is not None and capability[0] >= 8:
        out["tf32"] = True
    return out


def cuda_precision_defaults() -> dict[str, Any]:
    """:func:`precision_defaults` for this process's first CUDA device."""
    import torch

    if not torch.cuda.is_available():
        return {}
    return precision_defaults(True, torch.cuda.is_bf16_supported(),
                              torch.cuda.get_device_capability(0))
