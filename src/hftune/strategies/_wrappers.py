"""Thin wrappers around Ray Tune classes (imported only when a study is planned, not validated).

:class:`ScoredSearcher`: what a model-based searcher learns follows ``strategy.score``.

Ray hands a searcher the trial's *last* result when the trial completes (and, when a scheduler
stops a trial, that result never reaches ``on_trial_result``). hftune scores a trial by its
best evaluation by default (``strategy.score: best``), so this wrapper keeps each trial's
running best and hands the inner searcher that value instead of the last one:

* ``on_trial_result``: the metric is replaced by the running best (``score: best``);
* ``on_trial_complete``: likewise, with the final result counted too; ``score: last`` passes
  results through unchanged. An errored trial is passed through as Ray reports it (the inner
  searcher records a failure, not a score).

It also snaps suggestions onto the space (``Dimension.clip``: integer types, ``quniform``'s
step; Ray's BOHB converter drops quantization), tags results with a ``hyperband_info.budget``
for BOHB's per-budget models when ``budget_key`` is set, and, for searchers that draw from
numpy's global random state (hpbandster's BOHB), runs ``suggest`` under a seed taken from its
own seeded generator, leaving the global state as it was.
"""

from __future__ import annotations

import contextlib
import math
import pickle
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from ray.tune.schedulers import AsyncHyperBandScheduler
from ray.tune.search import Searcher

from hftune.space import Dimension


@contextlib.contextmanager
def global_numpy_seed(rng: np.random.Generator | None) -> Iterator[None]:
    """Run the block with numpy's global random state seeded from ``rng``, then restore it.

    A no-op when ``rng`` is ``None``. For third-party code that calls ``np.random`` directly.
    """
    if rng is None:
        yield
        return
    saved = np.random.get_state()
    np.random.seed(int(rng.integers(2**32)))
    try:
        yield
    finally:
        np.random.set_state(saved)


def snap(dim: Dimension, value: Any) -> Any:
    """``value`` as the space holds it: a plain Python number, inside ``dim``, on its step,
    and for categorical values the very object the config lists."""
    if isinstance(value, np.generic):
        value = value.item()
    value = dim.clip(value)
    if dim.is_categorical:
        return dim.values[dim.values.index(value)]
    return value


