"""Population Based Training and PB2, scheduled by Ray Tune; the HF side is in ``training``.

What is ours here: the options, the mutations in config syntax, and an explore step that keeps
every perturbed value inside its declared domain with its declared type (Ray's multiplicative
perturbation alone can leave the bounds, ray-project/ray#11936, and turns integers into floats).
Exploit and the restore rule live in :mod:`hftune.training.checkpoint`.
"""

from __future__ import annotations

import random
import warnings
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from hftune.config.loading import training_argument_fields
from hftune.errors import ConfigError, HftuneWarning, refuse_for_new_study
from hftune.space import Dimension, parse_space, python_value, to_ray_domain, unexplorable
from hftune.strategies.base import Strategy


class PBTOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    population: int = Field(default=8, ge=2)
    perturbation_interval: int = Field(default=1, ge=1, description="evaluations (epochs)")
    burn_in: int = Field(default=0, ge=0, description="evaluations before the first exploit")
    quantile_fraction: float = Field(default=0.25, gt=0, le=0.5)
    resample_probability: float = Field(default=0.25, ge=0, le=1)
    perturbation_factors: tuple[float, float] = (1.2, 0.8)
    mutations: dict[str, Any] | None = None
    synch: bool = False


def check_population_is_num_samples(name: str, population: int, requested: int | None) -> None:
    """PBT and PB2 run ``population`` trials; a different ``budget.num_samples`` is refused
    rather than silently ignored."""
    if requested is not None and requested != population:
        raise ConfigError(
            f"budget.num_samples: '{name}' runs strategy.population trials ({population}), not "
            f"{requested}; set strategy.population: {requested} and remove budget.num_samples")


def clip_config(config: Mapping[str, Any], space: Mapping[str, Dimension]) -> dict[str, Any]:
    """Every value of ``config`` that ``space`` declares, moved into its domain and type."""
    out = dict(config)
    for name, dim in space.items():
        if name in out:
            out[name] = dim.clip(python_value(out[name]))
    return out


# TrainingArguments that pick the optimizer: an exploit loads the donor's optimizer state, which
# fits the donor's optimizer only.
OPTIMIZER_ARGS = ("optim", "optim_args", "optim_target_modules")
# LR schedules that are not a function of the step: a restore cannot carry them over (their state
# does not load into another schedule) nor continue them (a restore sets the configured lr).
UNRESTORABLE_SCHEDULES = ("reduce_lr_on_plateau", "greedy")


def check_restorable(space: Mapping[str, Dimension], training: Mapping[str, Any]) -> None:
    """Refuse what an exploit's restore cannot honour: a searched optimizer (members would load
    each other's optimizer state) and a schedule that is not step-based, fixed or searched.
    Step-based schedules (linear, cosine, constant, ...) may be searched: a restored member
    follows its own."""
    for key in OPTIMIZER_ARGS:
        if key in space:
            refuse_for_new_study(
                f"search_space.{key}: PBT members load each other's optimizer state, which fits "
                f"one optimizer only; set training.{key} instead")
    searched = space["lr_scheduler_type"].values if "lr_scheduler_type" in space else ()
    for where, values in (("training", (training.get("lr_scheduler_type"),)),
                          ("search_space", searched)):
        for value in values:
            if str(getattr(value, "value", value)) in UNRESTORABLE_SCHEDULES:
                refuse_for_new_study(
                    f"{where}.lr_scheduler_type: {value!r} keeps state that is not a position on "
                    f"a step-based schedule, which a PBT restore cannot carry over; use a "
                    f"step-based schedule (linear, cosine, constant, ...)")


class _Clip:
    """Ray's ``custom_explore_fn``: clip after Ray's perturbation (picklable, no lambdas)."""

    def __init__(self, space: Mapping[str, Dimension]) -> None:
        self.space = dict(space)

    def __call__(self, config: dict[str, Any]) -> dict[str, Any]:
        return clip_config(config, self.space)


