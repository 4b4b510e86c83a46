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
from hftune.config.loading import config_space
from hftune.config.schema import StudyConfig
from hftune.data.loading import TaskData, load_task_data
from hftune.data.tasks import ResolvedTask, resolve_task
from hftune.data.tokenize import TokenizedTask, tokenize_task
from hftune.errors import ConfigError, DataError, ModelError
from hftune.strategies import Strategy, build_strategy
from hftune.training.model import check_model_overrides, check_task_head, resolve_model_ref

# Models whose position ids start after the padding id (``padding_idx + 1``, as RoBERTa's):
# of their ``max_position_embeddings`` (514 for roberta-base), ``pad_token_id + 1`` are never
# used by a token, so the longest input is 512.
PADDING_OFFSET_MODEL_TYPES = frozenset({"roberta", "xlm-roberta", "xlm-roberta-xl", "camembert",
                                        "longformer", "data2vec-text", "roberta-prelayernorm",
                                        "xmod", "ibert", "mpnet"})
# Tokenizers saved without a limit report ``model_max_length`` as a huge placeholder (1e30).
SANE_TOKENIZER_LIMIT = 1_000_000
# The smallest share of the model's vocabulary (config vocab_size) its tokenizer must have.
# Real pairs differ by a few percent at most (embeddings padded to a multiple of 64 or 128:
# Phi-2 has 50295 tokens for 51200 rows; T5 32100 for 32128; or tokens added to the
# tokenizer); the stand-in tokenizer transformers builds for a folder without tokenizer files
# has 5 tokens for BERT's 30522.
MIN_VOCABULARY_SHARE = 0.5


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
    # The held-out rows (a TokenizedSplit), never handed to trials; None without a held-out
    # part.
    holdout: Any | None = None
    holdout_source: str | None = None


def resolve_objective(cfg: StudyConfig, task: ResolvedTask) -> tuple[str, str]:
    """The metric to optimise and its direction (task default: its standard metric; max unless
    lower is better: the loss, or a metric the task type minimises, such as ``mse``)."""
    metric = cfg.strategy.metric or task.primary_metric
    allowed = {*task.metrics, "loss"}
    if metric not in allowed:
        raise ConfigError(f"strategy.metric: '{metric}' is not reported for task "
                          f"'{task.name}'; choose one of {', '.join(sorted(allowed))}")
    lower = metric == "loss" or metric in task.type.minimised
    mode = cfg.strategy.mode or ("min" if lower else "max")
    return metric, mode


def study_objective(cfg: StudyConfig) -> tuple[str, str]:
    """:func:`resolve_objective` for the config's own task (resolved here, so that callers such
    as the CLI need not know the task registry)."""
    return resolve_objective(cfg, study_task(cfg))


def study_task(cfg: StudyConfig) -> ResolvedTask:
    """The config's task resolved with its ``evaluation.generation``."""
    generation = cfg.evaluation.generation
    return resolve_task(cfg.task, generation.model_dump() if generation is not None else None)


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


