"""What the text tasks share (sequence classification, regression, multi-label): one or two text
columns per row, picked from the names a task accepts, and tokenized as a single text or a pair.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from hftune.errors import ConfigError, DataError
from hftune.tasks._rows import check_columns, check_texts

# TaskType.fields of the text tasks
TEXT_FIELDS: dict[str, Any] = {"text_fields": None, "label_field": "label"}


def text_alternatives(options: Mapping[str, Any]) -> tuple[tuple[str, ...], ...]:
    """The accepted text columns: ``text_fields`` (one name or a pair, or alternatives of
    those: a known task accepts the Hub's names and common others)."""
    fields = options.get("text_fields")
    if not fields:
        raise ConfigError("task.text_fields: a custom task must name its one or two text "
                          "columns (and task.label_field)")
    if all(isinstance(f, str) for f in fields):
        return (tuple(fields),)
    return tuple(tuple(f) for f in fields)


def pick_text_fields(frames: Mapping[str, pd.DataFrame], train_split: str,
                     options: Mapping[str, Any], origins: Mapping[str, str]
                     ) -> tuple[str, ...]:
    """The first alternative of text columns the training split has; every split must have
    them and the label column, each text a string (:func:`check_texts`). A label field that is
    also a text field is a :class:`ConfigError`. Raises :class:`DataError` naming the columns
    found."""
    alternatives = text_alternatives(options)
    label_field = str(options.get("label_field") or "label")
    first = frames[train_split]
    fields = next((f for f in alternatives if all(c in first.columns for c in f)), None)
    source = origins.get(train_split, train_split)
    if fields is None:
        want = " or ".join("/".join(f) for f in alternatives)
        raise DataError(f"{source}: split '{train_split}' lacks the text columns {want}; "
                        f"columns found: {', '.join(map(str, first.columns))} "
                        f"(set task.text_fields)")
    if label_field not in first.columns:
        raise DataError(f"{source}: no label column '{label_field}'; columns found: "
                        f"{', '.join(map(str, first.columns))} (set task.label_field)")
    if label_field in fields:
        raise ConfigError(
            f"task.label_field: '{label_field}' is also a text field ({', '.join(fields)}); "
            f"the labels cannot be read as text too: set task.label_field or task.text_fields "
            f"to another column")
    for split, frame in frames.items():
        origin = origins.get(split, split)
        check_columns(frame, [*fields, label_field], origin, split)
        for name in fields:
            check_texts(frame[name], name, origin)
    return fields


def texts_frame(frame: pd.DataFrame, fields: Sequence[str]) -> pd.DataFrame:
    """The text columns of ``frame`` as ``text_a`` (and ``text_b``) strings."""
    names = ("text_a", "text_b")
    return pd.DataFrame({names[i]: frame[f].astype(str).tolist()
                         for i, f in enumerate(fields)})


def tokenize_texts(frame: pd.DataFrame, tokenizer: Any, max_length: int) -> dict[str, list]:
    """``input_ids``, ``attention_mask`` (``token_type_ids`` where the tokenizer makes them)
    and ``length`` of a frame with ``text_a`` (and ``text_b``): truncated to ``max_length``,
    not padded (each batch is padded to its longest row)."""
    texts = [frame[c].tolist() for c in ("text_a", "text_b") if c in frame.columns]
    encoded = tokenizer(*texts, truncation=True, max_length=max_length)
    columns = {k: encoded[k] for k in ("input_ids", "attention_mask", "token_type_ids")
               if k in encoded}
    columns["length"] = [len(ids) for ids in encoded["input_ids"]]
    return columns
