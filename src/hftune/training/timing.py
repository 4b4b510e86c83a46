"""Start-up timing of one trial, reported with its first evaluation.

``setup_s``: seconds from the trial's start to the Trainer's ``on_train_begin`` (model built,
Trainer ready); ``first_step_s``: to the end of the first optimizer step. The benchmark
(``benchmarks/run.py``) reads them back from the records; users see where a trial's first
seconds went.
"""

from __future__ import annotations

import time
from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments


class StartupTiming(TrainerCallback):
    """Records when training began and when the first optimizer step ended."""

    def __init__(self, started: float) -> None:
        self.started = started
        self.train_begin: float | None = None
        self.first_step: float | None = None

    def on_train_begin(self, args: TrainingArguments, state: TrainerState,
                       control: TrainerControl, **kwargs: Any) -> None:
        self.train_begin = time.perf_counter()

    def on_step_end(self, args: TrainingArguments, state: TrainerState,
                    control: TrainerControl, **kwargs: Any) -> None:
        if self.first_step is None:
            self.first_step = time.perf_counter()

    def fields(self) -> dict[str, float]:
        """``setup_s`` and ``first_step_s`` (those known so far), in seconds."""
        out = {}
        if self.train_begin is not None:
            out["setup_s"] = self.train_begin - self.started
        if self.first_step is not None:
            out["first_step_s"] = self.first_step - self.started
        return out
