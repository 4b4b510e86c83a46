"""Environment variables set for the length of a block: the one place that saves, sets and
restores ``os.environ`` entries."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping


@contextlib.contextmanager
def environ_set(values: Mapping[str, str]) -> Iterator[None]:
    """``values`` in ``os.environ`` inside the block; after it, each variable is what it was
    (removed if it was not set). Not thread-safe: callers that share the process hold a lock."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old
