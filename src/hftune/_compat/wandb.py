"""wandb internals hftune relies on (wandb >= 0.30, < 1), one hook per function."""

from __future__ import annotations

from typing import Any

from hftune._compat import internal_moved

WANDB = "wandb"


def quiet_settings(**public: Any) -> Any:
    """``wandb.Settings(**public)`` that also turn off W&B's system-metrics sampling.

    Relies on the experimental setting ``x_disable_stats`` (since wandb 0.17): hftune opens one
    run per trial in one process, and each open run would sample CPU, memory and GPU every few
    seconds in W&B's service process. Without the hook every trial's run carries system charts
    nobody asked for, at that cost.
    """
    import wandb

    fields = getattr(wandb.Settings, "model_fields", None)
    if not isinstance(fields, dict) or "x_disable_stats" not in fields:
        raise internal_moved(WANDB, "wandb.Settings.x_disable_stats",
                             "open trial runs without system-metrics sampling")
    return wandb.Settings(**public, x_disable_stats=True)


def record_class() -> Any:
    """The protobuf class of the records in an offline run file (``run-<id>.wandb``), for the
    tests' reader (:mod:`hftune.testing.wandb_offline`).

    Relies on ``wandb.proto.wandb_internal_pb2.Record`` (wandb's internal protocol, since wandb
    0.10); wandb >= 0.18 ships no Python reader of its own. Without it the tracking tests cannot
    read back what an offline study logged.
    """
    import importlib

    try:
        wandb_internal_pb2 = importlib.import_module("wandb.proto.wandb_internal_pb2")
    except ImportError:
        raise internal_moved(WANDB, "wandb.proto.wandb_internal_pb2",
                             "read an offline run file back") from None
    record = getattr(wandb_internal_pb2, "Record", None)
    if record is None:
        raise internal_moved(WANDB, "wandb.proto.wandb_internal_pb2.Record",
                             "read an offline run file back")
    return record
