"""Early-stopping strategies: random configs, stopped by Ray Tune's ASHA or median rule.

Budgets (``grace_period``, ``max_t``) count evaluations, i.e. Ray's ``training_iteration``:
epochs when ``evaluation.every`` is ``epoch``, every ``eval_steps`` steps otherwise.

Only schedulers that *stop* trials are used. Ray's synchronous ``HyperBandScheduler`` (and
``HyperBandForBOHB``) *pause* trials and resume them later, which for hftune's function
trainable, which keeps no checkpoints, means training again from scratch. ``hyperband`` is
therefore asynchronous Hyperband: ASHA with several brackets (Li et al., "A System for
Massively Parallel Hyperparameter Tuning", 2020), and the median rule never pauses.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hftune.strategies.base import Strategy


class EarlyStopOptions(BaseModel):
    """ASHA's options. A trial is stopped at ``max_t`` evaluations at the latest."""

    model_config = ConfigDict(extra="forbid")

    grace_period: int = Field(default=1, ge=1)
    reduction_factor: float = Field(default=3.0, gt=1)
    max_t: int = Field(default=100, ge=1)

    @model_validator(mode="after")
    def _grace_within_max_t(self) -> EarlyStopOptions:
        if self.grace_period > self.max_t:
            raise ValueError(f"grace_period ({self.grace_period}) must be <= max_t "
                             f"({self.max_t}); both count evaluations")
        return self

    def max_brackets(self) -> int:
        """Brackets that can stop a trial: ``floor(log_rf(max_t / grace_period)) + 1``."""
        ratio = self.max_t / self.grace_period
        return int(math.floor(math.log(ratio) / math.log(self.reduction_factor) + 1e-9)) + 1


class HyperbandOptions(EarlyStopOptions):
    """Asynchronous Hyperband: ``brackets`` ASHA brackets (default: as many as fit)."""

    brackets: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _brackets_fit(self) -> HyperbandOptions:
        if self.brackets is not None and self.brackets > self.max_brackets():
            raise ValueError(
                f"brackets ({self.brackets}) must be <= {self.max_brackets()}: with "
                f"grace_period={self.grace_period}, reduction_factor={self.reduction_factor} "
                f"and max_t={self.max_t} a further bracket would never stop a trial")
        return self

    def bracket_count(self) -> int:
        return self.brackets if self.brackets is not None else self.max_brackets()


class MedianOptions(BaseModel):
    """Median stopping rule: stop a trial whose best value so far is worse than the median of
    the other trials' running means at the same evaluation."""

    model_config = ConfigDict(extra="forbid")

    grace_period: int = Field(default=1, ge=1)
    min_samples_required: int = Field(default=3, ge=1)


def async_hyperband(options: EarlyStopOptions, seed: int, brackets: int = 1) -> Any:
    """Ray's ``AsyncHyperBandScheduler`` on evaluations, its bracket draws seeded."""
    from hftune.strategies._wrappers import SeededAsyncHyperBand

    return SeededAsyncHyperBand(
        seed=seed, time_attr="training_iteration", grace_period=options.grace_period,
        reduction_factor=options.reduction_factor, max_t=options.max_t, brackets=brackets,
        stop_last_trials=True)


class ASHAStrategy(Strategy):
    """Random configs (seeded), stopped early by ASHA (one bracket)."""

    name = "asha"
    Options = EarlyStopOptions
    default_num_samples = 20

    def scheduler(self) -> Any:
        return async_hyperband(self.options, self.seed)


class HyperbandStrategy(Strategy):
    """Random configs (seeded), stopped early by asynchronous Hyperband (several brackets)."""

    name = "hyperband"
    Options = HyperbandOptions
    default_num_samples = 20

    def scheduler(self) -> Any:
        return async_hyperband(self.options, self.seed, self.options.bracket_count())


class MedianStrategy(Strategy):
    """Random configs (seeded), stopped by Ray's median stopping rule (never paused)."""

    name = "median"
    Options = MedianOptions
    default_num_samples = 20

    def scheduler(self) -> Any:
        from ray.tune.schedulers import MedianStoppingRule

        # min_time_slice=inf: with too few samples the rule would *pause* the trial.
        return MedianStoppingRule(
            time_attr="training_iteration", grace_period=self.options.grace_period,
            min_samples_required=self.options.min_samples_required, min_time_slice=math.inf,
            hard_stop=True)
