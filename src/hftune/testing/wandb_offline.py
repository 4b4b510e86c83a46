"""Read an offline W&B run file (``offline-run-*/run-<id>.wandb``) back, for tests.

wandb >= 0.18 writes its runs from a Go service and no longer ships a Python reader. The file
is a LevelDB-style log (a 7-byte header ``:W&B``, magic ``0xBEE1``, version; then 32 KiB blocks
of chunks, each ``crc32 (4) | length (2) | type (1) | data``, a record split over FIRST, MIDDLE
and LAST chunks when it does not fit) of ``wandb_internal_pb2.Record`` protobufs (the class:
:func:`hftune._compat.wandb.record_class`).
"""

from __future__ import annotations

import json
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_BLOCK = 32 * 1024
_HEADER = struct.Struct("<IHB")  # crc32, length, chunk type
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


@dataclass
class OfflineRun:
    """What a test checks of one offline run: its identity, config and logged history."""

    run_id: str
    project: str
    group: str
    name: str
    config: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)  # one dict per run.log()
    exit_code: int | None = None


def _chunks(data: bytes) -> Iterator[bytes]:
    if data[:4] != b":W&B":
        raise ValueError("not a W&B run file (no ':W&B' header)")
    pos, pending = 7, b""
    while pos + _HEADER.size <= len(data):
        left = _BLOCK - pos % _BLOCK
        if left < _HEADER.size:  # the rest of a block too small for a header is padding
            pos += left
            continue
        _crc, length, kind = _HEADER.unpack_from(data, pos)
        pos += _HEADER.size
        if kind == 0 and length == 0:
            pos += left - _HEADER.size
            continue
        chunk, pos = data[pos:pos + length], pos + length
        if kind == _FULL:
            yield chunk
        elif kind == _FIRST:
            pending = chunk
        elif kind == _MIDDLE:
            pending += chunk
        elif kind == _LAST:
            yield pending + chunk
            pending = b""


def read_offline_run(path: Path, wait_s: float = 10.0) -> OfflineRun:
    """Parse ``run-<id>.wandb``: the run record, config updates, history rows and exit.

    W&B's service process writes the file on its own schedule: a file read before it has
    written the run record is read again, for up to ``wait_s`` seconds."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return _read_offline_run(path)
        except ValueError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.2)


def _read_offline_run(path: Path) -> OfflineRun:
    from hftune._compat.wandb import record_class

    record_type = record_class()
    run: OfflineRun | None = None
    for data in _chunks(Path(path).read_bytes()):
        record = record_type()
        record.ParseFromString(data)
        kind = record.WhichOneof("record_type")
        if kind == "run":
            r = record.run
            run = OfflineRun(r.run_id, r.project, r.run_group, r.display_name,
                             {i.key: json.loads(i.value_json) for i in r.config.update
                              if i.key != "_wandb"})
        elif run is not None and kind == "config":
            run.config.update({i.key: json.loads(i.value_json) for i in record.config.update
                               if i.key != "_wandb"})
        elif run is not None and kind == "history":
            run.history.append({i.key or "/".join(i.nested_key): json.loads(i.value_json)
                                for i in record.history.item})
        elif run is not None and kind == "exit":
            run.exit_code = record.exit.exit_code
    if run is None:
        raise ValueError(f"{path}: no run record")
    return run
