"""Synthetic learning curves and trainables for strategy tests: no HF, no downloads, seconds.

A config's *quality* ``q`` in ``[0, 1]`` is a smooth bowl around an optimum, in the unit
coordinates of the search space (log scale for ``loguniform``, position in the list for
categorical values). Its learning curve rises from ``start`` towards its final value
``low + (high - low) * q`` with the same shape for every config, so curves never cross: the
config that is best at the end is best at every evaluation. Configs with ``q < bad_below``
are *bad*: they stay flat at ``start``.

Every function here is pure; anything random takes an injected, seeded
:class:`numpy.random.Generator`. :func:`run_synthetic_study` runs a strategy's
:class:`~hftune.strategies.TunePlan` on Ray Tune (the caller owns ``ray.init``).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from ray.tune import Callback

from hftune.space import Dimension

Report = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class CurveSpec:
    """How configs map to learning curves (values of ``metric``, to be maximised)."""

    optimum: Mapping[str, float] = field(default_factory=dict)
    start: float = 0.5
    low: float = 0.5
    high: float = 0.9
    rate: float = 1.5
    noise: float = 0.0
    bad_below: float | None = None
    evaluations: int = 5
    epochs_key: str = "num_train_epochs"
    metric: str = "accuracy"


def unit_coordinate(dim: Dimension, value: Any) -> float:
    """Where ``value`` lies in ``dim``, scaled to ``[0, 1]``."""
    if dim.is_categorical:
        n = len(dim.values)
        return dim.values.index(value) / (n - 1) if n > 1 else 0.5
    low, high, x = float(dim.low), float(dim.high), float(value)
    if dim.kind == "loguniform":
        low, high, x = math.log(low), math.log(high), math.log(x)
    return min(max((x - low) / (high - low), 0.0), 1.0)


def quality(config: Mapping[str, Any], space: Mapping[str, Dimension], spec: CurveSpec) -> float:
    """The config's quality in ``[0, 1]``: 1 at ``spec.optimum``, lower with squared distance.

    Only dimensions named in ``spec.optimum`` count.
    """
    if not spec.optimum:
        return 1.0
    dist = [(unit_coordinate(space[k], config[k]) - opt) ** 2 for k, opt in spec.optimum.items()]
    return 1.0 - float(np.mean(dist))


def final_value(config: Mapping[str, Any], space: Mapping[str, Dimension],
                spec: CurveSpec) -> float:
    """The value the config's curve tends to (``start`` for bad configs)."""
    q = quality(config, space, spec)
    if spec.bad_below is not None and q < spec.bad_below:
        return spec.start
    return spec.low + (spec.high - spec.low) * q


def curve_value(config: Mapping[str, Any], space: Mapping[str, Dimension], spec: CurveSpec,
                t: int, rng: np.random.Generator | None = None) -> float:
    """The metric after evaluation ``t`` (1-based); Gaussian noise drawn from ``rng``."""
    final = final_value(config, space, spec)
    value = spec.start + (final - spec.start) * (1.0 - math.exp(-t / spec.rate))
    if spec.noise and rng is not None:
        value += float(rng.normal(0.0, spec.noise))
    return value


def config_seed(config: Mapping[str, Any]) -> int:
    """A stable integer for a config (the same in every process, unlike ``hash``)."""
    return zlib.crc32(repr(sorted(config.items())).encode())


def sample_config(space: Mapping[str, Dimension], rng: np.random.Generator) -> dict[str, Any]:
    """One uniformly random config (log-uniform for ``loguniform``): the random-search baseline."""
    out: dict[str, Any] = {}
    for name, dim in space.items():
        if dim.is_categorical:
            out[name] = dim.values[int(rng.integers(len(dim.values)))]
        elif dim.kind == "loguniform":
            out[name] = float(math.exp(rng.uniform(math.log(dim.low), math.log(dim.high))))
        else:
            out[name] = dim.clip(rng.uniform(dim.low, dim.high + (1 if dim.is_integer else 0)))
    return out


