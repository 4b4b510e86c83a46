"""Load a task's splits from a local folder or the Hugging Face Hub; the task type checks them.

Where the data comes from, first match wins:

1. ``task.data_dir`` (or ``hftune run --data-dir``): a folder with one file per split;
2. ``$HFTUNE_DATA_DIR/<task name>/``: a root with one folder per task (``rte/``, ``sst2/``, ...);
3. the Hub: ``datasets.load_dataset(<dataset>, <config>)`` of a known task
   (:data:`hftune.tasks.known.KNOWN_TASKS`); ``hub_loader`` may be given another loader
   (tests give a fake one).

A split file is ``<split>.jsonl``, ``.json``, ``.csv`` or ``.tsv``. A ``.json`` file is one JSON
document (an array of records, or columns) or JSON Lines (as ``datasets.Dataset.to_json``
writes). TSV is read with quoting off (as GLUE's own files need). A CSV/TSV row with more or
fewer fields than the header is a :class:`DataError` naming its line. The rows are then the
task type's to check and normalise (:meth:`hftune.tasks.TaskType.normalise`): a missing or
malformed cell is a :class:`DataError` naming the file and the row.
"""

from __future__ import annotations

import csv
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from hftune.data.tasks import ResolvedTask
from hftune.errors import DataError

SPLIT_SUFFIXES = (".jsonl", ".json", ".csv", ".tsv")
DATA_DIR_ENV = "HFTUNE_DATA_DIR"


@dataclass(frozen=True)
class TaskData:
    """A task's splits as its type normalised them (its canonical columns), its label names
    (``()`` for a type without classes) and where they were read."""

    splits: dict[str, pd.DataFrame]
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


def load_task_data(task: ResolvedTask, data_dir: Path | None = None,
                   hub_loader: Any = None) -> TaskData:
    """Read train and validation (and test, when declared) and have the task type check and
    normalise them. ``hub_loader``: ``load_dataset``'s stand-in (default: ``datasets``').

    The three split names are distinct (a :class:`ResolvedTask` checks that when it is made:
    :func:`hftune.data.tasks.check_split_names`), so no rows are read twice under two roles.
    """
    folder = find_data_dir(task, data_dir)
    wanted = [task.train_split, task.validation_split] + (
        [task.test_split] if task.test_split else []) + list(task.extra_validation_splits)
    if folder is not None:
        files = {split: _split_file(folder, split) for split in wanted}
        frames = {split: read_split_file(path) for split, path in files.items()}
        source = str(folder.resolve())
        origins = {split: str(path) for split, path in files.items()}
    elif task.hub is not None:
        frames = _load_from_hub(task, wanted, hub_loader)
        source = f"hub:{task.hub[0]}" + (f"/{task.hub[1]}" if task.hub[1] else "")
        origins = {split: f"{source} [{split}]" for split in wanted}
    else:
        raise DataError(f"task '{task.name}': a custom task needs task.data_dir (or --data-dir)")
    return normalise(task, frames, source, origins)


def normalise(task: ResolvedTask, frames: dict[str, pd.DataFrame], source: str,
              origins: dict[str, str] | None = None) -> TaskData:
    """The task type's check and normalisation of raw splits
    (:meth:`hftune.tasks.TaskType.normalise`); ``origins`` names where each split was read
    (its file), for errors about one row (default: ``<source> [<split>]``)."""
    where = {split: (origins or {}).get(split, f"{source} [{split}]") for split in frames}
    splits, label_names = task.type.normalise(frames, task.train_split, where)
    return TaskData(splits={k: v.reset_index(drop=True) for k, v in splits.items()},
                    label_names=tuple(label_names), source=source)


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
            frame = pd.read_json(path, lines=True, dtype=False, precise_float=True)
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
        return pd.read_json(path, dtype=False, precise_float=True)
    except ValueError as as_json:
        try:
            return pd.read_json(path, lines=True, dtype=False, precise_float=True)
        except ValueError:
            reason = str(as_json).splitlines()[0] if str(as_json) else "invalid JSON"
            raise ValueError(f"neither JSON nor JSON Lines: {reason}") from None


def _load_from_hub(task: ResolvedTask, splits: list[str],
                   loader: Any = None) -> dict[str, pd.DataFrame]:
    """The splits of a known task from the Hub, as DataFrames (through ``loader``, default
    ``datasets.load_dataset``); any failure to load is one :class:`DataError`."""
    assert task.hub is not None
    dataset, config = task.hub
    if loader is None:
        import datasets

        loader = datasets.load_dataset
    where = dataset + (f"/{config}" if config else "")
    try:
        ds = loader(dataset, config) if config else loader(dataset)
    except Exception as exc:  # network, auth, missing config: one message for all
        raise DataError(
            f"task '{task.name}': could not load {where} from the Hub "
            f"({type(exc).__name__}); offline, point {DATA_DIR_ENV} or task.data_dir at local files"
        ) from None
    missing = [split for split in splits if split not in ds]
    if missing:
        raise DataError(f"task '{task.name}': {where} has no split '{missing[0]}'; its "
                        f"splits: {', '.join(ds)}")
    return {split: ds[split].to_pandas() for split in splits}
