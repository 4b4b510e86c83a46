"""The study's task, resolved: its type (:mod:`hftune.tasks`), the type's settings and its splits.

A task resolved from the config (:class:`ResolvedTask`) is what the loader, the tokenizer, the
trials and the metric code share. A known task name (:data:`hftune.tasks.known.KNOWN_TASKS`)
fills in the type, the fields, the label names, the metrics and where the Hub keeps it; a custom
task declares its type's fields in the config.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hftune.config.schema import TYPE_FIELDS, TaskConfig
from hftune.errors import ConfigError
from hftune.tasks import TaskSettings, TaskType, task_type
from hftune.tasks.known import KNOWN_TASKS


@dataclass(frozen=True)
class ResolvedTask:
    """Everything about the task that data loading, training and metrics need."""

    name: str
    type: TaskType
    train_split: str
    validation_split: str
    test_split: str | None
    hub: tuple[str, str | None] | None  # (dataset id, config) of a known task
    extra: dict[str, object] = field(default_factory=dict)
    # evaluated with the validation split and reported under their prefix, never selected on
    extra_validation_splits: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_split_names(self)
        prefixes = [evaluation_prefix(s) for s in self.extra_validation_splits]
        for prefix in prefixes:
            if prefix == "holdout" or prefixes.count(prefix) > 1:
                raise ConfigError(
                    f"task.extra_validation_splits: two splits, or a split and the held-out "
                    f"estimate, would report metrics under the same prefix '{prefix}_'; rename "
                    f"the split files")

    @property
    def metrics(self) -> tuple[str, ...]:
        return self.type.metrics

    @property
    def primary_metric(self) -> str:
        return self.metrics[0]

    @property
    def extra_evaluations(self) -> dict[str, str]:
        """``{prefix: split}`` of :attr:`extra_validation_splits`: a metric ``m`` of split
        ``s`` is reported as ``<prefix>_m`` (:func:`evaluation_prefix`)."""
        return {evaluation_prefix(s): s for s in self.extra_validation_splits}

    @property
    def label_names(self) -> tuple[str, ...] | None:
        return self.type.settings.label_names


def evaluation_prefix(split: str) -> str:
    """The prefix of an extra validation split's metrics: its name without ``validation_``
    (``validation_mismatched`` → ``mismatched``), else its name."""
    rest = split.removeprefix("validation_")
    return rest if rest else split


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
    keys += [("task.extra_validation_splits", s) for s in task.extra_validation_splits]
    for i, (key, split) in enumerate(keys):
        for other, other_split in keys[:i]:
            if split == other_split:
                hint = ("; to hold out part of the validation rows, leave task.test_split unset "
                        "and set evaluation.holdout (e.g. 0.5)"
                        if key == "task.test_split" and other == "task.validation_split"
                        else "; each must name a different split")
                raise ConfigError(f"{key} and {other} both name the split '{split}'{hint}")


def resolve_task(cfg: TaskConfig, generation: Mapping[str, Any] | None = None) -> ResolvedTask:
    """Resolve a config's task: a known task's defaults under the config's own values.

    ``generation``: the study's ``evaluation.generation`` (text generated at each evaluation;
    only a type that generates takes it). Raises :class:`ConfigError` for a custom
    sequence-classification-like task without its text fields, for ``generation`` with a type
    that does not generate text, for option values the type refuses, and for split names that
    overlap (:func:`check_split_names`), e.g. ``test_split`` equal to the validation split.
    """
    known = KNOWN_TASKS.get(cfg.name)
    kind = cfg.task_type
    if known is not None and known.type != kind:
        known = None  # the known name's defaults are for another type
    cls_fields = task_type(kind, TaskSettings(cfg.name)).fields
    options: dict[str, Any] = {k: v for k, v in cls_fields.items()}
    if known is not None:
        options.update(known.options)
    for name in TYPE_FIELDS:
        value = getattr(cfg, name)
        if value is not None and name in cls_fields:
            options[name] = tuple(value) if isinstance(value, list) else value
    if "text_fields" in cls_fields and not options.get("text_fields"):
        raise ConfigError(
            f"task.name: '{cfg.name}' is not a known task ({', '.join(KNOWN_TASKS)}); a custom "
            f"task must declare task.text_fields and task.label_field")
    labels = tuple(str(x) for x in cfg.labels) if cfg.labels else (
        known.label_names if known else None)
    if generation is not None and not task_type(kind, TaskSettings(cfg.name)).generates:
        raise ConfigError(f"evaluation.generation: task type '{kind}' does not generate text; "
                          f"generation is for the types seq2seq and causal_lm")
    settings = TaskSettings(cfg.name, options, labels, known.metrics if known else (),
                            generation=dict(generation) if generation is not None else None)
    return ResolvedTask(
        name=cfg.name,
        type=task_type(kind, settings),
        train_split=cfg.train_split,
        validation_split=cfg.validation_split or (known.validation_split if known
                                                  else "validation"),
        test_split=cfg.test_split,
        hub=known.hub if known else None,
        extra_validation_splits=tuple(
            cfg.extra_validation_splits if cfg.extra_validation_splits is not None
            else (known.extra_validation_splits if known else ())),
    )
