"""Tokenize a task's splits once per study; trials receive the result and never tokenize.

Sequences are truncated to ``max_length`` but not padded: the trainer pads each batch to its
longest member (dynamic padding), which saves most of the arithmetic on short-text tasks.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

from hftune.data.loading import TaskData

# When set, every tokenization appends one line to this file (from whichever process runs it),
# so a test can prove that trials never tokenize.
TOKENIZE_LOG_ENV = "HFTUNE_TOKENIZE_LOG"


@dataclass
class TokenizedTask:
    """Tokenized splits: ``datasets.Dataset`` with ``input_ids``, ``attention_mask`` (and
    ``token_type_ids`` when the tokenizer makes them), ``length`` (tokens per row, read by
    length-grouped batching: :mod:`hftune.training.batches`) and ``labels``."""

    splits: dict[str, Any]
    label_names: tuple[str, ...]
    max_length: int
    seconds: float

    @property
    def num_labels(self) -> int:
        return len(self.label_names)


def tokenize_task(data: TaskData, tokenizer: Any, max_length: int,
                  limits: dict[str, int | None] | None = None) -> TokenizedTask:
    """Tokenize every split of ``data``; ``limits`` caps rows per split (first rows kept)."""
    import datasets

    started = time.perf_counter()
    out: dict[str, Any] = {}
    for split, frame in data.splits.items():
        limit = (limits or {}).get(split)
        if limit is not None:
            frame = frame.iloc[:limit]
        texts = [frame[f].tolist() for f in data.text_fields]
        encoded = tokenizer(*texts, truncation=True, max_length=max_length)
        columns = {k: encoded[k] for k in ("input_ids", "attention_mask", "token_type_ids")
                   if k in encoded}
        columns["length"] = [len(ids) for ids in encoded["input_ids"]]
        columns["labels"] = frame["label"].tolist()
        out[split] = datasets.Dataset.from_dict(columns)
    seconds = time.perf_counter() - started
    log = os.environ.get(TOKENIZE_LOG_ENV)
    if log:
        with open(log, "a", encoding="utf-8") as fh:
            fh.write(f"pid={os.getpid()} splits={','.join(out)}\n")
    return TokenizedTask(splits=out, label_names=data.label_names, max_length=max_length,
                         seconds=seconds)
