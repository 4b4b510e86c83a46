"""Everything a study needs before any trial runs, checked up front (no study folder yet).

:func:`prepare_study` resolves the model, reads and checks the data, tokenizes it once, parses
the search space and builds the strategy. Any problem raises an :class:`HftuneInputError`, so
bad input never leaves a half-made study folder behind.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from hftune import space as space_mod
from hftune.config.loading import training_argument_fields
from hftune.config.schema import StudyConfig
from hftune.data.loading import TaskData, load_task_data
from hftune.data.tasks import ResolvedTask, resolve_task
from hftune.data.tokenize import TokenizedTask, tokenize_task
from hftune.errors import ConfigError, DataError, ModelError
from hftune.strategies import Strategy, build_strategy
from hftune.training.model import model_max_positions, resolve_model_ref


@dataclass(frozen=True)
class Resources:
    """Per-trial resources and the concurrency they allow."""

    cpus_per_trial: float
    gpus_per_trial: float
    max_concurrent: int | None


@dataclass
class PreparedStudy:
    config: StudyConfig
    task: ResolvedTask
    data: TaskData
    tokenized: TokenizedTask
    tokenizer: Any
    model_path: str
    metric: str
    mode: str
    space: dict[str, space_mod.Dimension]
    strategy: Strategy
    resources: Resources
    # The held-out rows (tokenized), never handed to trials; None without a held-out part.
    holdout: Any | None = None
    holdout_source: str | None = None


def resolve_objective(cfg: StudyConfig, task: ResolvedTask) -> tuple[str, str]:
    """The metric to optimise and its direction (task default: its standard metric, max)."""
    metric = cfg.strategy.metric or task.primary_metric
    allowed = {*task.metrics, "loss"}
    if metric not in allowed:
        raise ConfigError(f"strategy.metric: '{metric}' is not reported for task "
                          f"'{task.name}'; choose one of {', '.join(sorted(allowed))}")
    mode = cfg.strategy.mode or ("min" if metric == "loss" else "max")
    return metric, mode


def default_resources(cfg: StudyConfig, total_cpus: float | None = None,
                      total_gpus: int | None = None) -> Resources:
    """Use the whole machine: one GPU per trial when there are GPUs, else one CPU per trial.

    Unless the config sets ``cpus_per_trial``, trials on GPUs share the CPUs evenly among the
    trials that run at once (``gpus_per_trial: 0.5`` on 1 GPU and 16 CPUs: two trials of 8
    CPUs), so that the CPUs never keep a packed GPU from filling.
    """
    from hftune.study.gpu_packing import cpus_per_packed_trial, resolve_auto

    if total_cpus is None:
        total_cpus = float(os.cpu_count() or 1)
    if total_gpus is None:
        total_gpus = cuda_device_count()
    gpus = cfg.resources.gpus_per_trial
    if gpus is None:
        gpus = 1.0 if total_gpus else 0.0
    elif gpus == "auto":  # measured: as many trials per GPU as fit in its memory
        gpus = resolve_auto(cfg, total_gpus)
    cpus = cfg.resources.cpus_per_trial
    if cpus is None:
        cpus = cpus_per_packed_trial(total_cpus, total_gpus, gpus) if gpus else 1.0
    return Resources(cpus, gpus, cfg.resources.max_concurrent)


def cuda_device_count() -> int:
    """CUDA devices this process sees (0 without a CUDA build of torch)."""
    try:
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except ImportError:
        return 0


def prepare_study(cfg: StudyConfig, *, tracking: bool = True) -> PreparedStudy:
    """Resolve, load, check and tokenize; raises on any bad input before anything is written.

    ``tracking=False`` skips the check of the config's tracking clients (for commands that
    reopen a study without tracking anything: evaluate, rerun, replay).
    """
    from transformers import AutoTokenizer

    from hftune.tracking import check_tracking_available

    if tracking:
        check_tracking_available(cfg)  # a tracking client not installed: fail before any work
    task = resolve_task(cfg.task)
    metric, mode = resolve_objective(cfg, task)
    if cfg.evaluation.holdout is not None and task.test_split:
        raise ConfigError("evaluation.holdout: the held-out part is either a share of the "
                          "validation data or task.test_split; set only one of them")
    model_path = resolve_model_ref(cfg.model)
    max_positions = model_max_positions(model_path, cfg.trust_remote_code)
    if max_positions is not None and cfg.max_length > max_positions:
        raise ConfigError(f"max_length: {cfg.max_length} is over the model's limit of "
                          f"{max_positions} positions; set max_length <= {max_positions}")
    space = space_mod.parse_space(cfg.search_space,
                                  training_fields=set(training_argument_fields()))
    _check_model_keys(model_path, space, cfg.trust_remote_code)
    data = load_task_data(task, cfg.task.data_dir)
    try:
        tokenizer = AutoTokenizer.from_pretrained(model_path,
                                                  trust_remote_code=cfg.trust_remote_code)
    except (OSError, ValueError) as exc:
        raise ModelError(f"model: no tokenizer for '{cfg.model}' ({str(exc).splitlines()[0]})"
                         ) from None
    limits = {task.train_split: cfg.task.max_train_samples,
              task.validation_split: cfg.task.max_eval_samples}
    tokenized = tokenize_task(data, tokenizer, cfg.max_length, limits)
    if cfg.task.max_train_samples is not None and len(
            set(tokenized.splits[task.train_split]["labels"])) < 2:
        raise DataError(f"task.max_train_samples: the first {cfg.task.max_train_samples} "
                        f"training rows hold a single class (is the file sorted by label?); "
                        f"shuffle the file or raise max_train_samples")
    holdout, holdout_source = split_holdout(tokenized, task, cfg.evaluation.holdout)
    strategy = build_strategy(cfg.strategy, space, metric, mode, cfg.seed)
    return PreparedStudy(cfg, task, data, tokenized, tokenizer, model_path, metric, mode, space,
                         strategy, default_resources(cfg), holdout, holdout_source)


def split_holdout(tokenized: TokenizedTask, task: ResolvedTask,
                  fraction: float | None) -> tuple[Any | None, str | None]:
    """Take the held-out rows out of ``tokenized`` so that trials never see them.

    With ``task.test_split``: that (labelled) split is removed from ``tokenized.splits`` and
    returned. With ``fraction``: the validation split (already cut to ``max_eval_samples``) is
    replaced by its first ``n - round(n * fraction)`` rows (the selection part) and the last
    ``round(n * fraction)`` rows are returned (deterministic, no shuffling). Otherwise nothing
    changes and ``(None, None)`` is returned. The second value names the held-out rows.
    """
    if task.test_split:
        return tokenized.splits.pop(task.test_split), task.test_split
    if fraction is None:
        return None, None
    full = tokenized.splits[task.validation_split]
    rows = len(full)
    held = round(rows * fraction)
    if held < 1 or held >= rows:
        raise ConfigError(f"evaluation.holdout: {fraction} of {rows} validation rows leaves no "
                          f"rows for selection or none held out; use more rows or another share")
    keep = rows - held
    tokenized.splits[task.validation_split] = full.select(range(keep))
    return full.select(range(keep, rows)), f"{task.validation_split}[{keep}:{rows}]"


def _check_model_keys(model_path: str, space: dict[str, space_mod.Dimension],
                      trust_remote_code: bool = False) -> None:
    keys = [k[len(space_mod.MODEL_PREFIX):] for k in space if k.startswith(space_mod.MODEL_PREFIX)]
    if not keys:
        return
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(model_path, trust_remote_code=trust_remote_code)
    for key in keys:
        if not hasattr(config, key):
            raise ConfigError(f"search_space.model.{key}: the model config has no key '{key}'")
