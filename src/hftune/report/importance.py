"""Hyperparameter importance with Optuna's evaluators, from a study's finished records.

The trials are replayed into an in-memory Optuna study (``optuna.trial.create_trial``) with
distributions inferred from the values the trials used, since a report reads only the study
folder: all-integer values → ``IntDistribution``, numbers → ``FloatDistribution`` (log-scaled
when positive and spanning at least a factor of 10, as learning rates do), anything else →
``CategoricalDistribution``. Parameters that took a single value carry no information and are
left out.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from hftune.report.data import StudyData, param_names

MIN_TRIALS = 8


def _distribution(values: list[Any]) -> Any:
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return IntDistribution(min(values), max(values))
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        low, high = float(min(values)), float(max(values))
        return FloatDistribution(low, high, log=low > 0 and high / low >= 10)
    choices: list[Any] = []
    for v in values:
        if v not in choices:
            choices.append(v)
    return CategoricalDistribution(choices)


def _categorical_value(value: Any) -> Any:
    return value if value is None or isinstance(value, bool | int | float | str) else str(value)


def param_importances(data: StudyData, seed: int = 0) -> dict[str, float] | None:
    """``{param: importance}`` (normalised to sum 1, most important first) from Optuna's
    fANOVA evaluator, or ``None`` with fewer than :data:`MIN_TRIALS` scored trials or fewer
    than one hyperparameter that varied. Deterministic for a given ``seed``."""
    import optuna
    from optuna.importance import FanovaImportanceEvaluator

    scored = data.scored_trials()
    if len(scored) < MIN_TRIALS:
        return None
    names = [n for n in param_names(data)
             if all(t.config.get(n) is not None for t, _ in scored)]
    params: dict[str, list[Any]] = {}
    for n in names:
        values = [_categorical_value(t.config[n]) for t, _ in scored]
        if len({repr(v) for v in values}) > 1:
            params[n] = values
    if not params:
        return None
    distributions = {n: _distribution(v) for n, v in params.items()}
    optuna.logging.set_verbosity(logging.WARNING)
    direction = "maximize" if data.mode == "max" else "minimize"
    study = optuna.create_study(direction=direction)
    for i, (_, score) in enumerate(scored):
        if not math.isfinite(score):
            continue
        study.add_trial(optuna.trial.create_trial(
            params={n: params[n][i] for n in params}, distributions=distributions,
            value=score))
    result = optuna.importance.get_param_importances(
        study, evaluator=FanovaImportanceEvaluator(seed=seed))
    return {k: float(v) for k, v in result.items()}
