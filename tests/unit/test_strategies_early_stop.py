"""Early stopping on curves where half the configs are bad (flat), on real Ray Tune.

The synthetic curves all have the same shape, so the config that ends best is best at every
evaluation: a correct scheduler stops a clear share of trials before ``max_t``, mostly bad
ones, and never the best one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hftune.config.schema import StrategyConfig
from hftune.space import parse_space
from hftune.strategies import build_strategy
from hftune.testing.synthetic import CurveSpec, final_value, run_synthetic_study

SPACE = parse_space({"weight_decay": {"uniform": [0.0, 1.0]}}, training_fields={"weight_decay"})
MAX_T = 9
# quality = 1 - (1 - x)^2: the configs with x < 0.5 (half of them) stay flat at `start`.
CURVES = CurveSpec(optimum={"weight_decay": 1.0}, bad_below=0.75, evaluations=MAX_T)
NUM_SAMPLES = 16


@pytest.mark.parametrize(("name", "options", "min_share"), [
    ("asha", {}, 0.4),
    ("hyperband", {"brackets": 2}, 0.3),
    ("median", {"min_samples_required": 2}, 0.3),
])
def test_scheduler_stops_bad_trials_never_the_best(name: str, options: dict[str, Any],
                                                   min_share: float, ray_session: Any,
                                                   tmp_path: Path) -> None:
    if name != "median":
        options = {"max_t": MAX_T, "grace_period": 1, "reduction_factor": 3, **options}
    strategy = build_strategy(StrategyConfig(name=name, **options), SPACE, "accuracy", "max", 3)
    trials = run_synthetic_study(strategy, NUM_SAMPLES, CURVES, tmp_path)
    assert len(trials) == NUM_SAMPLES

    def bad(t: Any) -> bool:
        return final_value(t.config, SPACE, CURVES) == CURVES.start

    stopped = [t for t in trials if t.evaluations < MAX_T]
    bad_trials = [t for t in trials if bad(t)]
    assert 0 < len(bad_trials) < NUM_SAMPLES  # the draw really mixes good and bad configs
    assert len(stopped) >= min_share * NUM_SAMPLES, [t.evaluations for t in trials]
    # most of the stopped trials are bad ones, and most bad ones are stopped
    assert sum(map(bad, stopped)) > len(stopped) / 2
    assert sum(t.evaluations < MAX_T for t in bad_trials) > len(bad_trials) / 2
    # the best config is trained to the end
    best = max(trials, key=lambda t: final_value(t.config, SPACE, CURVES))
    assert best.evaluations == MAX_T and best.trained_all
    for t in stopped:
        assert not t.trained_all and len(t.values) == t.evaluations
