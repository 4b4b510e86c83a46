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

    def __post_init__(self) -> None:
        check_split_names(self)

    @property
    def primary_metric(self) -> str:
        return self.metrics[0]


def check_split_names(task: ResolvedTask) -> None:
    """Refuse a task whose train, validation and test splits are not three different names.

    One split under two roles either leaks (trials are selected, or the winner is scored, on
    rows it trained on) or crashes every trial (taking the test split out of the data takes the
    validation split with it). Raises a :class:`ConfigError` naming both keys. Holding out part
    of the validation rows (e.g. half of RTE's dev set, as the reference does) is
    ``evaluation.holdout``, not ``task.test_split``. Called by every :class:`ResolvedTask`.
    """
    keys = [("task.train_split", task.train_split),
            ("task.validation_split", task.validation_split)]
    if task.test_split is not None:
        keys.append(("task.test_split", task.test_split))
    for i, (key, split) in enumerate(keys):
        for other, other_split in keys[:i]:
            if split == other_split:
                hint = ("; to hold out part of the validation rows, leave task.test_split unset "
                        "and set evaluation.holdout (e.g. 0.5)"
                        if key == "task.test_split" and other == "task.validation_split"
                        else "; each must name a different split")
                raise ConfigError(f"{key} and {other} both name the split '{split}'{hint}")


def resolve_task(cfg: TaskConfig) -> ResolvedTask:
    """Resolve a config's task against the registry (or as a custom task).

    Raises :class:`ConfigError` for an unknown task without text fields, and for split names
    that overlap (:func:`check_split_names`), e.g. ``test_split`` equal to the validation split
    or to the GLUE default ``validation``.
    """
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