class PBTStrategy(Strategy):
    """PBT: ``population`` trials; every ``perturbation_interval`` evaluations the bottom
    ``quantile_fraction`` copy a top trial's checkpoint (exploit) and perturb its config
    (explore: lists move to a neighbour value, numbers are scaled by a perturbation factor and
    clipped, each value resampled with ``resample_probability``)."""

    name = "pbt"
    Options = PBTOptions
    needs_checkpoints = True

    def check(self) -> None:
        check_restorable(self.space, self.context.training)
        self.mutation_space()
        fixed = unexplorable(self.space)
        if fixed and self.options.mutations is None:
            warnings.warn(HftuneWarning(
                f"strategy: {', '.join(fixed)} "
                f"{'shapes' if len(fixed) == 1 else 'shape'} the adapter's weights, so PBT draws "
                f"{'it' if len(fixed) == 1 else 'them'} for the first population only and never "
                f"explores {'it' if len(fixed) == 1 else 'them'} (a member that exploits takes "
                f"its donor's)"), stacklevel=2)

    def mutation_space(self) -> dict[str, Dimension]:
        """What explore may change: ``mutations`` (each also in the search space), by default
        the whole search space but the adapter keys that change its weights' shapes
        (:func:`hftune.space.unexplorable`); naming one of those is refused."""
        raw = self.options.mutations
        if raw is None:
            fixed = set(unexplorable(self.space))
            return {k: d for k, d in self.space.items() if k not in fixed}
        mutations = parse_space(raw, training_fields=set(training_argument_fields()),
                                section="strategy.mutations")
        unknown = [k for k in mutations if k not in self.space]
        if unknown:
            raise ConfigError(f"strategy.mutations.{unknown[0]}: also declare it in search_space "
                              f"(the initial population is drawn from there)")
        fixed = unexplorable(mutations)
        if fixed:
            raise ConfigError(f"strategy.mutations.{fixed[0]}: changes the shape of the "
                              f"adapter's weights, so a donor's checkpoint would not load into "
                              f"the explored model; search it in search_space only (the first "
                              f"population) and leave it out of mutations")
        return mutations

    def check_num_samples(self, requested: int | None) -> None:
        check_population_is_num_samples(self.name, self.options.population, requested)

    def num_samples(self, requested: int | None) -> int:
        return self.options.population

    def scheduler(self) -> Any:
        from ray.tune.schedulers import PopulationBasedTraining

        random.seed(self.seed)  # Ray's PBT draws its explore steps from `random`
        mutations = self.mutation_space()
        return PopulationBasedTraining(
            time_attr="training_iteration",
            perturbation_interval=self.options.perturbation_interval,
            burn_in_period=self.options.burn_in,
            hyperparam_mutations={n: list(d.values) if d.is_categorical else to_ray_domain(d)
                                  for n, d in mutations.items()},
            quantile_fraction=self.options.quantile_fraction,
            resample_probability=self.options.resample_probability,
            perturbation_factors=tuple(self.options.perturbation_factors),
            custom_explore_fn=_Clip(mutations),
            synch=self.options.synch,
        )


class PB2Options(BaseModel):
    model_config = ConfigDict(extra="forbid")

    population: int = Field(default=8, ge=2)
    perturbation_interval: int = Field(default=1, ge=1)
    quantile_fraction: float = Field(default=0.25, gt=0, le=0.5)
    bounds: dict[str, tuple[float, float]] | None = None
    synch: bool = False


class PB2Strategy(Strategy):
    """PB2: PBT whose explore step is a GP-bandit over continuous ``bounds`` (default: every
    numeric dimension of the search space)."""

    name = "pb2"
    Options = PB2Options
    needs_checkpoints = True

    @classmethod
    def check_available(cls) -> None:
        try:
            import GPy  # noqa: F401
            import sklearn  # noqa: F401
        except ImportError:
            raise ConfigError("strategy.name: 'pb2' needs GPy (pip install 'hftune[pb2]')"
                              ) from None

    def check(self) -> None:
        check_restorable(self.space, self.context.training)
        self.bounds()

    def bounds(self) -> dict[str, list[float]]:
        """The GP-bandit's box: ``bounds`` (numeric dimensions of the search space, lo < hi,
        inside the dimension's range: a value outside would be clipped back into it), by
        default every numeric dimension of the space with its range."""
        if self.options.bounds:
            for key, (lo, hi) in self.options.bounds.items():
                dim = self.space.get(key)
                if dim is None or dim.is_categorical:
                    raise ConfigError(f"strategy.bounds.{key}: not a numeric dimension of "
                                      f"search_space (PB2 explores inside the space)")
                if not lo < hi:
                    raise ConfigError(f"strategy.bounds.{key}: lo must be below hi")
                assert dim.low is not None and dim.high is not None
                if lo < dim.low - 1e-12 or hi > dim.high + 1e-12:
                    raise ConfigError(
                        f"strategy.bounds.{key}: [{lo}, {hi}] reaches outside search_space.{key} "
                        f"({dim.describe()}); PB2 explores inside the search space, so give "
                        f"bounds within [{_number(dim.low)}, {_number(dim.high)}]")
            fixed = unexplorable(self.options.bounds)
            if fixed:
                raise ConfigError(f"strategy.bounds.{fixed[0]}: changes the shape of the "
                                  f"adapter's weights, so PB2 may not explore it; search it in "
                                  f"search_space only (the first population)")
            return {k: [float(lo), float(hi)] for k, (lo, hi) in self.options.bounds.items()}
        fixed = set(unexplorable(self.space))
        out = {n: [d.low, d.high] for n, d in self.space.items()
               if not d.is_categorical and n not in fixed}
        if not out:
            raise ConfigError("strategy.bounds: pb2 needs at least one numeric dimension")
        return out

    def check_num_samples(self, requested: int | None) -> None:
        check_population_is_num_samples(self.name, self.options.population, requested)

    def num_samples(self, requested: int | None) -> int:
        return self.options.population

    def scheduler(self) -> Any:
        from ray.tune.schedulers.pb2 import PB2

        random.seed(self.seed)
        return PB2(time_attr="training_iteration",
                   perturbation_interval=self.options.perturbation_interval,
                   hyperparam_bounds=self.bounds(),
                   quantile_fraction=self.options.quantile_fraction,
                   custom_explore_fn=_Clip(self.space), synch=self.options.synch)


def _number(x: float) -> int | float:
    return int(x) if float(x).is_integer() else x
