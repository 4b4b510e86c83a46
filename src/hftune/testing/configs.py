"""Study configs for tests: the smallest valid one, with the changes a test makes."""

from __future__ import annotations

from typing import Any

from hftune.config.schema import StudyConfig
from hftune.study.loading import validate_study

MINIMAL: dict[str, Any] = {"name": "s", "model": "m", "task": "rte"}


def study_config(base: dict[str, Any] | None = None, /, **changes: Any) -> StudyConfig:
    """``validate_study`` of :data:`MINIMAL`, updated with ``base`` and then ``changes``
    (top-level keys)."""
    return validate_study({**MINIMAL, **(base or {}), **changes})


def rte_config(model: Any, data_dir: Any, *, train: int = 16, evaluate: int = 8,
               max_length: int = 32, space: dict[str, Any] | None = None,
               task: dict[str, Any] | None = None, **top: Any) -> dict[str, Any]:
    """A config (a dict, not validated) of ``train``/``evaluate`` rows of the real RTE data in
    ``data_dir`` on ``model``, one learning rate unless ``space``; ``task`` adds task keys,
    ``top`` top-level ones."""
    return {"name": "checks", "model": str(model), "max_length": max_length,
            "task": {"name": "rte", "data_dir": str(data_dir), "max_train_samples": train,
                     "max_eval_samples": evaluate, **(task or {})},
            "search_space": space or {"learning_rate": [1e-4]}, **top}
