"""A study's config, fully checked: the config's own checks, then the strategy's.

The config (:mod:`hftune.config.loading`) checks what it can alone: the schema,
``TrainingArguments`` fields and values, the search space. The strategies build on the config
and check their options against it (:func:`hftune.strategies.validate_strategy`). This module,
above both, is the one entry point that runs the two in that order, so that neither the config
needs the strategies nor a caller forgets the strategy's checks.

Every failure raises :class:`hftune.errors.ConfigError` with one line naming the key and the fix.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from hftune.config.loading import config_space, read_config, validate_config
from hftune.config.schema import StudyConfig
from hftune.strategies import validate_strategy


def load_config(
    path: Path,
    overrides: Iterable[str] = (),
    *,
    data_dir: Path | None = None,
) -> StudyConfig:
    """Load and fully validate a study config (schema, search space, strategy options);
    ``overrides`` are ``--set KEY=VALUE`` items, ``data_dir`` the task's data folder."""
    return validate_study(read_config(path, overrides, data_dir=data_dir))


def validate_study(data: Mapping[str, Any]) -> StudyConfig:
    """:func:`~hftune.config.loading.validate_config`, then the strategy's options against the
    search space and the fixed ``training`` values, and that the strategy uses
    ``budget.num_samples`` (:func:`~hftune.strategies.validate_strategy`)."""
    cfg = validate_config(data)
    validate_strategy(cfg.strategy, config_space(cfg), num_samples=cfg.budget.num_samples)
    return cfg
