"""Strategies by name. ``build_strategy`` is the one way the runner gets a :class:`TunePlan`."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import ValidationError

from hftune.config.schema import StrategyConfig
from hftune.errors import ConfigError
from hftune.space import Dimension
from hftune.strategies._pbt import PB2Strategy, PBTStrategy
from hftune.strategies._schedulers import ASHAStrategy, HyperbandStrategy, MedianStrategy
from hftune.strategies._searchers import (
    BayesASHAStrategy,
    BayesStrategy,
    BOHBStrategy,
    GPStrategy,
)
from hftune.strategies._seeds_then_pbt import SeedsThenPBTStrategy
from hftune.strategies.base import GridStrategy, RandomStrategy, Strategy, TunePlan

STRATEGIES: dict[str, type[Strategy]] = {
    s.name: s for s in (GridStrategy, RandomStrategy, BayesStrategy, GPStrategy, ASHAStrategy,
                        BayesASHAStrategy, HyperbandStrategy, BOHBStrategy, MedianStrategy,
                        PBTStrategy, PB2Strategy, SeedsThenPBTStrategy)
}

__all__ = ["STRATEGIES", "Strategy", "TunePlan", "build_strategy", "validate_strategy"]


def _strategy_class(cfg: StrategyConfig) -> type[Strategy]:
    cls = STRATEGIES.get(cfg.name)
    if cls is None:
        raise ConfigError(
            f"strategy.name: unknown strategy '{cfg.name}'; valid ones: {', '.join(STRATEGIES)}")
    return cls


def validate_strategy(cfg: StrategyConfig, space: Mapping[str, Dimension], *,
                      num_samples: int | None = None) -> None:
    """Check the strategy's name, its own options (an option it does not take is an error),
    that they fit the search space and the fixed ``training`` values (:meth:`Strategy.check`),
    that it uses ``num_samples`` (``budget.num_samples``, :meth:`Strategy.check_num_samples`)
    and that its optional dependencies are installed."""
    cls = _strategy_class(cfg)
    try:
        options = cls.Options.model_validate(cfg.options)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"])
        if not key:  # a check across options
            msg = err["msg"].removeprefix("Value error, ")
            raise ConfigError(f"strategy: '{cfg.name}': {msg}") from None
        if err["type"] == "extra_forbidden":
            valid = ", ".join(cls.Options.model_fields) or "none"
            raise ConfigError(f"strategy.{key}: '{cfg.name}' takes no option '{key}'; "
                              f"its options: {valid}") from None
        raise ConfigError(f"strategy.{key}: {err['msg']} (got {err.get('input')!r})") from None
    cls.check_available()
    strategy = cls(options, space, cfg.metric or "", cfg.mode or "max", 0, score=cfg.score,
                   context=cfg.trial_context)
    strategy.check()
    strategy.check_num_samples(num_samples)


def build_strategy(cfg: StrategyConfig, space: Mapping[str, Dimension], metric: str, mode: str,
                   seed: int) -> Strategy:
    """The configured strategy, ready to :meth:`Strategy.plan` (with ``cfg``'s trial context:
    the study's fixed ``training`` values and evaluation cadence)."""
    cls = _strategy_class(cfg)
    return cls(cls.Options.model_validate(cfg.options), space, metric, mode, seed,
               score=cfg.score, context=cfg.trial_context)
