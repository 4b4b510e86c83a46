"""The ``TrainerCallback`` through which a trial talks to the strategy.

After each evaluation it hands one flat metrics record to ``report`` (``ray.tune.report`` in a
real trial; an event recorder in tests). Training is touched only through ``TrainerControl``:
if ``report`` raises :class:`StopTrial` (or the strategy stops the trial in Ray), training ends
at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

Report = Callable[[dict[str, Any]], None]


class StopTrial(Exception):
    """Raised by a ``report`` function to ask the trial to stop training now."""


class ReportCallback(TrainerCallback):
    """Reports every evaluation: metrics without the ``eval_`` prefix, plus progress fields.

    Each record has ``epoch`` (fractional when evaluating every N steps), ``step``,
    ``elapsed_s`` (seconds since the trial started), ``eval_s`` (this evaluation's seconds),
    ``learning_rate`` and ``weight_decay`` as the optimizer holds them, and ``trained_all`` (whether
    training has reached its last step).
    """

    def __init__(self, report: Report, *, started: float | None = None,
                 extra: Callable[[], dict[str, Any]] | None = None) -> None:
        self._report = report
        self._started = time.perf_counter() if started is None else started
        self._extra = extra
        self.optimizer: Any = None
        self.reports = 0

    def on_train_begin(self, args: TrainingArguments, state: TrainerState,
                       control: TrainerControl, **kwargs: Any) -> None:
        self.optimizer = kwargs.get("optimizer")

    def on_evaluate(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                    metrics: dict[str, float] | None = None, **kwargs: Any) -> TrainerControl:
        record: dict[str, Any] = {
            (k[5:] if k.startswith("eval_") else k): v for k, v in (metrics or {}).items()
        }
        record["eval_s"] = record.pop("runtime", None)
        for key in ("samples_per_second", "steps_per_second"):
            record.pop(key, None)
        record.update(
            epoch=float(state.epoch or 0.0),
            step=int(state.global_step),
            elapsed_s=time.perf_counter() - self._started,
            trained_all=bool(state.max_steps and state.global_step >= state.max_steps),
        )
        record.update(optimizer_hyperparameters(self.optimizer or kwargs.get("optimizer")))
        if self._extra is not None:
            record.update(self._extra())
        self.reports += 1
        try:
            self._report(record)
        except StopTrial:
            control.should_training_stop = True
        return control


def optimizer_hyperparameters(optimizer: Any) -> dict[str, float]:
    """The learning rate and weight decay the optimizer really uses (first decayed group)."""
    if optimizer is None:
        return {}
    groups = getattr(optimizer, "param_groups", None) or []
    decayed = [g for g in groups if g.get("weight_decay", 0.0) > 0] or groups
    if not decayed:
        return {}
    return {"learning_rate": float(decayed[0]["lr"]),
            "weight_decay": float(decayed[0].get("weight_decay", 0.0))}
