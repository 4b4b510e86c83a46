"""Typed study config: every section rejects unknown keys (pydantic ``extra="forbid"``).

Cross-field checks that need other modules (search-space syntax, TrainingArguments fields) run
in :func:`hftune.config.loading.validate_config`, and the strategy's options in
:func:`hftune.study.loading.validate_study`, so that this module stays a plain description of
the file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic_core import PydanticCustomError


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


# The task fields one type or another takes (hftune.tasks: each type's ``fields``); a field set
# for a type that does not take it is refused, naming the type(s) it belongs to.
TYPE_FIELDS = ("text_fields", "label_field", "labels", "tokens_field", "tags_field",
               "label_all_tokens", "question_field", "context_field", "answers_field",
               "doc_stride", "max_answer_length", "choices_fields", "choices_field",
               "source_field", "target_field", "source_prefix", "max_target_length",
               "prompt_template", "response_field", "text_field", "messages_field",
               "chat_template")


class TaskConfig(_Section):
    """Which data to tune on. ``name`` is a known task (``hftune.tasks.known``) or any name
    for a custom task (default: the name of ``data_dir``'s folder); ``type`` the task type
    (default: the known task's, else ``sequence_classification``), whose own fields follow
    (see the README per type)."""

    name: str
    type: str | None = None
    data_dir: Path | None = None
    # sequence_classification, regression, multi_label
    text_fields: list[str] | None = Field(default=None, min_length=1, max_length=2)
    label_field: str | None = None
    labels: list[str | int] | None = None
    # token_classification
    tokens_field: str | None = None
    tags_field: str | None = None
    label_all_tokens: bool | None = None
    # question_answering (context_field and question_field: also multiple_choice)
    question_field: str | None = None
    context_field: str | None = None
    answers_field: str | None = None
    doc_stride: int | None = Field(default=None, ge=1)
    max_answer_length: int | None = Field(default=None, ge=1)
    # multiple_choice
    choices_fields: list[str] | None = Field(default=None, min_length=2)
    choices_field: str | None = None
    # seq2seq
    source_field: str | None = None
    target_field: str | None = None
    source_prefix: str | None = None
    max_target_length: int | None = Field(default=None, ge=1)
    # causal_lm: prompt_template + response_field, text_field, or messages_field
    prompt_template: str | None = None
    response_field: str | None = None
    text_field: str | None = None
    messages_field: str | None = None
    chat_template: str | None = None
    train_split: str = "train"
    validation_split: str | None = None
    test_split: str | None = None
    # more validation splits, evaluated with the validation split and reported, never selected
    # on (MNLI's validation_mismatched); None: the known task's
    extra_validation_splits: list[str] | None = None
    max_train_samples: int | None = Field(default=None, gt=0)
    max_eval_samples: int | None = Field(default=None, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _name_from_the_folder(cls, data: Any) -> Any:
        """A task given by its folder alone (``data_dir`` and the type's fields) is named
        after the folder (``data/reviews`` → ``reviews``)."""
        if isinstance(data, Mapping) and data.get("name") is None and data.get("data_dir"):
            name = Path(str(data["data_dir"])).expanduser().absolute().name
            if name:
                return {**data, "name": name}
        return data

    @model_validator(mode="after")
    def _fields_of_the_type(self) -> TaskConfig:
        """Each field set belongs to the task's type; ``type`` is a known one."""
        from hftune.tasks import DEFAULT_TYPE, field_types, task_type_class
        from hftune.tasks.known import KNOWN_TASKS

        known = KNOWN_TASKS.get(self.name)
        kind = self.type or (known.type if known else DEFAULT_TYPE)
        cls = task_type_class(kind)
        for name in TYPE_FIELDS:
            if getattr(self, name) is not None and name not in cls.fields:
                owners = field_types(name)
                raise PydanticCustomError(
                    "task_field", f"task.{name}: a field of task type "
                    f"{' or '.join(owners) or 'none'}, not of '{kind}'; remove it or set "
                    f"task.type")
        return self

    @property
    def task_type(self) -> str:
        """The task's type: ``type``, else the known task's, else sequence classification."""
        from hftune.tasks import DEFAULT_TYPE
        from hftune.tasks.known import KNOWN_TASKS

        known = KNOWN_TASKS.get(self.name)
        return self.type or (known.type if known else DEFAULT_TYPE)

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, value: Path | None) -> Path | None:
        """Relative to where hftune runs; stored absolute, so that ``resume``, ``evaluate``
        and ``rerun`` from another folder read the same files."""
        return None if value is None else value.expanduser().absolute()

    @field_validator("labels")
    @classmethod
    def _distinct(cls, value: list[str | int] | None) -> list[str | int] | None:
        """Label names become ``label2id`` keys (as text): a name given twice would map two
        class ids to one name, so each must be distinct (``1`` and ``"1"`` are the same)."""
        seen: set[str] = set()
        for label in value or ():
            if str(label) in seen:
                raise PydanticCustomError(
                    "labels", f"label '{label}' is listed twice; give each class one name")
            seen.add(str(label))
        return value


@dataclass(frozen=True)
class TrialContext:
    """What every trial gets besides its own config, as far as strategies need it: the fixed
    ``training`` values and when trials evaluate (``evaluation.every``, ``eval_steps``).

    Not a key of the file: :class:`StudyConfig` hands it to its :class:`StrategyConfig`, so that
    a strategy built from ``cfg.strategy`` alone sees it too.
    """

    training: Mapping[str, Any] = field(default_factory=dict)
    eval_every: Literal["epoch", "steps"] = "epoch"
    eval_steps: int | None = None


class StrategyConfig(BaseModel):
    """``name`` picks the strategy; its own options are validated by that strategy."""

    model_config = ConfigDict(extra="allow")

    name: str = "grid"
    metric: str | None = None
    mode: Literal["max", "min"] | None = None
    score: Literal["best", "last"] = "best"
    _trial_context: TrialContext = PrivateAttr(default_factory=TrialContext)

    @property
    def options(self) -> dict[str, Any]:
        """The strategy-specific keys (everything but name, metric, mode, score)."""
        return dict(self.model_extra or {})

    @property
    def trial_context(self) -> TrialContext:
        """The study's :class:`TrialContext` (the defaults for a config made on its own)."""
        return self._trial_context

    def set_trial_context(self, context: TrialContext) -> None:
        """Called by :class:`StudyConfig` once its sections are validated."""
        self._trial_context = context


class ResourcesConfig(_Section):
    """Per-trial resources. ``None`` means: derived from the machine (the whole machine used).

    ``gpus_per_trial: auto`` measures one trial's GPU memory and packs as many trials on each GPU
    as fit (:mod:`hftune.study.gpu_packing`); CPU trials on a machine without GPUs.
    """

    cpus_per_trial: float | None = Field(default=None, gt=0)
    gpus_per_trial: Annotated[float, Field(ge=0)] | Literal["auto"] | None = None
    max_concurrent: int | None = Field(default=None, gt=0)

    @field_validator("gpus_per_trial")
    @classmethod
    def _share_or_whole(cls, value: float | str | None) -> float | str | None:
        """A trial takes a share of one GPU (at most 1, several trials packed on it) or whole
        GPUs; a share above 1 (1.5) packs nothing and is refused, not left to Ray."""
        if isinstance(value, float) and value > 1 and not value.is_integer():
            raise PydanticCustomError(
                "gpus_per_trial", "a trial takes a share of one GPU (at most 1) or a whole "
                "number of GPUs")
        return value


class BudgetConfig(_Section):
    num_samples: int | None = Field(default=None, gt=0)
    time_budget_s: float | None = Field(default=None, gt=0)
    max_failures: int = Field(default=0, ge=0)


class GenerationConfig(_Section):
    """``evaluation.generation``: generate text at each evaluation (seq2seq, causal_lm) and
    score it. ``max_samples``: generate for the first rows only (the loss still covers every
    row); ``metrics``: of rouge1, rouge2, rougeL, bleu, exact_match (default: the type's)."""

    max_new_tokens: int = Field(default=64, ge=1, le=4096)
    num_beams: int = Field(default=1, ge=1, le=16)
    max_samples: int | None = Field(default=None, gt=0)
    metrics: list[Literal["rouge1", "rouge2", "rougeL", "bleu", "exact_match"]] | None = Field(
        default=None, min_length=1)


class EvaluationConfig(_Section):
    """When trials evaluate (and report to the strategy), and the held-out estimate.

    ``holdout``: the fraction of the validation rows (after ``task.max_eval_samples``) kept out
    of selection: the first rows select, the last ``round(n * holdout)`` rows are held out.
    Alternatively ``task.test_split`` names a labelled split used as the held-out part (not
    both). The held-out part is evaluated only for the ``holdout_top_k`` best trials, after
    selection (``hftune evaluate DIR --split holdout``; ``hftune run`` does it at the end).
    """

    every: Literal["epoch", "steps"] = "epoch"
    eval_steps: int | None = Field(default=None, gt=0)
    holdout: float | None = Field(default=None, gt=0, lt=1)
    holdout_top_k: int = Field(default=1, ge=1)
    generation: GenerationConfig | None = None

    @model_validator(mode="after")
    def _steps_need_a_count(self) -> EvaluationConfig:
        """``every: steps`` needs ``eval_steps`` (transformers would silently fall back to its
        logging interval, 500 steps); ``eval_steps`` means nothing with ``every: epoch``."""
        if self.every == "steps" and self.eval_steps is None:
            raise PydanticCustomError(
                "evaluation", "every: steps needs eval_steps (optimizer steps between "
                "evaluations), e.g. eval_steps: 50")
        if self.every == "epoch" and self.eval_steps is not None:
            raise PydanticCustomError(
                "evaluation", "eval_steps is used only with every: steps; set every: steps "
                "or remove eval_steps")
        return self


class CheckpointConfig(_Section):
    """What trials keep on disk.

    ``save_best``: each trial keeps the weights of its best evaluation (what ``hftune export``
    hands back). ``keep``: for strategies that clone trials (PBT, PB2), how many full checkpoints
    (weights + optimizer + scheduler) each trial keeps, newest first; its best-scoring one is
    kept besides (export and the held-out evaluation take it).
    """

    save_best: bool = True
    keep: int = Field(default=2, ge=1)


class MlflowTrackingConfig(_Section):
    """``tracking.mlflow``: one MLflow run per trial, in one experiment per study.

    ``tracking_uri``: default ``sqlite:///<study folder>/mlflow.db``, with artifacts under
    ``<study folder>/mlruns``. ``experiment_name``: default the study's name.
    """

    tracking_uri: str | None = None
    experiment_name: str | None = None


class WandbTrackingConfig(_Section):
    """``tracking.wandb``: one W&B run per trial, grouped by the study's name.

    ``mode``: default ``$WANDB_MODE`` (``offline`` needs no account). The API key comes from the
    environment (``WANDB_API_KEY``) or ``wandb login`` only: it is not a config key.
    """

    project: str = "hftune"
    entity: str | None = None
    mode: Literal["online", "offline", "disabled"] | None = None
    tags: list[str] = Field(default_factory=list)


class TensorboardTrackingConfig(_Section):
    """``tracking.tensorboard``: one event folder per trial, ``<study folder>/tensorboard/<id>``."""


class TrackingConfig(_Section):
    """Where each trial is also tracked, besides the study folder.

    Written as a list (``tracking: [mlflow, tensorboard]``) or as a mapping of target to its
    options (``tracking: {mlflow: {tracking_uri: ...}, wandb: {project: x}}``; an empty value
    or ``true`` takes the defaults, ``false`` turns a target off). A target left out is off.
    """

    mlflow: MlflowTrackingConfig | None = None
    wandb: WandbTrackingConfig | None = None
    tensorboard: TensorboardTrackingConfig | None = None

    @model_validator(mode="before")
    @classmethod
    def _targets(cls, value: Any) -> Any:
        """List or mapping → ``{target: options}``; unknown targets and options are errors."""
        if value is None:
            return {}
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list | tuple):
            if not all(isinstance(item, str) for item in value):
                raise _tracking_error("expected target names, e.g. [mlflow, tensorboard]")
            value = dict.fromkeys(value)
        if not isinstance(value, dict):
            raise _tracking_error("expected a list of targets (e.g. [mlflow, tensorboard]) "
                                  "or a mapping of target to options")
        targets: dict[str, Any] = {}
        for name, options in value.items():
            model = _TRACKING_TARGETS.get(str(name))
            if model is None:
                raise _tracking_error(f"unknown target '{name}'; valid targets: "
                                      f"{', '.join(_TRACKING_TARGETS)}")
            if options is False:
                continue
            options = {} if options is None or options is True else options
            unknown = sorted(set(options) - set(model.model_fields)) if isinstance(
                options, dict) else []
            if unknown:
                valid = ", ".join(model.model_fields) or "none"
                raise _tracking_error(f"unknown option '{name}.{unknown[0]}'; valid {name} "
                                      f"options: {valid}")
            targets[str(name)] = options
        return targets

    @model_serializer(mode="wrap")
    def _enabled_only(self, handler: Any) -> dict[str, Any]:
        # A target that is off is left out, so the dumped config reads back the same.
        return {k: v for k, v in handler(self).items() if v is not None}

    @property
    def targets(self) -> list[str]:
        """The enabled targets, in a fixed order."""
        return [name for name in _TRACKING_TARGETS if getattr(self, name) is not None]


def _tracking_error(message: str) -> PydanticCustomError:
    return PydanticCustomError("tracking", message)  # shown as is, no "Value error" prefix


_TRACKING_TARGETS: dict[str, type[_Section]] = {
    "mlflow": MlflowTrackingConfig, "wandb": WandbTrackingConfig,
    "tensorboard": TensorboardTrackingConfig}


DEFAULT_MAX_LENGTH = 128


class StudyConfig(_Section):
    """One study: ``hftune run`` takes exactly this, from YAML plus ``--set`` overrides."""

    name: str = Field(min_length=1)
    output_dir: Path | None = None
    # numpy, torch and transformers take seeds in 0..2**32 - 1 only
    seed: int = Field(default=42, ge=0, le=2**32 - 1)
    model: str = Field(min_length=1)
    task: TaskConfig
    # tokens per input; unset: the task type's default (question answering 384), else 128
    max_length: int | None = Field(default=None, gt=0)
    training: dict[str, Any] = Field(default_factory=dict)
    search_space: dict[str, Any] = Field(default_factory=dict)
    strategy: StrategyConfig = Field(default_factory=StrategyConfig)
    resources: ResourcesConfig = Field(default_factory=ResourcesConfig)
    budget: BudgetConfig = Field(default_factory=BudgetConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    checkpoints: CheckpointConfig = Field(default_factory=CheckpointConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    # a peft adapter (LoRA) instead of full fine-tuning: method and the method's config fields,
    # checked against peft's own config class before any trial (hftune.training.adapters)
    peft: dict[str, Any] | None = None
    # Run model/tokenizer code shipped with a Hub model (arbitrary Python): off unless set here.
    trust_remote_code: bool = False

    @field_validator("task", mode="before")
    @classmethod
    def _task_shorthand(cls, value: Any) -> Any:
        """``task: rte`` is short for ``task: {name: rte}``."""
        return {"name": value} if isinstance(value, str) else value

    @field_validator("output_dir", mode="before")
    @classmethod
    def _not_empty(cls, value: Any) -> Any:
        """An empty ``output_dir`` would be the current folder: refused (leave the key out for
        ``runs/<name>``)."""
        if isinstance(value, str) and not value.strip():
            raise PydanticCustomError(
                "output_dir", "empty; name a folder, or leave output_dir out for runs/<name>")
        return value

    @field_validator("output_dir")
    @classmethod
    def _expand_home(cls, value: Path | None) -> Path | None:
        """``~`` and ``~user`` are expanded, as for ``model`` and ``task.data_dir``."""
        return None if value is None else value.expanduser()

    @model_validator(mode="after")
    def _default_max_length(self) -> StudyConfig:
        """An unset ``max_length`` is the task type's default, else 128 (recorded so)."""
        if self.max_length is None:
            from hftune.tasks import task_type_class

            own = task_type_class(self.task.task_type).default_max_length
            self.max_length = own or DEFAULT_MAX_LENGTH
        return self

    @model_validator(mode="after")
    def _context_for_the_strategy(self) -> StudyConfig:
        """The strategy sees the fixed ``training`` values and the evaluation cadence (e.g. how
        many evaluations a trial makes, what a trial's config is checked against)."""
        self.strategy.set_trial_context(TrialContext(
            dict(self.training), self.evaluation.every, self.evaluation.eval_steps))
        return self

    @property
    def study_dir(self) -> Path:
        return self.output_dir if self.output_dir is not None else Path("runs") / self.name
