"""Task registry: text fields, labels, splits and metrics of the GLUE classification tasks.

A task resolved from the config (:class:`ResolvedTask`) is what the loader, the tokenizer and the
metric code share. Custom tasks declare ``text_fields`` and ``label_field`` in the config.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hftune.config.schema import TaskConfig
from hftune.errors import ConfigError

HUB_DATASET = "nyu-mll/glue"


@dataclass(frozen=True)
class TaskSpec:
    """A known task. ``field_aliases``: accepted text-column names, first the Hub's."""

    name: str
    field_aliases: tuple[tuple[str, ...], ...]
    label_names: tuple[str, ...]
    metrics: tuple[str, ...]
    validation_split: str = "validation"


GLUE_TASKS: dict[str, TaskSpec] = {
    t.name: t
    for t in (
        TaskSpec("rte", (("sentence1", "sentence2"), ("premise", "hypothesis")),
                 ("entailment", "not_entailment"), ("accuracy",)),
        TaskSpec("sst2", (("sentence",), ("text",)), ("negative", "positive"), ("accuracy",)),
        TaskSpec("mrpc", (("sentence1", "sentence2"),), ("not_equivalent", "equivalent"),
                 ("f1", "accuracy")),
        TaskSpec("cola", (("sentence",),), ("unacceptable", "acceptable"),
                 ("matthews_correlation", "accuracy")),
        TaskSpec("qnli", (("question", "sentence"),), ("entailment", "not_entailment"),
                 ("accuracy",)),
        TaskSpec("qqp", (("question1", "question2"),), ("not_duplicate", "duplicate"),
                 ("accuracy", "f1")),
        TaskSpec("wnli", (("sentence1", "sentence2"),), ("not_entailment", "entailment"),
                 ("accuracy",)),
        TaskSpec("mnli", (("premise", "hypothesis"),),
                 ("entailment", "neutral", "contradiction"), ("accuracy",),
                 validation_split="validation_matched"),
    )
}


@dataclass(frozen=True)
class ResolvedTask:
    """Everything about the task that data loading, training and metrics need."""

    name: str
    field_aliases: tuple[tuple[str, ...], ...]
    label_field: str
    label_names: tuple[str, ...] | None  # None: taken from the training data (custom task)
    metrics: tuple[str, ...]
    train_split: str
    validation_split: str
    test_split: str | None
    is_glue: bool
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def primary_metric(self) -> str:
        return self.metrics[0]


def resolve_task(cfg: TaskConfig) -> ResolvedTask:
    """Resolve a config's task against the registry (or as a custom task)."""
    spec = GLUE_TASKS.get(cfg.name)
    if spec is None and not cfg.text_fields:
        raise ConfigError(
            f"task.name: '{cfg.name}' is not a known GLUE task ({', '.join(GLUE_TASKS)}); "
            f"a custom task must declare task.text_fields and task.label_field"
        )
    aliases = (tuple(cfg.text_fields),) if cfg.text_fields else spec.field_aliases
    labels = tuple(str(x) for x in cfg.labels) if cfg.labels else (
        spec.label_names if spec else None)
    return ResolvedTask(
        name=cfg.name,
        field_aliases=aliases,
        label_field=cfg.label_field or "label",
        label_names=labels,
        metrics=spec.metrics if spec else ("accuracy", "f1"),
        train_split=cfg.train_split,
        validation_split=cfg.validation_split or (spec.validation_split if spec else "validation"),
        test_split=cfg.test_split,
        is_glue=spec is not None,
    )
