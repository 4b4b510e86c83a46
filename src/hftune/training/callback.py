"""The ``TrainerCallback`` through which a trial talks to the strategy.

After each evaluation it hands one flat metrics record to ``report(record, checkpoint_dir)``
(``ray.tune.report`` in a real trial; an event recorder in tests). Training is touched only
through ``TrainerControl``: a checkpoint is asked for with ``should_save`` and reported once the
Trainer has written it (``on_save``); if ``report`` raises :class:`StopTrial`, training ends at
once.

Checkpoint policies: ``"none"``; ``"best"`` (model weights only, whenever the metric improves:
what export needs; a NaN value is never an improvement, and any finite value improves on none
so far); ``"last"`` (model weights only, at every evaluation with a value of the metric, NaN
excepted: what export needs when a trial's score is its last evaluation); ``"every"`` (full
state at every evaluation: what PBT needs).
"""

from __future__ import annotations

import math
import shutil
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

Report = Callable[[dict[str, Any], "Path | None"], None]
CheckpointPolicy = Literal["none", "best", "last", "every"]


class StopTrial(Exception):
    """Raised by a ``report`` function to ask the trial to stop training now."""


class ReportCallback(TrainerCallback):
    """Reports every evaluation: metrics without the ``eval_`` prefix, plus progress fields.

    Each record has ``epoch`` (fractional when evaluating every N steps), ``step``,
    ``eval_id`` (unique to this evaluation: a checkpoint's record names the evaluation it holds
    the weights of, where epoch and step can repeat after a PBT exploit),
    ``elapsed_s`` (seconds since the trial started), ``eval_s`` (this evaluation's seconds),
    ``learning_rate`` and ``weight_decay`` as the optimizer holds them, and ``trained_all`` (whether
    training has reached its last step).
    """

    def __init__(self, report: Report, *, started: float | None = None,
                 extra: Callable[[], dict[str, Any]] | None = None,
                 checkpoints: CheckpointPolicy = "none", metric: str | None = None,
                 mode: str = "max",
                 on_checkpoint: Callable[[Path, dict[str, Any]], None] | None = None,
                 best: float | None = None) -> None:
        self._report = report
        self._started = time.perf_counter() if started is None else started
        self._extra = extra
        self.checkpoints = checkpoints
        self.metric = metric
        self.mode = mode
        self.on_checkpoint = on_checkpoint
        self.optimizer: Any = None
        self.reports = 0
        # the best value so far: with the "best" policy only an improvement on it saves (a
        # resumed trial passes its checkpoint's value, which was its best when it stopped);
        # never NaN (a NaN best would compare False with everything, so nothing would save),
        # nor infinite (no score: the records skip it too)
        self.best: float | None = None if best is None or not math.isfinite(best) \
            else float(best)
        self._pending: dict[str, Any] | None = None

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
            eval_id=new_eval_id(),
            elapsed_s=time.perf_counter() - self._started,
            trained_all=bool(state.max_steps and state.global_step >= state.max_steps),
        )
        record.update(optimizer_hyperparameters(self.optimizer or kwargs.get("optimizer")))
        if self._extra is not None:
            record.update(self._extra())
        if self._wants_checkpoint(record):
            self._pending = record  # reported from on_save, with the folder the Trainer wrote
            control.should_save = True
        else:
            self._send(record, None, control)
        return control

    def on_save(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                **kwargs: Any) -> TrainerControl:
        if self._pending is None:
            return control
        record, self._pending = self._pending, None
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if self.on_checkpoint is not None:
            self.on_checkpoint(folder, record)
        try:
            self._send(record, folder, control)
        finally:
            shutil.rmtree(folder, ignore_errors=True)  # the strategy's store keeps its copy
        return control

    def _wants_checkpoint(self, record: dict[str, Any]) -> bool:
        if self.checkpoints == "every":
            return True
        if self.checkpoints not in ("best", "last") or self.metric is None \
                or record.get(self.metric) is None:
            return False
        value = float(record[self.metric])
        if not math.isfinite(value):
            # never the best, nor the last scored evaluation (scores skip NaN and infinities):
            # saving it would replace the checkpoint of the evaluation that is the trial's score
            return False
        if self.checkpoints == "last":
            return True
        improved = self.best is None or (value > self.best if self.mode == "max"
                                         else value < self.best)
        if improved:
            self.best = value
        return improved

    def _send(self, record: dict[str, Any], folder: Path | None, control: TrainerControl) -> None:
        self.reports += 1
        try:
            self._report(record, folder)
        except StopTrial:
            control.should_training_stop = True


def new_eval_id() -> str:
    """A new evaluation's id: 16 random hex digits."""
    return uuid.uuid4().hex[:16]


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


class StopAtEpoch(TrainerCallback):
    """Ends training at the end of epoch ``epoch`` (after its evaluation and checkpoint)."""

    def __init__(self, epoch: float) -> None:
        self.epoch = epoch

    def on_epoch_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                     **kwargs: Any) -> TrainerControl:
        if state.epoch is not None and state.epoch >= self.epoch - 1e-9:
            control.should_training_stop = True
        return control
