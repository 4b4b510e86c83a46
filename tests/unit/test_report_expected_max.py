"""Expected maximum validation performance (Dodge et al. 2019) against hand-worked values."""

from __future__ import annotations

import math

import pytest

from hftune.report.expected_max import expected_max


def test_worked_example_by_hand() -> None:
    # Scores 0.9, 0.6, 0.7 sorted: v1=0.6, v2=0.7, v3=0.9, N=3.
    # n=1: (0.6 + 0.7 + 0.9) / 3                                        = 0.733333...
    # n=2: 0.6*(1/9) + 0.7*(4/9 - 1/9) + 0.9*(1 - 4/9) = (0.6+2.1+4.5)/9 = 0.8
    # n=3: 0.6*(1/27) + 0.7*(7/27) + 0.9*(19/27) = (0.6+4.9+17.1)/27    = 0.837037...
    curve = expected_max([0.9, 0.6, 0.7])
    assert curve == pytest.approx([2.2 / 3, 0.8, 22.6 / 27], abs=1e-12)


def test_min_mode_is_the_expected_minimum() -> None:
    # Losses 4, 1, 2, N=3. n=1: the mean, 7/3.
    # n=2: the minimum of two draws is 1 unless both miss 1: P(min=1) = 1 - (2/3)^2 = 5/9,
    # P(min=2) = (2/3)^2 - (1/3)^2 = 3/9, P(min=4) = 1/9 → (5 + 6 + 4) / 9 = 15/9.
    curve = expected_max([4.0, 1.0, 2.0], mode="min")
    # n=3 by hand: P(min=1) = 1 - (2/3)^3 = 19/27, P(min=2) = 8/27 - 1/27 = 7/27,
    # P(min=4) = 1/27 → (19 + 14 + 4) / 27 = 37/27.
    assert curve == pytest.approx([7 / 3, 15 / 9, 37 / 27], abs=1e-12)


def test_properties() -> None:
    scores = [0.51, 0.62, 0.58, 0.70, 0.49, 0.66]
    curve = expected_max(scores)
    assert len(curve) == len(scores)
    assert curve[0] == pytest.approx(sum(scores) / len(scores))
    assert all(b >= a for a, b in zip(curve, curve[1:], strict=False))
    assert curve[-1] < max(scores)
    assert expected_max([0.7, 0.7]) == pytest.approx([0.7, 0.7])
    assert expected_max([0.42]) == [0.42]


def test_nan_ignored_and_empty() -> None:
    assert expected_max([]) == []
    assert expected_max([math.nan]) == []
    assert expected_max([0.9, math.nan, 0.6, 0.7]) == pytest.approx(expected_max([0.9, 0.6, 0.7]))
    with pytest.raises(ValueError, match="mode"):
        expected_max([0.5], mode="maximize")
