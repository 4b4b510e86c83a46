"""Task data folders for tests: one JSON Lines file per split."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_splits(folder: Path, train: list[dict[str, Any]],
                 validation: list[dict[str, Any]], **other: list[dict[str, Any]]) -> Path:
    """``folder`` with ``train.jsonl`` and ``validation.jsonl`` holding these rows, and a
    ``<name>.jsonl`` per keyword of ``other``."""
    folder.mkdir(parents=True, exist_ok=True)
    for split, rows in (("train", train), ("validation", validation), *other.items()):
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder
