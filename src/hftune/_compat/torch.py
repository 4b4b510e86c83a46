"""torch internals hftune relies on (torch >= 2.4, < 3), one hook per function."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hftune._compat import internal_moved


def move_lr_schedule(scheduler: Any, base_lrs: Sequence[float], step: int,
                     lrs: Sequence[float]) -> None:
    """Put an LR scheduler at ``step`` of its schedule with ``base_lrs`` (what a ``LambdaLR``
    multiplies at every later step) and ``lrs`` as its last learning rates.

    Through the public ``state_dict``/``load_state_dict`` round trip; relies on the keys of an
    ``LRScheduler``'s state dict (``base_lrs``, ``last_epoch``, ``_last_lr``: the values
    ``get_last_lr()`` returns, which ``Trainer`` logs; since torch 1.4). Without the hook a PBT
    member that exploits would log, and its scheduler report, the donor's learning rate.
    """
    state = scheduler.state_dict()
    missing = [k for k in ("base_lrs", "last_epoch", "_last_lr") if k not in state]
    if missing:
        raise internal_moved("torch", f"LRScheduler.state_dict() keys {missing}",
                             "apply a PBT member's learning rate after a restore")
    state.update(base_lrs=list(base_lrs), last_epoch=int(step), _last_lr=list(lrs))
    scheduler.load_state_dict(state)
