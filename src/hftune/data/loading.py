"""Load a task's splits from a local folder or the Hugging Face Hub, with labels as integers.

Where the data comes from, first match wins:

1. ``task.data_dir`` (or ``hftune run --data-dir``): a folder with one file per split;
2. ``$HFTUNE_DATA_DIR/<task name>/``: a root with one folder per task (``rte/``, ``sst2/``, ...);
3. the Hub: ``datasets.load_dataset("nyu-mll/glue", <task>)`` (GLUE tasks only).

A split file is ``<split>.jsonl``, ``.json``, ``.csv`` or ``.tsv``. A ``.json`` file is one JSON
document (an array of records, or columns) or JSON Lines (as ``datasets.Dataset.to_json``
writes). TSV is read with quoting off (as GLUE's own files need). Label values may be integers
or strings; strings are mapped to ids in the order of the task's label names (or sorted, for a
custom task without ``labels``). A row without a label (an empty or blank cell, or JSON
``null``) is a :class:`DataError` naming the file and the row, never a class of its own.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from hftune.data.tasks import HUB_DATASET, ResolvedTask
from hftune.errors import DataError

SPLIT_SUFFIXES = (".jsonl", ".json", ".csv", ".tsv")
DATA_DIR_ENV = "HFTUNE_DATA_DIR"


@dataclass(frozen=True)
class TaskData:
    """Raw splits of one task: text columns renamed to the task's fields, ``label`` as int."""

    splits: dict[str, pd.DataFrame]
    text_fields: tuple[str, ...]
    label_names: tuple[str, ...]
    source: str

    @property
    def num_labels(self) -> int:
        return len(self.label_names)


def find_data_dir(task: ResolvedTask, data_dir: Path | None) -> Path | None:
    """The local folder to read, or ``None`` to use the Hub."""
    if data_dir is not None:
        if not Path(data_dir).is_dir():
            raise DataError(f"task.data_dir: folder '{data_dir}' does not exist")
        return Path(data_dir)
    root = os.environ.get(DATA_DIR_ENV)
    if root and (Path(root) / task.name).is_dir():
        return Path(root) / task.name
    return None


def load_task_data(task: ResolvedTask, data_dir: Path | None = None) -> TaskData:
    """Read train and validation (and test, when declared) and normalise them.

    The three split names are distinct (a :class:`ResolvedTask` checks that when it is made:
    :func:`hftune.data.tasks.check_split_names`), so no rows are read twice under two roles.
    """
    folder = find_data_dir(task, data_dir)
    wanted = [task.train_split, task.validation_split] + (
        [task.test_split] if task.test_split else [])
    if folder is not None:
        files = {split: _split_file(folder, split) for split in wanted}
        frames = {split: read_split_file(path) for split, path in files.items()}
        source = str(folder.resolve())
        origins = {split: str(path) for split, path in files.items()}
    elif task.is_glue:
        frames = _load_from_hub(task, wanted)
        source = f"hub:{HUB_DATASET}/{task.name}"
        origins = {split: f"{source} [{split}]" for split in wanted}
    else:
        raise DataError(f"task '{task.name}': a custom task needs task.data_dir (or --data-dir)")
    return normalise(task, frames, source, origins)


def _split_file(folder: Path, split: str) -> Path:
    for suffix in SPLIT_SUFFIXES:
        path = folder / f"{split}{suffix}"
        if path.is_file():
            return path
    raise DataError(
        f"{folder}: no file for split '{split}' (expected {split}.jsonl, .json, .csv or .tsv)"
    )


def read_split_file(path: Path) -> pd.DataFrame:
    """Read one split file into a DataFrame; unreadable or empty files are a :class:`DataError`."""
    try:
        if path.suffix == ".jsonl":
            frame = pd.read_json(path, lines=True, dtype=False)
        elif path.suffix == ".json":
            frame = _read_json_or_lines(path)
        elif path.suffix == ".tsv":
            frame = pd.read_csv(path, sep="\t", quoting=csv.QUOTE_NONE, dtype=str,
                                keep_default_na=False)
        else:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"{path}: cannot read the data file ({reason})") from None
    if len(frame) == 0:
        raise DataError(f"{path}: the file has no rows")
    return frame


def _read_json_or_lines(path: Path) -> pd.DataFrame:
    """A ``.json`` file as one JSON document, else as JSON Lines; if neither parses, a
    ``ValueError`` that says both were tried (with the JSON parser's reason)."""
    try:
        return pd.read_json(path, dtype=False)
    except ValueError as as_json:
        try:
            return pd.read_json(path, lines=True, dtype=False)
        except ValueError:
            reason = str(as_json).splitlines()[0] if str(as_json) else "invalid JSON"
            raise ValueError(f"neither JSON nor JSON Lines: {reason}") from None


def _load_from_hub(task: ResolvedTask, splits: list[str]) -> dict[str, pd.DataFrame]:
    import datasets

    try:
        ds = datasets.load_dataset(HUB_DATASET, task.name)
    except Exception as exc:  # network, auth, missing config: one message for all
        raise DataError(
            f"task '{task.name}': could not load {HUB_DATASET} from the Hub "
            f"({type(exc).__name__}); offline, point {DATA_DIR_ENV} or task.data_dir at local files"
        ) from None
    missing = [split for split in splits if split not in ds]
    if missing:
        raise DataError(f"task '{task.name}': {HUB_DATASET}/{task.name} has no split "
                        f"'{missing[0]}'; its splits: {', '.join(ds)}")
    return {split: ds[split].to_pandas() for split in splits}


