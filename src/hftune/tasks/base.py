"""What a task type provides: one interface, one small module per type, registered by name.

A task type knows everything about one kind of fine-tuning that the rest of hftune must not
branch on: which config fields it takes, how rows are checked and tokenized (once per study),
which ``AutoModelFor…`` class and model-config values it trains, how a batch is padded, how
predictions become metrics (the first is the type's standard one), and what the model card says.
Data loading, the trainable, export, the held-out estimate and the report ask the task type.

Task types take plain values (:class:`TaskSettings`), never the config's schema, so that the
config, the data and the trials can all use them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

Metrics = Callable[[Any], dict[str, float]]


@dataclass(frozen=True)
class TaskSettings:
    """A task as its type needs it, in plain values.

    ``options``: the type's own fields (:attr:`TaskType.fields`), defaults filled in;
    ``label_names``: class names given by the config or the known task (``None``: read from
    the training data); ``metrics``: the metrics to report, the first the task's standard
    one (empty: the type's own list).
    """

    name: str
    options: Mapping[str, Any] = field(default_factory=dict)
    label_names: tuple[str, ...] | None = None
    metrics: tuple[str, ...] = ()
    # evaluation.generation (types that generate text: ``TaskType.generates``): max_new_tokens,
    # num_beams, max_samples, metrics; None: no text is generated at evaluation
    generation: Mapping[str, Any] | None = None


@dataclass
class TokenizedSplit:
    """One split, tokenized: ``features`` (a ``datasets.Dataset`` with the model's inputs, the
    targets and ``length``: tokens per row), ``rows`` (examples in it; a long QA context makes
    several features of one example) and ``references`` (what the metrics need besides the
    predictions and targets: the examples of a QA split; ``None`` for most types)."""

    features: Any
    rows: int
    references: Any = None

    def __len__(self) -> int:
        return self.rows


class TaskType(ABC):
    """Base class; a subclass sets the class attributes and implements the abstract methods.

    ``fields``: the config's task keys the type takes, with their defaults (a key of another
    type is refused, naming that type). ``model_class``: the transformers ``AutoModelFor…``
    class. ``metric_names``: what it can report, the default first. ``with_labels``: it
    trains named classes (``id2label``). ``ordered_eval``: its metrics need the predictions in
    the order of the evaluation features (no length-grouped evaluation batches).
    ``default_max_length``: a type's own default for ``max_length`` (``None``: the study's).
    ``minimised``: the metrics where lower is better (a study optimising one minimises).
    ``generates``: the type can generate text at evaluation (``evaluation.generation``).
    """

    name: ClassVar[str]
    fields: ClassVar[Mapping[str, Any]] = {}
    model_class: ClassVar[str]
    metric_names: ClassVar[tuple[str, ...]]
    pipeline_tag: ClassVar[str] = "text-classification"  # the model card's (Hub) tag
    with_labels: ClassVar[bool] = True
    ordered_eval: ClassVar[bool] = False
    default_max_length: ClassVar[int | None] = None
    minimised: ClassVar[tuple[str, ...]] = ()
    generates: ClassVar[bool] = False

    def __init__(self, settings: TaskSettings) -> None:
        self.settings = settings

    @property
    def options(self) -> Mapping[str, Any]:
        return self.settings.options

    @property
    def metrics(self) -> tuple[str, ...]:
        """The metrics reported, the first the task's standard one."""
        return tuple(self.settings.metrics) or self.metric_names

    # -- config ---------------------------------------------------------------------------
    def check_settings(self, max_length: int) -> None:
        """Raise :class:`~hftune.errors.ConfigError` for option values that cannot work with
        ``max_length`` (checked at validation, before any data is read)."""
        return None

    # -- data -----------------------------------------------------------------------------
    @abstractmethod
    def normalise(self, frames: Mapping[str, Any], train_split: str,
                  origins: Mapping[str, str]) -> tuple[dict[str, Any], tuple[str, ...]]:
        """Check every row (a :class:`~hftune.errors.DataError` names the file from
        ``origins`` and the row) and return the splits with the type's canonical columns only,
        and the label names (``()`` for a type without classes)."""

    def one_class(self, frame: Any) -> bool:
        """Whether a normalised training split holds a single class (it would teach nothing:
        refused when ``max_train_samples`` cut it so); ``False`` for types without classes."""
        return False

    @abstractmethod
    def tokenize(self, frame: Any, tokenizer: Any, max_length: int,
                 label_names: tuple[str, ...], *, training: bool) -> TokenizedSplit:
        """Tokenize one normalised split (``training``: the split trials train on)."""

    # -- training -------------------------------------------------------------------------
    def model_config(self, label_names: tuple[str, ...]) -> dict[str, Any]:
        """Model-config values for ``AutoConfig.from_pretrained`` (the head's size and
        labels)."""
        return {"num_labels": len(label_names), "id2label": dict(enumerate(label_names)),
                "label2id": {n: i for i, n in enumerate(label_names)}}

    def auto_model(self) -> Any:
        """The transformers ``AutoModelFor…`` class of the type."""
        import transformers

        return getattr(transformers, self.model_class)

    def collator(self, tokenizer: Any) -> Callable[[list[dict[str, Any]]], dict[str, Any]]:
        """Pads a batch to its longest row (transformers' ``DataCollatorWithPadding``)."""
        from transformers import DataCollatorWithPadding

        return DataCollatorWithPadding(tokenizer)

    @abstractmethod
    def compute_metrics(self, split: TokenizedSplit, label_names: tuple[str, ...]) -> Metrics:
        """A ``Trainer(compute_metrics=...)`` function giving :attr:`metrics` for ``split``."""

    def preprocess_logits(self) -> Callable[[Any, Any], Any] | None:
        """A ``Trainer(preprocess_logits_for_metrics=...)`` function that reduces each batch's
        logits to what :meth:`compute_metrics` needs (a language model's logits, vocabulary
        wide, would not fit in memory over a split); ``None``: the logits as they are."""
        return None

    def scorer(self, split: TokenizedSplit,
               tokenizer: Any) -> Callable[..., dict[str, float]] | None:
        """What each evaluation of ``split`` computes besides the ``Trainer``'s own loop:
        ``scorer(model, batch_size) -> {metric: value}`` (a generative type's generated-text
        metrics); ``None`` for types without one."""
        return None

    # -- export ---------------------------------------------------------------------------
    def describe(self, label_names: tuple[str, ...]) -> str:
        """One line for the model card: the type and what it predicts."""
        labels = f": {', '.join(label_names)}" if label_names else ""
        return f"{self.name.replace('_', ' ')} ({len(label_names)} labels{labels})"


def logits_of(predictions: Any) -> Any:
    """The logits array of an ``EvalPrediction.predictions`` (a tuple for some models)."""
    return predictions[0] if isinstance(predictions, tuple) else predictions
