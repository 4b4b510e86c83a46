"""Task types by name: the config's ``task.type``, its fields, and the known tasks' types."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from hftune.config.schema import TaskConfig
from hftune.data.tasks import resolve_task
from hftune.errors import ConfigError
from hftune.tasks import TASK_TYPES, TaskSettings, field_types, task_type, task_type_class
from hftune.tasks.base import TaskType
from hftune.tasks.known import KNOWN_TASKS


def test_every_registered_type_is_a_task_type_under_its_own_name() -> None:
    for name, cls in TASK_TYPES.items():
        assert issubclass(cls, TaskType) and cls.name == name
        instance = task_type(name, TaskSettings("t"))
        assert instance.metrics == cls.metric_names and instance.metrics


def test_an_unknown_type_is_refused_listing_the_types() -> None:
    with pytest.raises(ConfigError) as info:
        task_type_class("translation_of_poems")
    assert all(name in str(info.value) for name in TASK_TYPES)
    with pytest.raises(ConfigError, match="translation_of_poems"):
        TaskConfig(name="t", type="translation_of_poems", text_fields=["a"], label_field="b")


def test_a_field_of_another_type_is_refused_naming_its_type() -> None:
    owners = field_types("tokens_field")
    assert "sequence_classification" not in owners
    with pytest.raises(ValidationError) as info:
        TaskConfig(name="sst2", tokens_field="words")
    assert "tokens_field" in str(info.value)


def test_a_known_task_brings_its_type_and_the_config_wins() -> None:
    assert resolve_task(TaskConfig(name="stsb")).type.name == "regression"
    assert resolve_task(TaskConfig(name="rte")).type.name == "sequence_classification"
    own = resolve_task(TaskConfig(name="rte", text_fields=["premise"], label_field="label"))
    assert own.type.options["text_fields"] == ("premise",)


def test_known_tasks_are_only_of_registered_types() -> None:
    assert {t.type for t in KNOWN_TASKS.values()} <= set(TASK_TYPES)
