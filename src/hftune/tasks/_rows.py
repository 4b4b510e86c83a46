"""Row checks every task type shares: missing or malformed cells are one-line
:class:`~hftune.errors.DataError` naming the file and the row, and class labels mapped to ids."""

from __future__ import annotations

import pandas as pd

from hftune.errors import DataError


def is_missing(value: object) -> bool:
    """A label cell with nothing in it: ``None``, NaN, or text that is empty or blank."""
    if isinstance(value, str):
        return not value.strip()
    return value is None or (pd.api.types.is_scalar(value) and bool(pd.isna(value)))


def row_name(i: int, origin: str) -> str:
    """Row ``i`` (from 0) of ``origin`` as errors name it: ``row 3`` (records, for JSON, counted
    from 1), with ``(line 4)`` for a CSV/TSV file, whose header is line 1 (exact unless the file
    has blank lines or quoted line breaks)."""
    return f"row {i + 1}" + (f" (line {i + 2})" if origin.endswith((".csv", ".tsv")) else "")


def check_columns(frame: pd.DataFrame, columns: list[str], origin: str, split: str,
                  hint: str = "") -> None:
    """Raise a :class:`DataError` naming the ``columns`` split ``split`` (read from ``origin``)
    lacks, with the columns it has and ``hint`` (which task keys name them)."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(f"{origin}: split '{split}' lacks the column(s) {', '.join(missing)}; "
                        f"columns found: {', '.join(map(str, frame.columns))}"
                        + (f" ({hint})" if hint else ""))


def check_labels_present(column: pd.Series, label_field: str, origin: str) -> None:
    """Raise a :class:`DataError` at the first row of ``column`` without a label, or with one
    that is not a single value (a list or an object), naming the row (see :func:`row_name`)."""
    for i, value in enumerate(column.tolist()):
        if not pd.api.types.is_scalar(value):
            raise DataError(f"{origin}: {row_name(i, origin)} has the label {value!r} (a "
                            f"{type(value).__name__}) in column '{label_field}'; give each row "
                            f"one class name or id")
        if is_missing(value):
            raise DataError(f"{origin}: {row_name(i, origin)} has no label (column '{label_field}' "
                            f"is empty); give every row a label or remove the row")


def check_texts(column: pd.Series, field: str, origin: str) -> None:
    """Raise a :class:`DataError` at the first row of ``column`` whose text is missing (no such
    key in a JSON record, ``null``, NaN) or is not text (a number, a list, an object), naming
    the row (see :func:`row_name`). Empty text is allowed."""
    for i, value in enumerate(column.tolist()):
        if isinstance(value, str):
            continue
        if pd.api.types.is_scalar(value) and (value is None or bool(pd.isna(value))):
            raise DataError(f"{origin}: {row_name(i, origin)} has no text in column '{field}' "
                            f"(missing or null); give every row its text or remove the row")
        raise DataError(f"{origin}: {row_name(i, origin)} has {value!r} (a {type(value).__name__}) "
                        f"in the text column '{field}', not text; quote it as a string or "
                        f"check task.text_fields")


def labels_from_data(column: pd.Series) -> tuple[str, ...]:
    """Class names when the config gives none: integer labels from 0 are class ids (0..max);
    other integers (e.g. 1 and 2) are names in numeric order, so that no class is invented;
    anything else, the distinct values sorted."""
    values = column.dropna().unique().tolist()
    numbers = [n for v in values if (n := as_int(v)) is not None]
    if values and len(numbers) == len(values):
        if min(numbers) == 0:
            return tuple(str(i) for i in range(max(numbers) + 1))
        return tuple(str(i) for i in sorted(set(numbers)))
    return tuple(sorted(str(v) for v in values))


def as_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def map_labels(column: pd.Series, names: tuple[str, ...], where: str) -> list[int]:
    index = {name: i for i, name in enumerate(names)}
    by_number = {n: i for i, name in enumerate(names) if (n := as_int(name)) is not None}
    out: list[int] = []
    for value in column.tolist():
        number = as_int(value)
        if str(value) in index:
            out.append(index[str(value)])
        elif number is not None and by_number:  # integer class names: 2.0 is the class "2"
            if number not in by_number:
                raise DataError(f"{where}: label {value!r} is not one of the task's labels "
                                f"({', '.join(names)})")
            out.append(by_number[number])
        elif number is not None and 0 <= number < len(names):
            out.append(number)
        else:
            unlabelled = (" (-1 marks an unlabelled row, as in GLUE's test splits: use a "
                          "labelled split)") if number == -1 else ""
            raise DataError(
                f"{where}: label {value!r} is not one of the task's labels "
                f"({', '.join(names)} or their ids 0..{len(names) - 1}){unlabelled}"
            )
    return out
