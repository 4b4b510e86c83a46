"""The strategy role: turn a validated config into Ray Tune's searcher, scheduler and space.

A strategy decides *what to try* (searcher, param space) and *when to stop or clone*
(scheduler); it never runs anything. Each one is a small subclass registered by name.
"""

from __future__ import annotations

import itertools
import math
from abc import ABC
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from hftune.config.schema import TrialContext
from hftune.space import Dimension, grid_size, to_ray_domain, to_ray_param_space


class NoOptions(BaseModel):
    """A strategy without options of its own."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class TunePlan:
    """What a strategy hands the runner: Ray Tune's inputs, nothing else."""

    param_space: dict[str, Any]
    searcher: Any
    scheduler: Any
    num_samples: int


class Strategy(ABC):
    """Base class. Subclasses set ``name``, ``Options`` and override the builders they need."""

    name: ClassVar[str]
    Options: ClassVar[type[BaseModel]] = NoOptions
    default_num_samples: ClassVar[int] = 1
    needs_checkpoints: ClassVar[bool] = False
    # the step of a multi-step strategy its trials belong to (TrialRecord.phase); None: one step
    phase: ClassVar[str | None] = None

    def __init__(self, options: BaseModel, space: Mapping[str, Dimension], metric: str,
                 mode: str, seed: int, *, score: str = "best",
                 context: TrialContext | None = None) -> None:
        self.options = options
        self.space = dict(space)
        self.metric = metric
        self.mode = mode
        self.seed = seed
        self.score = score
        # the fixed `training` values and the evaluation cadence (StudyConfig's)
        self.context = context if context is not None else TrialContext()
        self.max_concurrent: int | None = None

    @classmethod
    def check_available(cls) -> None:
        """Raise :class:`~hftune.errors.ConfigError` if an optional dependency is missing."""
        return None

    def check(self) -> None:
        """Raise :class:`~hftune.errors.ConfigError` for options that do not fit the search
        space. Runs when the config is validated, before anything is written; needs only the
        options and the space (not the metric)."""
        return None

    def param_space(self) -> dict[str, Any]:
        """Ray Tune ``param_space``; by default every dimension is a sampled domain."""
        return {n: to_ray_domain(d) for n, d in self.space.items()}

    def searcher(self) -> Any:
        """A Ray Tune search algorithm; by default Ray's grid/random generator, seeded."""
        from ray.tune.search.basic_variant import BasicVariantGenerator

        return BasicVariantGenerator(random_state=self.seed,
                                     max_concurrent=self.max_concurrent or 0)

    def scheduler(self) -> Any:
        """A Ray Tune scheduler, or ``None`` for FIFO (every trial runs to the end)."""
        return None

    def check_num_samples(self, requested: int | None) -> None:
        """Raise :class:`~hftune.errors.ConfigError` when ``budget.num_samples`` is set but
        this strategy would run another number of trials (it would be silently ignored).
        Runs at validation, like :meth:`check`."""
        return None

    def num_samples(self, requested: int | None) -> int:
        return requested if requested is not None else self.default_num_samples

    def total_trials(self, requested: int | None) -> int:
        """How many trials the plan runs (``num_samples``; the grid multiplies it)."""
        return self.num_samples(requested)

    def plan(self, num_samples: int | None, max_concurrent: int | None = None) -> TunePlan:
        """Ray Tune's inputs. ``max_concurrent`` must be passed here too: Ray ignores
        ``TuneConfig.max_concurrent_trials`` for a ready-made ``BasicVariantGenerator``."""
        self.max_concurrent = max_concurrent
        return TunePlan(self.param_space(), self.searcher(), self.scheduler(),
                        self.num_samples(num_samples))


# Evaluations standing for "no cap" where a trial's length is not known from the config alone.
UNCAPPED_EVALUATIONS = 1_000_000


