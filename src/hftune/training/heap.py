"""A reused worker's heap between trials: garbage collection kept cheap, freed memory returned.

Ray Tune reuses a worker process for trial after trial (``reuse_actors``), which saves the
imports of a fresh process (seconds per trial) but keeps one Python heap for all of them.
:func:`prepare_heap` runs at the start of every trial.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
from collections.abc import Callable

_freezes_left = 2


def freeze_heap() -> None:
    """Move the process's long-lived objects (imported modules, caches) out of the cyclic GC.

    ``Trainer.train`` calls ``accelerate``'s ``free_memory``, a full ``gc.collect()``: in a
    worker that has imported torch, transformers and Ray it took ~0.5 s of every trial's
    start-up; after ``gc.freeze()`` it scans only what the trials themselves created. Done at the
    start of a process's first two trials (the second also freezes what the first imported
    lazily). Call it right after a collection (:func:`prepare_heap` does), so no garbage is
    frozen; frozen objects are still freed by reference counting.
    """
    global _freezes_left
    if _freezes_left > 0:
        _freezes_left -= 1
        gc.freeze()


def _load_malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to call
        return None


_malloc_trim = _load_malloc_trim()


def release_freed_memory() -> bool:
    """Collect the previous trial's garbage and give the heap's free pages back to the OS.

    glibc keeps freed memory in its arenas, so without this a reused worker's resident size
    grows trial after trial (measured: 680 -> 830 MiB over 6 trials of the tiny BERT, flat at
    ~720 MiB with it; ``benchmarks/RESULTS.md``). ``False`` where the C library has no
    ``malloc_trim``.
    """
    gc.collect()
    if _malloc_trim is None:
        return False
    _malloc_trim(0)
    return True


def prepare_heap() -> None:
    """At a trial's start: :func:`release_freed_memory` (one collection), then
    :func:`freeze_heap`."""
    release_freed_memory()
    freeze_heap()
