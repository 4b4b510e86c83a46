"""Tokenize a task's splits once per study; trials receive the result and never tokenize.

Each split is tokenized by the task type (:meth:`hftune.tasks.TaskType.tokenize`): truncated
to ``max_length`` but not padded (each batch is padded to its longest member, which saves most
of the arithmetic on short-text tasks), with a ``length`` column (tokens per row) for
length-grouped batches.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hftune.tasks import TaskType, TokenizedSplit

# When set, every tokenization appends one line to this file (from whichever process runs it),
# so a test can prove that trials never tokenize.
TOKENIZE_LOG_ENV = "HFTUNE_TOKENIZE_LOG"


@dataclass
class TokenizedTask:
    """Tokenized splits (:class:`~hftune.tasks.TokenizedSplit`: the features, the number of
    examples, what the metrics need besides the predictions), the label names and how long
    tokenizing took."""

    splits: dict[str, TokenizedSplit]
    label_names: tuple[str, ...]
    max_length: int
    seconds: float

    @property
    def num_labels(self) -> int:
        return len(self.label_names)


def tokenize_task(task_type: TaskType, frames: Mapping[str, Any], tokenizer: Any,
                  max_length: int, label_names: tuple[str, ...],
                  train_split: str) -> TokenizedTask:
    """Tokenize every split of ``frames`` (normalised by ``task_type``); ``train_split`` is
    the one trials train on (a QA type labels answer positions there)."""
    started = time.perf_counter()
    out = {split: task_type.tokenize(frame, tokenizer, max_length, label_names,
                                     training=split == train_split)
           for split, frame in frames.items()}
    seconds = time.perf_counter() - started
    log = os.environ.get(TOKENIZE_LOG_ENV)
    if log:
        with open(log, "a", encoding="utf-8") as fh:
            fh.write(f"pid={os.getpid()} splits={','.join(out)}\n")
    return TokenizedTask(splits=out, label_names=label_names, max_length=max_length,
                         seconds=seconds)
