"""Typed study config: every section rejects unknown keys (pydantic ``extra="forbid"``).

Cross-field checks that need other modules (search-space syntax, TrainingArguments fields,
strategy options) run in :func:`hftune.config.loading.validate_study`, so that this module
stays a plain description of the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TaskConfig(_Section):
    """Which data to tune on. ``name`` is a GLUE task or any name for a custom task."""

    name: str
    data_dir: Path | None = None
    text_fields: list[str] | None = Field(default=None, min_length=1, max_length=2)
    label_field: str | None = None
    labels: list[str | int] | None = None
    train_split: str = "train"
    validation_split: str | None = None
    test_split: str | None = None
    max_train_samples: int | None = Field(default=None, gt=0)
    max_eval_samples: int | None = Field(default=None, gt=0)


class StrategyConfig(BaseModel):
    """``name`` picks the strategy; its own options are validated by that strategy."""

    model_config = ConfigDict(extra="allow")

    name: str = "grid"
    metric: str | None = None
    mode: Literal["max", "min"] | None = None
    score: Literal["best", "last"] = "best"

    @property
    def options(self) -> dict[str, Any]:
        """The strategy-specific keys (everything but name, metric, mode, score)."""
        return dict(self.model_extra or {})


class ResourcesConfig(_Section):
    """Per-trial resources. ``None`` means: derived from the machine (the whole machine used)."""

    cpus_per_trial: float | None = Field(default=None, gt=0)
    gpus_per_trial: float | None = Field(default=None, ge=0)
    max_concurrent: int | None = Field(default=None, gt=0)


class BudgetConfig(_Section):
    num_samples: int | None = Field(default=None, gt=0)
    time_budget_s: float | None = Field(default=None, gt=0)
    max_failures: int = Field(default=0, ge=0)


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


class CheckpointConfig(_Section):
    """What trials keep on disk.

    ``save_best``: each trial keeps the weights of its best evaluation (what ``hftune export``
    hands back). ``keep``: for strategies that clone trials (PBT, PB2), how many full checkpoints
    (weights + optimizer + scheduler) each trial keeps, newest first.
    """

    save_best: bool = True
    keep: int = Field(default=2, ge=1)


class StudyConfig(_Section):
    """One study: ``hftune run`` takes exactly this, from YAML plus ``--set`` overrides."""

    name: str = Field(min_length=1)
    output_dir: Path | None = None
    seed: int = 42
    model: str = Field(min_length=1)
    task: TaskConfig
    max_length: int = Field(default=128, gt=0)
    training: dict[str, Any] = Field(default_factory=dict)
    search_space: dict[str, Any] = Field(default_factory=dict)
    strategy: StrategyConfig = Field(default_factory=StrategyConfig)
    resources: ResourcesConfig = Field(default_factory=ResourcesConfig)
    budget: BudgetConfig = Field(default_factory=BudgetConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    checkpoints: CheckpointConfig = Field(default_factory=CheckpointConfig)
    # Run model/tokenizer code shipped with a Hub model (arbitrary Python): off unless set here.
    trust_remote_code: bool = False

    @field_validator("task", mode="before")
    @classmethod
    def _task_shorthand(cls, value: Any) -> Any:
        """``task: rte`` is short for ``task: {name: rte}``."""
        return {"name": value} if isinstance(value, str) else value

    @property
    def study_dir(self) -> Path:
        return self.output_dir if self.output_dir is not None else Path("runs") / self.name
