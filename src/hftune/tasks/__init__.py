"""Task types by name (``task.type``), each one small module behind :class:`TaskType`.

:func:`task_type` is the one way the rest of hftune gets a type; :func:`field_types` says which
types take a config field (to refuse a field of another type by name).
"""

from __future__ import annotations

from hftune.errors import ConfigError
from hftune.tasks.base import TaskSettings, TaskType, TokenizedSplit
from hftune.tasks.causal_lm import CausalLM
from hftune.tasks.multi_label import MultiLabel
from hftune.tasks.multiple_choice import MultipleChoice
from hftune.tasks.question_answering import QuestionAnswering
from hftune.tasks.regression import Regression
from hftune.tasks.seq2seq import Seq2Seq
from hftune.tasks.sequence_classification import SequenceClassification
from hftune.tasks.token_classification import TokenClassification

DEFAULT_TYPE = "sequence_classification"

TASK_TYPES: dict[str, type[TaskType]] = {
    t.name: t for t in (SequenceClassification, Regression, MultiLabel, TokenClassification,
                      QuestionAnswering, MultipleChoice, Seq2Seq, CausalLM)
}

__all__ = ["DEFAULT_TYPE", "TASK_TYPES", "TaskSettings", "TaskType", "TokenizedSplit",
           "field_types", "task_type", "task_type_class"]


def task_type_class(name: str) -> type[TaskType]:
    """The task type called ``name``; an unknown one is a :class:`ConfigError` listing the
    types."""
    cls = TASK_TYPES.get(name)
    if cls is None:
        raise ConfigError(f"task.type: unknown task type '{name}'; the types: "
                          f"{', '.join(TASK_TYPES)}")
    return cls


def task_type(name: str, settings: TaskSettings) -> TaskType:
    """An instance of the type ``name`` for a task with ``settings``."""
    return task_type_class(name)(settings)


def field_types(field: str) -> list[str]:
    """The task types whose config fields include ``field``."""
    return [name for name, cls in TASK_TYPES.items() if field in cls.fields]