class ScoredSearcher(Searcher):
    """Wraps a Ray ``Searcher`` so that it learns each trial's ``score`` (best or last)."""

    def __init__(self, searcher: Searcher, *, score: str = "best",
                 space: Mapping[str, Dimension] | None = None, budget_key: str | None = None,
                 numpy_seed: int | None = None) -> None:
        if score not in ("best", "last"):
            raise ValueError(f"score must be 'best' or 'last', got {score!r}")
        self.searcher = searcher
        self.score = score
        self.space = dict(space or {})
        self.budget_key = budget_key
        self._rng = np.random.default_rng(numpy_seed) if numpy_seed is not None else None
        self._best: dict[str, float] = {}
        self._budget_seen: dict[str, float] = {}
        super().__init__(metric=searcher.metric, mode=searcher.mode)

    # -- properties Ray sets through the wrapper -------------------------------------------

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict,
                              **spec: Any) -> bool:
        done = self.searcher.set_search_properties(metric, mode, config, **spec)
        self._metric = self.searcher.metric or metric
        self._mode = self.searcher.mode or mode
        return done

    def set_max_concurrency(self, max_concurrent: int) -> bool:
        return self.searcher.set_max_concurrency(max_concurrent)

    # -- suggestions ------------------------------------------------------------------------

    def suggest(self, trial_id: str) -> dict | None:
        with global_numpy_seed(self._rng):
            config = self.searcher.suggest(trial_id)
        if not isinstance(config, dict):
            return config
        return {k: snap(self.space[k], v) if k in self.space else v for k, v in config.items()}

    # -- what the inner searcher learns -----------------------------------------------------

    def _better(self, a: float, b: float) -> bool:
        return a > b if self.mode == "max" else a < b

    def _update(self, trial_id: str, result: Mapping[str, Any] | None) -> float | None:
        value = None if result is None else result.get(self.metric)
        if value is not None and np.isfinite(value):
            best = self._best.get(trial_id)
            if best is None or self._better(float(value), best):
                self._best[trial_id] = float(value)
        return self._best.get(trial_id)

    def _scored(self, result: dict, best: float | None) -> dict:
        out = dict(result)
        if self.score == "best" and best is not None:
            out[self.metric] = best
        if self.budget_key is not None and self.budget_key in out:
            out["hyperband_info"] = {"budget": out[self.budget_key]}
        return out

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        best = self._update(trial_id, result)
        if self.budget_key is not None and self.budget_key in result:
            self._budget_seen[trial_id] = float(result[self.budget_key])
        self.searcher.on_trial_result(trial_id, self._scored(result, best))

    def on_trial_complete(self, trial_id: str, result: dict | None = None,
                          error: bool = False) -> None:
        best = self._update(trial_id, result)
        self._best.pop(trial_id, None)
        seen = self._budget_seen.pop(trial_id, -math.inf)
        if (not error and result is not None and self.budget_key is not None
                and float(result.get(self.budget_key, -math.inf)) > seen):
            # Ray withholds the result on which a scheduler stopped the trial from
            # on_trial_result; a per-budget model (BOHB) still learns from it.
            self.searcher.on_trial_result(trial_id, self._scored(result, best))
        if error or result is None:
            self.searcher.on_trial_complete(trial_id, result=result, error=error)
            return
        self.searcher.on_trial_complete(trial_id, result=self._scored(result, best), error=error)

    # -- everything else goes to the inner searcher -----------------------------------------

    def add_evaluated_point(self, parameters: dict, value: float, error: bool = False,
                            pruned: bool = False,
                            intermediate_values: list[float] | None = None) -> None:
        self.searcher.add_evaluated_point(parameters, value, error, pruned, intermediate_values)

    def on_pause(self, trial_id: str) -> None:
        self.searcher.on_pause(trial_id)

    def on_unpause(self, trial_id: str) -> None:
        self.searcher.on_unpause(trial_id)

    def get_state(self) -> dict:
        return {"score": self.score, "best": dict(self._best),
                "budget_seen": dict(self._budget_seen),
                "rng": self._rng.bit_generator.state if self._rng is not None else None}

    def set_state(self, state: dict) -> None:
        self.score = state["score"]
        self._best = dict(state["best"])
        self._budget_seen = dict(state.get("budget_seen", {}))
        if self._rng is not None and state.get("rng") is not None:
            self._rng.bit_generator.state = state["rng"]

    def save(self, checkpoint_path: str) -> None:
        """One file holding the inner searcher's own checkpoint and this wrapper's state."""
        inner = Path(checkpoint_path + ".inner")
        self.searcher.save(str(inner))
        payload = {"inner": inner.read_bytes(), "wrapper": self.get_state()}
        inner.unlink()
        Path(checkpoint_path).write_bytes(pickle.dumps(payload))

    def restore(self, checkpoint_path: str) -> None:
        payload = pickle.loads(Path(checkpoint_path).read_bytes())  # noqa: S301 - our own file
        inner = Path(checkpoint_path + ".inner")
        inner.write_bytes(payload["inner"])
        try:
            self.searcher.restore(str(inner))
        finally:
            inner.unlink()
        self.set_state(payload["wrapper"])


class SeededAsyncHyperBand(AsyncHyperBandScheduler):
    """Ray's ``AsyncHyperBandScheduler`` whose bracket draw is seeded.

    Ray assigns each new trial a bracket with ``np.random.choice`` on numpy's global state;
    here that draw runs under :func:`global_numpy_seed` with this scheduler's own generator,
    so the same seed and trial order give the same brackets. The algorithm is Ray's.
    """

    def __init__(self, *, seed: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._rng = np.random.default_rng(seed)

    def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
        with global_numpy_seed(self._rng):
            super().on_trial_add(tune_controller, trial)