def run_synthetic_trial(config: Mapping[str, Any], space: Mapping[str, Dimension],
                        spec: CurveSpec, report: Report, *, seed: int = 0) -> int:
    """Report one curve, evaluation by evaluation, like a trial of the HF trainable.

    The trial trains ``config[spec.epochs_key]`` evaluations (``spec.evaluations`` when the
    config has no such key). Each record has ``spec.metric``, ``loss``, ``epoch``, ``step`` and
    ``trained_all``. ``report`` may raise to stop the trial. Returns the evaluations reported.
    """
    n = int(config.get(spec.epochs_key, spec.evaluations))
    rng = np.random.default_rng([seed, config_seed(config)])
    for t in range(1, n + 1):
        value = curve_value(config, space, spec, t, rng)
        report({spec.metric: value, "loss": 1.0 - value, "epoch": float(t), "step": 10 * t,
                "trained_all": t == n})
    return n


def ray_synthetic_trainable(config: dict[str, Any], space: Mapping[str, Dimension],
                            spec: CurveSpec, seed: int = 0) -> None:
    """Ray Tune function trainable around :func:`run_synthetic_trial`."""
    from ray import tune

    run_synthetic_trial(config, space, spec, tune.report, seed=seed)


@dataclass
class SyntheticTrial:
    """What one trial of a synthetic study did, in the order trials started."""

    trial_id: str
    config: dict[str, Any]
    values: list[float] = field(default_factory=list)
    evaluations: int = 0
    trained_all: bool = False
    errored: bool = False


class _Collector(Callback):
    """Ray Tune callback (driver side) that records each trial's config and reports."""

    def __init__(self, keys: list[str], metric: str) -> None:
        self.keys = keys
        self.metric = metric
        self.trials: dict[str, SyntheticTrial] = {}
        self.order: list[str] = []

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        # Ray's list of trials is in the order they were created (suggested).
        self.order = [t.trial_id for t in trials]

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        config = {k: trial.config[k] for k in self.keys if k in trial.config}
        self.trials.setdefault(trial.trial_id, SyntheticTrial(trial.trial_id, config))

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict,
                        **info: Any) -> None:
        rec = self.trials[trial.trial_id]
        rec.values.append(float(result[self.metric]))
        rec.evaluations = int(result["training_iteration"])
        rec.trained_all = bool(result.get("trained_all"))

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.trials[trial.trial_id].errored = True


def run_synthetic_study(strategy: Any, num_samples: int | None, spec: CurveSpec,
                        storage: Path, *, seed: int = 0,
                        max_concurrent: int | None = 1) -> list[SyntheticTrial]:
    """Run a strategy's plan on the synthetic trainable with Ray Tune; trials in the order
    they were created (the order of suggestions).

    ``strategy`` is a :class:`~hftune.strategies.Strategy`; its ``metric`` and ``mode`` are
    used, with the runner's ``TuneConfig`` settings (``reuse_actors=True``). With
    ``max_concurrent=1`` trials run one at a time, so a seeded strategy is reproducible.
    The caller owns ``ray.init``.
    """
    from ray import tune
    from ray.tune.search import Searcher

    plan = strategy.plan(num_samples, max_concurrent=max_concurrent)
    space = strategy.space
    collect = _Collector(list(space), spec.metric)
    trainable = tune.with_parameters(ray_synthetic_trainable, space=dict(space), spec=spec,
                                     seed=seed)
    tuner = tune.Tuner(
        tune.with_resources(trainable, {"cpu": 1}),
        param_space=plan.param_space,
        tune_config=tune.TuneConfig(
            metric=strategy.metric, mode=strategy.mode, search_alg=plan.searcher,
            scheduler=plan.scheduler, num_samples=plan.num_samples,
            # Ray ignores (with a warning) max_concurrent_trials for a ready-made generator;
            # Strategy.plan passed it to that generator instead.
            max_concurrent_trials=max_concurrent if isinstance(plan.searcher, Searcher) else None,
            reuse_actors=True),
        run_config=tune.RunConfig(name="synthetic", storage_path=str(Path(storage).resolve()),
                                  callbacks=[collect], verbose=0),
    )
    tuner.fit()
    return [collect.trials[i] for i in collect.order if i in collect.trials]