def prepare_study(cfg: StudyConfig, *, tracking: bool = True,
                  hub_loader: Any = None) -> PreparedStudy:
    """Resolve, load, check and tokenize; raises on any bad input before anything is written.

    Checked here, each as a one-line :class:`HftuneInputError`: the task (split names that
    overlap: :func:`hftune.data.tasks.check_split_names`), the objective, the model's config,
    weights (:func:`hftune.training.model.check_weights`) and tokenizer (a pad token:
    :func:`check_pad_token`; the model's vocabulary: :func:`check_vocabulary`),
    ``max_length`` against the model's limit (:func:`max_input_length`), the search space's
    ``model.*`` keys, and the data.

    ``tracking=False`` skips the check of the config's tracking clients (for commands that
    reopen a study without tracking anything: evaluate, rerun, replay). ``hub_loader``: a
    stand-in for ``datasets.load_dataset`` (tests).
    """
    from transformers import AutoTokenizer

    from hftune.tracking import check_tracking_available

    if tracking:
        check_tracking_available(cfg)  # a tracking client not installed: fail before any work
    task = study_task(cfg)
    metric, mode = resolve_objective(cfg, task)
    if cfg.evaluation.holdout is not None and task.test_split:
        raise ConfigError("evaluation.holdout: the held-out part is either a share of the "
                          "validation data or task.test_split; set only one of them")
    model_path = resolve_model_ref(cfg.model)
    model_config = _model_config(model_path, cfg.trust_remote_code)
    try:
        tokenizer = AutoTokenizer.from_pretrained(model_path,
                                                  trust_remote_code=cfg.trust_remote_code)
    except (OSError, ValueError) as exc:
        raise ModelError(f"model: no tokenizer for '{cfg.model}' ({str(exc).splitlines()[0]})"
                         ) from None
    check_pad_token(tokenizer, cfg.model)
    check_vocabulary(tokenizer, model_config, cfg.model)
    limit, why = max_input_length(model_config, tokenizer)
    if limit is not None and cfg.max_length > limit:
        raise ConfigError(f"max_length: {cfg.max_length} is over the model's limit of {limit} "
                          f"tokens ({why}); set max_length <= {limit}")
    check_task_head(model_config, task.type, cfg.model, cfg.trust_remote_code)
    space = config_space(cfg)
    _check_model_keys(model_config, space)
    check_model_overrides(model_config, {
        k[len(space_mod.MODEL_PREFIX):]: d.edge_values() for k, d in space.items()
        if k.startswith(space_mod.MODEL_PREFIX)}, cfg.trust_remote_code, task.type)
    task.type.check_settings(cfg.max_length)
    check_adapter(cfg, model_config, task, space)
    data = load_task_data(task, cfg.task.data_dir, hub_loader=hub_loader)
    frames = dict(data.splits)
    for split, limit in ((task.train_split, cfg.task.max_train_samples),
                         (task.validation_split, cfg.task.max_eval_samples),
                         *((s, cfg.task.max_eval_samples)
                           for s in task.extra_validation_splits)):
        if limit is not None:
            frames[split] = frames[split].iloc[:limit].reset_index(drop=True)
    if cfg.task.max_train_samples is not None and task.type.one_class(
            frames[task.train_split]):
        raise DataError(f"task.max_train_samples: the first {cfg.task.max_train_samples} "
                        f"training rows hold a single class (is the file sorted by label?); "
                        f"shuffle the file or raise max_train_samples")
    held, holdout_source = split_holdout(frames, task, cfg.evaluation.holdout)
    tokenized = tokenize_task(task.type, frames, tokenizer, cfg.max_length, data.label_names,
                              task.train_split)
    holdout = None if held is None else task.type.tokenize(
        held, tokenizer, cfg.max_length, data.label_names, training=False)
    strategy = build_strategy(cfg.strategy, space, metric, mode, cfg.seed)
    return PreparedStudy(cfg, task, data, tokenized, tokenizer, model_path, metric, mode, space,
                         strategy, default_resources(cfg), holdout, holdout_source)


def split_holdout(frames: dict[str, Any], task: ResolvedTask,
                  fraction: float | None) -> tuple[Any | None, str | None]:
    """Take the held-out rows (examples, before tokenization) out of ``frames`` so that trials
    never see them.

    With ``task.test_split``: that (labelled) split is removed from ``frames`` and returned
    (it is never the train or validation split: a :class:`ResolvedTask` refuses that). With
    ``fraction``: the validation split (already cut to ``max_eval_samples``) is replaced by
    its first ``n - round(n * fraction)`` rows (the selection part) and the last
    ``round(n * fraction)`` rows are returned (deterministic, no shuffling). Otherwise nothing
    changes and ``(None, None)`` is returned. The second value names the held-out rows.
    """
    if task.test_split:
        return frames.pop(task.test_split), task.test_split
    if fraction is None:
        return None, None
    full = frames[task.validation_split]
    rows = len(full)
    held = round(rows * fraction)
    if held < 1 or held >= rows:
        raise ConfigError(f"evaluation.holdout: {fraction} of {rows} validation rows leaves no "
                          f"rows for selection or none held out; use more rows or another share")
    keep = rows - held
    frames[task.validation_split] = full.iloc[:keep].reset_index(drop=True)
    return full.iloc[keep:].reset_index(drop=True), f"{task.validation_split}[{keep}:{rows}]"


