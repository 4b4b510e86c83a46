"""``seeds-then-pbt``: screen seeds at one fixed config with early stopping, then PBT from the
best seeds — the two-step recipe the reference study recommends.

Step 1 (``screen``) trains ``seeds`` trials that differ only in ``seed`` (classification-head
initialisation and data order), all at one fixed config, under ASHA; fine-tuning varies by
several points across seeds, and a bad seed shows early. Step 2 (``pbt``) runs PBT whose
population starts from the ``top_k`` best seeds (each seed ``population / top_k`` times) with
the other hyperparameters drawn from the search space. Both steps write to the same study
folder; each trial record says which step it belongs to (``phase``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hftune.space import Dimension
from hftune.strategies._pbt import PBTOptions, PBTStrategy
from hftune.strategies.base import Strategy


class SeedsThenPBTOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seeds: int = Field(default=8, ge=2, description="seeds screened in step 1")
    top_k: int = Field(default=4, ge=1, description="seeds PBT starts from")
    grace_period: int = Field(default=1, ge=1)
    reduction_factor: int = Field(default=2, ge=2)
    screen_config: dict[str, Any] | None = None
    population: int = Field(default=8, ge=2)
    perturbation_interval: int = Field(default=1, ge=1)
    quantile_fraction: float = Field(default=0.25, gt=0, le=0.5)
    resample_probability: float = Field(default=0.25, ge=0, le=1)
    perturbation_factors: tuple[float, float] = (1.2, 0.8)
    mutations: dict[str, Any] | None = None
    synch: bool = False

    @model_validator(mode="after")
    def _top_k_fits(self) -> SeedsThenPBTOptions:
        if self.top_k > self.seeds:
            raise ValueError(f"top_k ({self.top_k}) cannot exceed seeds ({self.seeds})")
        return self


def fixed_value(dim: Dimension) -> Any:
    """A representative value: the middle of a list, the centre of a range (geometric for
    ``loguniform``), in the dimension's type."""
    if dim.is_categorical:
        return dim.values[len(dim.values) // 2]
    if dim.kind == "loguniform":
        return dim.clip(math.sqrt(dim.low * dim.high))
    return dim.clip((dim.low + dim.high) / 2)


def top_seeds(trials: Sequence[Any], metric: str, mode: str, k: int, rule: str = "best"
              ) -> list[int]:
    """The ``k`` seeds whose screening trials scored best (ties: lower seed first)."""
    scored = [(t.score(metric, mode, rule), int(t.config["seed"])) for t in trials
              if "seed" in t.config and t.score(metric, mode, rule) is not None]
    sign = -1.0 if mode == "max" else 1.0
    scored.sort(key=lambda sv: (sign * sv[0], sv[1]))
    return [seed for _, seed in scored[:k]]


class SeedsThenPBTStrategy(Strategy):
    """Step 1 of ``seeds-then-pbt`` (the seed screen); :meth:`next_phase` builds step 2."""

    name = "seeds-then-pbt"
    Options = SeedsThenPBTOptions
    phase = "screen"

    def screen_config(self) -> dict[str, Any]:
        fixed = {name: fixed_value(dim) for name, dim in self.space.items()}
        for name, value in (self.options.screen_config or {}).items():
            fixed[name] = self.space[name].clip(value) if name in self.space else value
        return fixed

    def seeds(self) -> list[int]:
        return [self.seed + 1 + i for i in range(self.options.seeds)]

    def param_space(self) -> dict[str, Any]:
        from ray import tune

        return {**self.screen_config(), "seed": tune.grid_search(self.seeds())}

    def scheduler(self) -> Any:
        from ray.tune.schedulers import ASHAScheduler

        epochs = int(self.screen_config().get("num_train_epochs", 3))
        return ASHAScheduler(time_attr="training_iteration", max_t=max(epochs, 1),
                             grace_period=min(self.options.grace_period, max(epochs, 1)),
                             reduction_factor=self.options.reduction_factor)

    def num_samples(self, requested: int | None) -> int:
        return 1

    def total_trials(self, requested: int | None) -> int:
        return self.options.seeds

    def next_phase(self, trials: Sequence[Any]) -> Strategy | None:
        """Step 2: PBT from the best screened seeds (None if no screening trial scored)."""
        seeds = top_seeds(trials, self.metric, self.mode, self.options.top_k, self.score)
        return self._pbt_from(seeds) if seeds else None

    def check(self) -> None:
        self._pbt_from([self.seed]).check()  # step 2's mutations, before step 1 runs

    def _pbt_from(self, seeds: list[int]) -> Strategy:
        opts = self.options
        pbt_options = PBTOptions(
            population=opts.population, perturbation_interval=opts.perturbation_interval,
            quantile_fraction=opts.quantile_fraction,
            resample_probability=opts.resample_probability,
            perturbation_factors=opts.perturbation_factors, mutations=opts.mutations,
            synch=opts.synch)
        return _PBTFromSeeds(pbt_options, self.space, self.metric, self.mode, self.seed,
                             score=self.score, seeds=seeds)


class _PBTFromSeeds(PBTStrategy):
    """PBT whose members start from the given seeds (each about ``population / len(seeds)``
    times); the seed is not mutated."""

    phase = "pbt"

    def __init__(self, *args: Any, seeds: list[int], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.start_seeds = seeds

    def param_space(self) -> dict[str, Any]:
        from ray import tune

        return {**super().param_space(), "seed": tune.grid_search(self.start_seeds)}

    def num_samples(self, requested: int | None) -> int:
        return max(1, math.ceil(self.options.population / len(self.start_seeds)))
