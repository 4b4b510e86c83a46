"""The report callback's ``best`` checkpoint rule: NaN evaluations never count as the best."""

from __future__ import annotations

import math

import pytest
from transformers import TrainerControl, TrainerState, TrainingArguments

from hftune.training.callback import ReportCallback


def _saves(callback: ReportCallback, values: list[float]) -> list[bool]:
    """Whether each evaluation (one per epoch, metric ``accuracy``) asks for a checkpoint."""
    args = TrainingArguments(output_dir="unused", report_to=[], use_cpu=True)
    out = []
    for epoch, value in enumerate(values, start=1):
        control = callback.on_evaluate(
            args,
            TrainerState(epoch=float(epoch), global_step=epoch),
            TrainerControl(),
            metrics={"eval_accuracy": value},
        )
        out.append(bool(control.should_save))
    return out


@pytest.mark.parametrize("mode", ["max", "min"])
def test_a_nan_first_evaluation_does_not_block_later_bests(mode: str) -> None:
    callback = ReportCallback(lambda r, f: None, checkpoints="best", metric="accuracy", mode=mode)
    later = [0.6, 0.7] if mode == "max" else [0.7, 0.6]
    assert _saves(callback, [math.nan, *later]) == [False, True, True]
    assert callback.best == later[-1]


def test_a_nan_evaluation_after_a_best_is_not_saved() -> None:
    callback = ReportCallback(lambda r, f: None, checkpoints="best", metric="accuracy", mode="max")
    assert _saves(callback, [0.6, math.nan, 0.5, 0.65]) == [True, False, False, True]
    assert callback.best == 0.65


def test_a_nan_restored_best_counts_as_none() -> None:
    callback = ReportCallback(
        lambda r, f: None, checkpoints="best", metric="accuracy", mode="max", best=math.nan
    )
    assert _saves(callback, [0.4]) == [True]


def test_last_policy_skips_a_nan_evaluation() -> None:
    """Under score: last a trial's score is its last evaluation with a number; a NaN one must
    not replace that evaluation's checkpoint (Ray keeps only the newest)."""
    callback = ReportCallback(lambda r, f: None, checkpoints="last", metric="accuracy", mode="max")
    assert _saves(callback, [0.6, 0.7, math.nan]) == [True, True, False]