def normalise(task: ResolvedTask, frames: dict[str, pd.DataFrame], source: str,
              origins: dict[str, str] | None = None) -> TaskData:
    """Pick the text columns, check and map labels, and drop everything else.

    ``origins`` names where each split was read (its file), for errors about one row; a row
    whose label is missing (empty or blank text, ``None``, NaN) is a :class:`DataError` that
    names that file and the row, checked before any class names are taken from the data.
    """
    origins = origins or {}
    first = frames[task.train_split]
    fields = next((f for f in task.field_aliases if all(c in first.columns for c in f)), None)
    if fields is None:
        want = " or ".join("/".join(f) for f in task.field_aliases)
        raise DataError(
            f"{source}: split '{task.train_split}' lacks the text columns {want}; "
            f"columns found: {', '.join(map(str, first.columns))} (set task.text_fields)"
        )
    _label_col(task, first, source)
    for split, frame in frames.items():
        missing = [c for c in (*fields, task.label_field) if c not in frame.columns]
        if missing:
            raise DataError(
                f"{source}: split '{split}' lacks the column(s) {', '.join(missing)}; "
                f"columns found: {', '.join(map(str, frame.columns))}"
            )
        _check_labels_present(frame[task.label_field], task.label_field,
                              origins.get(split, f"{source} [{split}]"))
    label_names = task.label_names or _labels_from_data(first[task.label_field])
    out: dict[str, pd.DataFrame] = {}
    for split, frame in frames.items():
        labels = _map_labels(frame[task.label_field], label_names, f"{source} [{split}]")
        clean = pd.DataFrame({f: frame[f].astype(str) for f in fields})
        clean["label"] = labels
        out[split] = clean.reset_index(drop=True)
    train_classes = out[task.train_split]["label"].nunique()
    if train_classes < 2:
        raise DataError(
            f"{source}: the training split has a single class; a classifier needs at least two"
        )
    return TaskData(splits=out, text_fields=tuple(fields), label_names=tuple(label_names),
                    source=source)


def _label_col(task: ResolvedTask, frame: pd.DataFrame, source: str) -> str:
    if task.label_field not in frame.columns:
        raise DataError(
            f"{source}: no label column '{task.label_field}'; columns found: "
            f"{', '.join(map(str, frame.columns))} (set task.label_field)"
        )
    return task.label_field


def _is_missing(value: object) -> bool:
    """A label cell with nothing in it: ``None``, NaN, or text that is empty or blank."""
    if isinstance(value, str):
        return not value.strip()
    return value is None or (pd.api.types.is_scalar(value) and bool(pd.isna(value)))


def _check_labels_present(column: pd.Series, label_field: str, origin: str) -> None:
    """Raise a :class:`DataError` at the first row of ``column`` without a label.

    Rows are counted from 1 over the data rows (records, for JSON); for a CSV/TSV file the
    line is given too, the header being line 1 (exact unless the file has blank lines or
    quoted line breaks).
    """
    for i, value in enumerate(column.tolist()):
        if _is_missing(value):
            where = f"row {i + 1}" + (
                f" (line {i + 2})" if origin.endswith((".csv", ".tsv")) else "")
            raise DataError(f"{origin}: {where} has no label (column '{label_field}' is "
                            f"empty); give every row a label or remove the row")


def _labels_from_data(column: pd.Series) -> tuple[str, ...]:
    """Class names when the config gives none: integer labels from 0 are class ids (0..max);
    other integers (e.g. 1 and 2) are names in numeric order, so that no class is invented;
    anything else, the distinct values sorted."""
    values = column.dropna().unique().tolist()
    numbers = [n for v in values if (n := _as_int(v)) is not None]
    if values and len(numbers) == len(values):
        if min(numbers) == 0:
            return tuple(str(i) for i in range(max(numbers) + 1))
        return tuple(str(i) for i in sorted(set(numbers)))
    return tuple(sorted(str(v) for v in values))


def _as_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def _map_labels(column: pd.Series, names: tuple[str, ...], where: str) -> list[int]:
    index = {name: i for i, name in enumerate(names)}
    by_number = {n: i for i, name in enumerate(names) if (n := _as_int(name)) is not None}
    out: list[int] = []
    for value in column.tolist():
        as_int = _as_int(value)
        if str(value) in index:
            out.append(index[str(value)])
        elif as_int is not None and by_number:  # integer class names: 2.0 is the class "2"
            if as_int not in by_number:
                raise DataError(f"{where}: label {value!r} is not one of the task's labels "
                                f"({', '.join(names)})")
            out.append(by_number[as_int])
        elif as_int is not None and 0 <= as_int < len(names):
            out.append(as_int)
        else:
            unlabelled = (" (-1 marks an unlabelled row, as in GLUE's test splits: use a "
                          "labelled split)") if as_int == -1 else ""
            raise DataError(
                f"{where}: label {value!r} is not one of the task's labels "
                f"({', '.join(names)} or their ids 0..{len(names) - 1}){unlabelled}"
            )
    return out
