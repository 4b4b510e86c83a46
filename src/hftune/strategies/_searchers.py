"""Model-based strategies: Optuna's TPE and GP samplers, hpbandster's BOHB, through Ray Tune.

Every searcher is wrapped in :class:`~hftune.strategies._wrappers.ScoredSearcher`, so what it
learns from a trial is the trial's ``strategy.score`` (best evaluation by default), and its
suggestions are snapped onto the space. Seeds: Optuna's samplers take the study seed;
``bohb`` seeds its ConfigSpace and runs hpbandster's global-numpy draws under a seeded state.

The first ``n_initial_points`` configs are random (Optuna's ``n_startup_trials``; they count
*finished* trials, so with several trials running at once a few more random configs may be
drawn before the model takes over).
"""

from __future__ import annotations

import importlib.util
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from hftune.errors import ConfigError
from hftune.strategies._schedulers import EarlyStopOptions, HyperbandOptions, async_hyperband
from hftune.strategies.base import Strategy


class BayesOptions(BaseModel):
    """``n_initial_points`` random configs (seeded) before the model proposes any."""

    model_config = ConfigDict(extra="forbid")

    n_initial_points: int = Field(default=10, ge=1)


class BayesASHAOptions(BayesOptions, EarlyStopOptions):
    """TPE's options and ASHA's."""


def _optuna_searcher(sampler: Any) -> Any:
    import optuna
    from ray.tune.search.optuna import OptunaSearch

    # hftune shows its own progress; Optuna would log a line per trial.
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return OptunaSearch(sampler=sampler)


class _ScoredStrategy(Strategy):
    """A strategy whose searcher learns from trial scores (see :class:`ScoredSearcher`)."""

    default_num_samples = 20

    def inner_searcher(self) -> Any:
        """The Ray Tune ``Searcher`` to wrap."""
        raise NotImplementedError

    def searcher(self) -> Any:
        from hftune.strategies._wrappers import ScoredSearcher

        return ScoredSearcher(self.inner_searcher(), score=self.score, space=self.space)


class BayesStrategy(_ScoredStrategy):
    """Tree-structured Parzen estimator (Optuna's multivariate TPE), seeded."""

    name = "bayes"
    Options = BayesOptions

    def inner_searcher(self) -> Any:
        import warnings

        import optuna

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            sampler = optuna.samplers.TPESampler(
                n_startup_trials=self.options.n_initial_points, seed=self.seed,
                multivariate=True)
        return _optuna_searcher(sampler)


class GPStrategy(_ScoredStrategy):
    """Gaussian-process Bayesian optimisation (Optuna's ``GPSampler``), seeded."""

    name = "gp"
    Options = BayesOptions

    def inner_searcher(self) -> Any:
        import optuna

        sampler = optuna.samplers.GPSampler(
            seed=self.seed, n_startup_trials=self.options.n_initial_points,
            independent_sampler=optuna.samplers.RandomSampler(seed=self.seed))
        return _optuna_searcher(sampler)


class BayesASHAStrategy(BayesStrategy):
    """TPE proposes, ASHA stops: the reference study's strategy."""

    name = "bayes+asha"
    Options = BayesASHAOptions

    def scheduler(self) -> Any:
        return async_hyperband(self.options, self.seed)


BOHB_EXTRA = "bohb"


class BOHBStrategy(_ScoredStrategy):
    """BOHB: hpbandster's per-budget KDE model proposes, asynchronous Hyperband stops.

    Like Syne Tune's BOHB it runs asynchronously (Ray's ``HyperBandForBOHB`` would pause
    trials; see :mod:`hftune.strategies._schedulers`). Each evaluation is a budget: the model
    learns every trial's value (its running best under ``score: best``) at each evaluation.
    Needs the ``bohb`` extra (hpbandster, ConfigSpace).
    """

    name = "bohb"
    Options = HyperbandOptions

    @classmethod
    def check_available(cls) -> None:
        missing = [m for m in ("hpbandster", "ConfigSpace") if importlib.util.find_spec(m) is None]
        if missing:
            raise ConfigError(
                f"strategy.name: 'bohb' needs {' and '.join(missing)}, which are not installed; "
                f"install the extra: pip install 'hftune[{BOHB_EXTRA}]'")

    def inner_searcher(self) -> Any:
        from ray.tune.search.bohb import TuneBOHB

        return TuneBOHB(seed=self.seed)

    def searcher(self) -> Any:
        from hftune.strategies._wrappers import ScoredSearcher

        self.check_available()
        return ScoredSearcher(self.inner_searcher(), score=self.score, space=self.space,
                              budget_key="training_iteration", numpy_seed=self.seed)

    def scheduler(self) -> Any:
        return async_hyperband(self.options, self.seed, self.options.bracket_count())
