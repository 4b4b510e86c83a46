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
``null``) is a :class:`DataError` naming the file and the row, never a class of its own; so is
a row whose label is not one value, or whose text is missing or not text, and a CSV/TSV row
with more or fewer fields than the header (naming its line).
"""

from __future__ import annotations

import csv
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from hftune.data.tasks import HUB_DATASET, ResolvedTask
from hftune.errors import ConfigError, DataError

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
        if Path(data_dir).exists() and not Path(data_dir).is_dir():
            raise DataError(f"task.data_dir: '{data_dir}' is a file, not a folder; point "
                            f"task.data_dir (or --data-dir) at the folder that holds the split "
                            f"files (train.jsonl, validation.jsonl, ...)")
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
    """Read one split file into a DataFrame; unreadable or empty files are a :class:`DataError`.

    A CSV/TSV row with more or fewer fields than the header is a :class:`DataError` naming
    its line (pandas would otherwise shift the columns, or fill the missing ones).
    """
    sep = "\t" if path.suffix == ".tsv" else ","
    quoting = csv.QUOTE_NONE if path.suffix == ".tsv" else csv.QUOTE_MINIMAL
    try:
        if path.suffix == ".jsonl":
            frame = pd.read_json(path, lines=True, dtype=False)
        elif path.suffix == ".json":
            frame = _read_json_or_lines(path)
        else:
            frame = _read_delimited(path, sep, quoting)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"{path}: cannot read the data file ({reason})") from None
    if len(frame) == 0:
        raise DataError(f"{path}: the file has no rows")
    return frame


def _read_delimited(path: Path, sep: str, quoting: int) -> pd.DataFrame:
    """A CSV/TSV file, all cells text; a record of another width than the header is a
    :class:`DataError` naming its line (:func:`_check_field_counts`), whether pandas reads the
    file (it fills missing fields, and drops or shifts extra ones) or refuses it (naming a
    record number, not a line)."""
    try:
        with warnings.catch_warnings():  # a row of another width: refused below, by line
            warnings.simplefilter("ignore", pd.errors.ParserWarning)
            frame = pd.read_csv(path, sep=sep, quoting=quoting, dtype=str,
                                keep_default_na=False, index_col=False)
    except ValueError:
        _check_field_counts(path, sep, quoting)
        raise
    _check_field_counts(path, sep, quoting)
    return frame


def _check_field_counts(path: Path, sep: str, quoting: int) -> None:
    """Raise a :class:`DataError` at the first CSV/TSV record whose number of fields is not
    the header's, naming its (first) line; blank lines are skipped, as pandas skips them. A
    file the csv module cannot parse strictly (an unterminated quote) is left to pandas."""
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh, delimiter=sep, quoting=quoting, strict=True)
        try:
            header = next(reader, None)
            line = reader.line_num + 1
            for record in reader:
                if record and header is not None and len(record) != len(header):
                    raise DataError(
                        f"{path}: line {line} has {len(record)} fields, but the header has "
                        f"{len(header)}; give every row one field per column"
                        + (" (a tab inside a text?)" if sep == "\t" else
                           " (quote a text that holds a comma)"))
                line = reader.line_num + 1
        except csv.Error:  # what pandas read, the csv module may not (a huge field): no check
            return


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

    ``origins`` names where each split was read (its file), for errors about one row. Each is
    a :class:`DataError` that names that file and the row, checked before any class names are
    taken from the data: a row whose label is missing (empty or blank text, ``None``, NaN) or
    not one value (a list or an object), and a row whose text is missing (no such key, or
    ``null``) or not text (a number, a list). A label field that is also a text field is a
    :class:`ConfigError`.
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
    if task.label_field in fields:
        raise ConfigError(
            f"task.label_field: '{task.label_field}' is also a text field "
            f"({', '.join(fields)}); the labels cannot be read as text too: set "
            f"task.label_field or task.text_fields to another column")
    for split, frame in frames.items():
        missing = [c for c in (*fields, task.label_field) if c not in frame.columns]
        if missing:
            raise DataError(
                f"{source}: split '{split}' lacks the column(s) {', '.join(missing)}; "
                f"columns found: {', '.join(map(str, frame.columns))}"
            )
        origin = origins.get(split, f"{source} [{split}]")
        _check_labels_present(frame[task.label_field], task.label_field, origin)
        for text_field in fields:
            _check_texts(frame[text_field], text_field, origin)
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


def _row(i: int, origin: str) -> str:
    """Row ``i`` (from 0) of ``origin`` as errors name it: ``row 3`` (records, for JSON, counted
    from 1), with ``(line 4)`` for a CSV/TSV file, whose header is line 1 (exact unless the file
    has blank lines or quoted line breaks)."""
    return f"row {i + 1}" + (f" (line {i + 2})" if origin.endswith((".csv", ".tsv")) else "")


def _check_labels_present(column: pd.Series, label_field: str, origin: str) -> None:
    """Raise a :class:`DataError` at the first row of ``column`` without a label, or with one
    that is not a single value (a list or an object), naming the row (see :func:`_row`)."""
    for i, value in enumerate(column.tolist()):
        if not pd.api.types.is_scalar(value):
            raise DataError(f"{origin}: {_row(i, origin)} has the label {value!r} (a "
                            f"{type(value).__name__}) in column '{label_field}'; give each row "
                            f"one class name or id")
        if _is_missing(value):
            raise DataError(f"{origin}: {_row(i, origin)} has no label (column '{label_field}' "
                            f"is empty); give every row a label or remove the row")


def _check_texts(column: pd.Series, field: str, origin: str) -> None:
    """Raise a :class:`DataError` at the first row of ``column`` whose text is missing (no such
    key in a JSON record, ``null``, NaN) or is not text (a number, a list, an object), naming
    the row (see :func:`_row`). Empty text is allowed."""
    for i, value in enumerate(column.tolist()):
        if isinstance(value, str):
            continue
        if pd.api.types.is_scalar(value) and (value is None or bool(pd.isna(value))):
            raise DataError(f"{origin}: {_row(i, origin)} has no text in column '{field}' "
                            f"(missing or null); give every row its text or remove the row")
        raise DataError(f"{origin}: {_row(i, origin)} has {value!r} (a {type(value).__name__}) "
                        f"in the text column '{field}', not text; quote it as a string or "
                        f"check task.text_fields")


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