def _model_config(model_path: str, trust_remote_code: bool = False) -> Any:
    """The model's ``transformers`` config; one that cannot be read is a :class:`ModelError`."""
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(model_path, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelError(f"model: cannot load '{model_path}' ({reason})") from None


def max_input_length(model_config: Any, tokenizer: Any) -> tuple[int | None, str]:
    """The longest ``max_length`` the model takes, and why; ``(None, "")`` when nothing says.

    The smaller of two limits: the position embeddings (``max_position_embeddings``) less the
    padding offset of RoBERTa-style models (:data:`PADDING_OFFSET_MODEL_TYPES`: position ids
    start at ``pad_token_id + 1``, so 514 embeddings take 512 tokens), and the tokenizer's
    ``model_max_length`` when it is a real value (under :data:`SANE_TOKENIZER_LIMIT`; a
    tokenizer saved without one reports 1e30). The tokenizer's limit also catches an offset
    model of a type not listed here: its tokenizer says 512 where the config says 514.
    """
    limits: list[tuple[int, str]] = []
    positions = getattr(model_config, "max_position_embeddings", None)
    if isinstance(positions, int) and positions > 0:
        offset = 0
        if getattr(model_config, "model_type", None) in PADDING_OFFSET_MODEL_TYPES:
            pad = getattr(model_config, "pad_token_id", None)
            offset = (pad if isinstance(pad, int) and pad >= 0 else 1) + 1
        why = f"{positions} position embeddings"
        if offset:
            why += f", of which {offset} are reserved by the padding offset"
        limits.append((positions - offset, why))
    tokenizer_max = getattr(tokenizer, "model_max_length", None)
    if isinstance(tokenizer_max, int) and 0 < tokenizer_max < SANE_TOKENIZER_LIMIT:
        limits.append((tokenizer_max, f"the tokenizer's model_max_length is {tokenizer_max}"))
    if not limits:
        return None, ""
    return min(limits, key=lambda item: item[0])


def check_pad_token(tokenizer: Any, model_ref: str) -> None:
    """Refuse a tokenizer without a pad token (GPT-2 style): trials pad every batch to its
    longest row, which cannot be done without one; the :class:`ModelError` says how to fix it."""
    if getattr(tokenizer, "pad_token", None) is None:
        raise ModelError(f"model: the tokenizer of '{model_ref}' has no pad token (GPT-2 style), "
                         f"so batches cannot be padded; save a copy of the model with one "
                         f"(tokenizer.pad_token = tokenizer.eos_token and "
                         f"model.config.pad_token_id = tokenizer.eos_token_id, then "
                         f"save_pretrained both) and set model: to that folder")


def check_vocabulary(tokenizer: Any, model_config: Any, model_ref: str) -> None:
    """Refuse a tokenizer that covers less than :data:`MIN_VOCABULARY_SHARE` of the model's
    vocabulary (``len(tokenizer)`` against the config's ``vocab_size``).

    A model folder saved without its tokenizer (``model.save_pretrained`` alone) still loads a
    tokenizer: transformers builds one from the model type with a handful of special tokens,
    and nearly every word becomes ``[UNK]``, so every trial would learn nothing. A tokenizer a
    little smaller or larger than the embedding table (padded tables, added tokens) is fine;
    without an integer ``vocab_size`` nothing is checked. Raises :class:`ModelError`.
    """
    vocab = getattr(model_config, "vocab_size", None)
    if not isinstance(vocab, int) or isinstance(vocab, bool) or vocab <= 0:
        return
    size = len(tokenizer)
    if size < vocab * MIN_VOCABULARY_SHARE:
        raise ModelError(
            f"model: the tokenizer of '{model_ref}' has {size} tokens for the model's "
            f"vocabulary of {vocab} (vocab_size), so most text would become unknown tokens; is "
            f"the tokenizer missing from the folder? save it next to the weights "
            f"(tokenizer.save_pretrained(FOLDER)) and set model: to that folder")


def _check_model_keys(model_config: Any, space: dict[str, space_mod.Dimension]) -> None:
    """Every ``model.*`` key of the search space is a key of the model config."""
    keys = [k[len(space_mod.MODEL_PREFIX):] for k in space if k.startswith(space_mod.MODEL_PREFIX)]
    for key in keys:
        if not hasattr(model_config, key):
            raise ConfigError(f"search_space.model.{key}: the model config has no key '{key}'")


def check_adapter(cfg: StudyConfig, model_config: Any, task: ResolvedTask,
                  space: dict[str, space_mod.Dimension]) -> None:
    """The ``peft:`` section and the searched ``peft.*`` keys, before any trial: keys of peft's
    config class (:func:`hftune.training.adapters.check_keys`), and an adapter that builds on
    the model with each searched value (built on the meta device: no weights), so that
    ``target_modules`` naming no module is refused listing the model's modules. A searched
    ``peft.*`` key without a ``peft:`` section is refused."""
    searched = [k for k in space if k.startswith(space_mod.PEFT_PREFIX)]
    if cfg.peft is None:
        if searched:
            raise ConfigError(f"search_space.{searched[0]}: an adapter key, but the config has "
                              f"no peft: section (e.g. peft: {{method: lora}})")
        return
    import torch

    from hftune.training.adapters import adapter_settings, add_adapter, check_keys

    gpus = cfg.resources.gpus_per_trial
    check_keys(cfg.peft, searched, gpus=float(cuda_device_count() if gpus in (None, "auto")
                                              else gpus))
    tried = [{}] + [{name: value} for name in searched for value in space[name].edge_values()]
    auto = task.type.auto_model()
    for values in tried:
        settings = adapter_settings(cfg.peft, values)
        assert settings is not None
        settings.pop("load_in", None)  # the meta-device model is not quantized
        with torch.device("meta"):
            model = auto.from_config(model_config, trust_remote_code=cfg.trust_remote_code)
            try:
                add_adapter(model, settings, task.type.name, ())
            except ConfigError:
                raise
            except Exception as exc:  # whatever peft refuses
                where = f"search_space.{next(iter(values))}" if values else "peft"
                reason = str(exc).strip().splitlines()[0] if str(exc).strip() else \
                    type(exc).__name__
                raise ConfigError(f"{where}: peft refuses {values or dict(cfg.peft)}: "
                                  f"{reason}") from None