def evaluations_per_trial(values: Mapping[str, Any], context: TrialContext) -> int | None:
    """How many evaluations (Ray's ``training_iteration``, what ``max_t`` and ``grace_period``
    count) a trial with these ``TrainingArguments`` values makes, or ``None`` where that depends
    on the number of training rows, which the config does not know.

    ``values``: the trial's values over the fixed ``training`` ones (a missing
    ``num_train_epochs`` is transformers' default). With ``evaluation.every: epoch``: one per
    epoch, a last partial epoch included (``ceil(num_train_epochs)``), unknown when
    ``max_steps`` is set. With ``every: steps``: ``ceil(max_steps / eval_steps)`` (transformers
    evaluates at each multiple of ``eval_steps`` and at the last step), unknown without
    ``max_steps``.
    """
    from hftune.config.training_args import field_default

    max_steps = int(values.get("max_steps", field_default("max_steps")))
    if context.eval_every == "steps":
        if max_steps > 0 and context.eval_steps:
            return math.ceil(max_steps / context.eval_steps)
        return None
    if max_steps > 0:
        return None
    epochs = float(values.get("num_train_epochs", field_default("num_train_epochs")))
    return max(1, math.ceil(epochs))


# Grid axes whose larger values make a trial train longer.
LENGTH_AXES = ("num_train_epochs", "max_steps")


def _length(point: Mapping[str, Any]) -> tuple[float, ...]:
    return tuple(v if isinstance(v, int | float) and not isinstance(v, bool) else 0
                 for v in (point.get(axis, 0) for axis in LENGTH_AXES))


def grid_points_long_first(space: Mapping[str, Dimension]) -> list[dict[str, Any]]:
    """Every point of the grid axes, the longest trials first (by ``LENGTH_AXES``).

    Points of equal length keep the order of the axes' values (the first axis slowest). A
    study that ends with its long trials ends with one worker busy and the others idle; run
    longest first, the grid's trials fill the workers evenly (measured: ``benchmarks/RESULTS.md``,
    P1). Ray alone runs a grid with its axes sorted by name, so a length axis called
    ``num_train_epochs`` would change faster than ``per_device_train_batch_size``.
    """
    axes = {name: list(dim.values) for name, dim in space.items() if dim.is_grid}
    points = [dict(zip(axes, values, strict=True)) for values in itertools.product(*axes.values())]
    return sorted(points, key=_length, reverse=True)  # a stable sort, also reversed


class GridStrategy(Strategy):
    """Every point of the grid axes (lists), longest trials first; sampled domains are drawn
    once per grid point (``num_samples`` times).

    A space of grid axes only, run ``num_samples`` > 1 times, would repeat identical trials:
    there repeat ``i`` of a point trains with seed ``base + i`` (``base``: ``training.seed``,
    else the study seed), so the repeats measure seed noise. A searched ``seed`` axis is kept.
    """

    name = "grid"

    def param_space(self) -> dict[str, Any]:
        return to_ray_param_space(self.space)

    def total_trials(self, requested: int | None) -> int:
        return self.num_samples(requested) * grid_size(self.space)

    def plan(self, num_samples: int | None, max_concurrent: int | None = None) -> TunePlan:
        """Ray's grid generator, given the grid's points in hftune's order
        (:func:`grid_points_long_first`), each point once per sample; Ray's ``num_samples``
        counts the points (each fixes the grid axes of one trial)."""
        from ray.tune.search.basic_variant import BasicVariantGenerator

        self.max_concurrent = max_concurrent
        samples = self.num_samples(num_samples)
        points = [{**p, **self._repeat_seed(i)} if samples > 1 else p
                  for p in grid_points_long_first(self.space) for i in range(samples)]
        searcher = BasicVariantGenerator(points_to_evaluate=points, random_state=self.seed,
                                         max_concurrent=max_concurrent or 0)
        param_space = self.param_space()
        seeds = sorted({p["seed"] for p in points if "seed" in p})
        if seeds:  # Ray fills a point's keys into the param space's: the repeats' seeds
            from ray import tune

            param_space["seed"] = tune.choice(seeds)
        return TunePlan(param_space, searcher, self.scheduler(), len(points))


    def _repeat_seed(self, repeat: int) -> dict[str, int]:
        """``{"seed": base + repeat}`` where repeats of a point would be identical, else {}."""
        if "seed" in self.space or not all(d.is_grid for d in self.space.values()):
            return {}
        return {"seed": int(self.context.training.get("seed", self.seed)) + repeat}


class RandomStrategy(Strategy):
    """Independent random configs; grid lists are treated as choices."""

    name = "random"
    default_num_samples = 10
