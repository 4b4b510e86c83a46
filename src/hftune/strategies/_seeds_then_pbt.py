"""``seeds-then-pbt``: screen seeds at one fixed config with early stopping, then PBT from the
best seeds — the two-step recipe the reference study recommends.

Step 1 (``screen``) trains ``seeds`` trials that differ only in ``seed`` (classification-head
initialisation and data order), all at one fixed config, under ASHA; fine-tuning varies by
several points across seeds, and a bad seed shows early. Step 2 (``pbt``) runs exactly
``population`` PBT members, started from the ``top_k`` best seeds in turn (best first: each seed
starts ``population // top_k`` members, the best ``population % top_k`` one more), with the
other hyperparameters drawn from the search space. Both steps write to the same study folder;
each trial record says which step it belongs to (``phase``).

The screen's config is the centre of the search space (:func:`fixed_value`) unless
``screen_config`` sets a value; ``screen_config`` is checked with the config (keys are search
space keys or ``TrainingArguments`` fields, values inside their dimension or accepted by
``TrainingArguments``). ASHA's ``max_t`` is the number of evaluations a screen trial makes
(:func:`~hftune.strategies.base.evaluations_per_trial`); where that depends on the number of
training rows (``evaluation.every: steps`` without ``max_steps``), there is no cap: ASHA's
rungs (``grace_period × reduction_factor^k`` evaluations) still stop trials, and a trial that
passes them ends with its training.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hftune.config.loading import (
    CONFIG_SECTION_OF,
    MANAGED_TRAINING_ARGS,
    training_argument_fields,
)
from hftune.config.training_args import (
    check_together,
    check_value,
    hub_error,
    is_hub_argument,
)
from hftune.errors import ConfigError
from hftune.space import Dimension, is_training_key
from hftune.strategies._pbt import PBTOptions, PBTStrategy
from hftune.strategies._schedulers import EarlyStopOptions, async_hyperband
from hftune.strategies.base import UNCAPPED_EVALUATIONS, Strategy, evaluations_per_trial


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
        if self.top_k > self.population:
            raise ValueError(f"top_k ({self.top_k}) cannot exceed population "
                             f"({self.population}): each of the top_k seeds starts a member")
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
        """The screen's fixed config: the centre of every dimension, or ``screen_config``'s
        value (in the dimension's type), plus ``screen_config``'s other fields."""
        fixed = {name: fixed_value(dim) for name, dim in self.space.items()}
        for name, value in (self.options.screen_config or {}).items():
            fixed[name] = self.space[name].clip(value) if name in self.space else value
        return fixed

    def seeds(self) -> list[int]:
        return [self.seed + 1 + i for i in range(self.options.seeds)]

    def param_space(self) -> dict[str, Any]:
        from ray import tune

        return {**self.screen_config(), "seed": tune.grid_search(self.seeds())}

    def screen_evaluations(self) -> int | None:
        """Evaluations a screen trial makes (its config over the fixed ``training`` values),
        or ``None`` where that depends on the number of training rows."""
        return evaluations_per_trial({**self.context.training, **self.screen_config()},
                                     self.context)

    def scheduler(self) -> Any:
        evaluations = self.screen_evaluations()
        max_t = evaluations if evaluations is not None else UNCAPPED_EVALUATIONS
        max_t = max(max_t, 1)
        options = EarlyStopOptions(grace_period=min(self.options.grace_period, max_t),
                                   reduction_factor=self.options.reduction_factor, max_t=max_t)
        return async_hyperband(options, self.seed)

    def num_samples(self, requested: int | None) -> int:
        return 1

    def total_trials(self, requested: int | None) -> int:
        return self.options.seeds

    def check_num_samples(self, requested: int | None) -> None:
        if requested is not None:
            opts = self.options
            raise ConfigError(
                f"budget.num_samples: 'seeds-then-pbt' runs strategy.seeds screen trials "
                f"({opts.seeds}), then strategy.population PBT members ({opts.population}); "
                f"set those and remove budget.num_samples")

    def next_phase(self, trials: Sequence[Any]) -> Strategy | None:
        """Step 2: PBT from the best screened seeds (None if no screening trial scored)."""
        seeds = top_seeds(trials, self.metric, self.mode, self.options.top_k, self.score)
        return self._pbt_from(seeds) if seeds else None

    def check(self) -> None:
        """``screen_config`` fits the space and ``TrainingArguments`` (each value, then the
        screen's whole config); step 2's mutations fit the space (before step 1 runs)."""
        for name, value in (self.options.screen_config or {}).items():
            self._check_screen_value(name, value)
        if self.options.screen_config:
            check_together("strategy.screen_config", self.screen_config(), self.context)
        self._pbt_from([self.seed]).check()

    def _check_screen_value(self, name: str, value: Any) -> None:
        where = f"strategy.screen_config.{name}"
        if name == "seed":
            raise ConfigError(f"{where}: the screen gives each trial its own seed (study seed + "
                              f"1 .. strategy.seeds); remove it")
        if is_hub_argument(name):
            raise hub_error(where)
        if name in MANAGED_TRAINING_ARGS or name in CONFIG_SECTION_OF:
            raise ConfigError(f"{where}: set by hftune itself; remove it")
        dim = self.space.get(name)
        if dim is not None:
            if not dim.contains(value):
                raise ConfigError(
                    f"{where}: {value!r} is not in search_space.{name} ({dim.describe()}); "
                    f"the screen's config must be one the search space allows")
        elif not is_training_key(name):
            raise ConfigError(f"{where}: not in search_space; declare search_space.{name} "
                              f"(model-config and adapter keys are checked there)")
        elif name not in training_argument_fields():
            raise ConfigError(f"{where}: neither a search_space key nor a TrainingArguments "
                              f"field; check the spelling")
        else:
            check_value(where, name, value, self.context)

    def _pbt_from(self, seeds: list[int]) -> Strategy:
        opts = self.options
        pbt_options = PBTOptions(
            population=opts.population, perturbation_interval=opts.perturbation_interval,
            quantile_fraction=opts.quantile_fraction,
            resample_probability=opts.resample_probability,
            perturbation_factors=opts.perturbation_factors, mutations=opts.mutations,
            synch=opts.synch)
        return _PBTFromSeeds(pbt_options, self.space, self.metric, self.mode, self.seed,
                             score=self.score, context=self.context, seeds=seeds)


def member_seeds(seeds: Sequence[int], population: int) -> list[int]:
    """The starting seed of each of ``population`` members: ``seeds`` (best first) in turn, so
    that each starts ``population // len(seeds)`` members and the first
    ``population % len(seeds)`` one more."""
    return [seeds[i % len(seeds)] for i in range(population)]


class _PBTFromSeeds(PBTStrategy):
    """PBT whose ``population`` members start from the given seeds (:func:`member_seeds`); the
    seed is not mutated."""

    phase = "pbt"

    def __init__(self, *args: Any, seeds: list[int], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.start_seeds = seeds

    def param_space(self) -> dict[str, Any]:
        from ray import tune

        seeds = member_seeds(self.start_seeds, self.options.population)
        return {**super().param_space(), "seed": tune.grid_search(seeds)}

    def num_samples(self, requested: int | None) -> int:
        return 1  # the grid over the members' seeds makes the population

    def total_trials(self, requested: int | None) -> int:
        return self.options.population
