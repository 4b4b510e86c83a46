"""Ray Tune's count of an experiment's callbacks, without the imports it makes for it.

When an experiment starts with callbacks (hftune always passes its recorder), Ray Tune records
how many callbacks of each class it got, for its usage statistics. To know the names of its
built-in logger callbacks, Ray imports their integration modules, and so ``mlflow``, ``wandb``,
``comet_ml`` and ``aim`` when they are installed: 3-4 s of the study's start on the 2-core build
machine (``benchmarks/RESULTS.md``), before any trial runs. Ray then compares class *names*
only, so :func:`count_callbacks_by_name` gives the same counts from the names alone.
"""

from __future__ import annotations

import collections
from collections.abc import Sequence
from typing import Any

# Ray Tune's built-in logger callbacks that live in optional integration modules.
INTEGRATION_CALLBACKS = ("WandbLoggerCallback", "MLflowLoggerCallback", "CometLoggerCallback",
                         "AimLoggerCallback")


def count_callbacks_by_name(callbacks: Sequence[Any] | None) -> dict[str, int]:
    """Callback class name -> count, as Ray Tune's usage statistics count them: built-in
    callbacks by their class name, any other under ``CustomLoggerCallback`` or
    ``CustomCallback``; objects that are not Ray Tune callbacks are not counted."""
    from ray.tune import Callback
    from ray.tune.logger import LoggerCallback
    from ray.tune.utils.callback import DEFAULT_CALLBACK_CLASSES

    built_in = {*INTEGRATION_CALLBACKS, *(cls.__name__ for cls in DEFAULT_CALLBACK_CLASSES)}
    counts: dict[str, int] = collections.defaultdict(int)
    for callback in callbacks or []:
        if not isinstance(callback, Callback):
            continue
        name = type(callback).__name__
        if name in built_in:
            counts[name] += 1
        elif isinstance(callback, LoggerCallback):
            counts["CustomLoggerCallback"] += 1
        else:
            counts["CustomCallback"] += 1
    return counts


def count_callbacks_without_imports() -> bool:
    """Make Ray Tune count callbacks with :func:`count_callbacks_by_name`; ``False`` (and
    nothing changed) when this Ray has no such count."""
    from ray.air._internal import usage

    if not callable(getattr(usage, "_count_callbacks", None)):
        return False
    usage._count_callbacks = count_callbacks_by_name
    return True
