"""Expected maximum validation performance (Dodge et al. 2019, "Show Your Work").

Given the scores of N trials, the expected best score of a study that had run only n of them
(drawn with replacement from the empirical distribution) is, with the scores sorted ascending
``v_(1) <= ... <= v_(N)``::

    E[max_n] = sum_i v_(i) * ((i / N) ** n - ((i - 1) / N) ** n)

The curve for n = 1..N shows how much of a strategy's result is budget rather than method.
"""

from __future__ import annotations

import math
from collections.abc import Iterable


def expected_max(scores: Iterable[float], mode: str = "max") -> list[float]:
    """``[E[best of n trials] for n in 1..N]`` from the empirical CDF of ``scores``.

    ``mode="min"`` gives the expected minimum (for a metric to minimise). NaN and infinite
    scores are ignored; no finite score gives ``[]``. Pure: no I/O, no randomness.
    """
    if mode not in ("max", "min"):
        raise ValueError(f"mode must be 'max' or 'min', not {mode!r}")
    sign = 1.0 if mode == "max" else -1.0
    values = sorted(sign * float(s) for s in scores if math.isfinite(float(s)))
    n_total = len(values)
    curve = []
    for n in range(1, n_total + 1):
        total = 0.0
        for i, v in enumerate(values, start=1):
            total += v * ((i / n_total) ** n - ((i - 1) / n_total) ** n)
        curve.append(sign * total)
    return curve
