"""``task.type: multiple_choice``: pick one of N endings for a context (SWAG, COPA).

A row has a context (``context_field``), optionally the start of the answer
(``question_field``: SWAG's ``sent2``, COPA's ``cause``/``effect``), the choices (one column
each, ``choices_fields``, or one column holding a list, ``choices_field``) and the index of the
right choice (``label_field``, from 0). Preprocessing follows transformers' ``run_swag.py``:
each choice is tokenized as the pair (context, question + " " + choice), the N pairs of a row
are one example, and ``DataCollatorForMultipleChoice`` pads them; the model is
``AutoModelForMultipleChoice``. Metric: ``accuracy``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from hftune.errors import ConfigError, DataError
from hftune.tasks._rows import as_int, check_columns, check_texts, row_name
from hftune.tasks.base import Metrics, TaskType, TokenizedSplit, logits_of


class MultipleChoice(TaskType):
    name = "multiple_choice"
    fields: ClassVar[Mapping[str, Any]] = {"context_field": None, "question_field": None,
                                           "choices_fields": None, "choices_field": None,
                                           "label_field": "label"}
    model_class = "AutoModelForMultipleChoice"
    metric_names = ("accuracy",)
    pipeline_tag = "multiple-choice"
    with_labels = False

    def _columns(self) -> tuple[str, str | None, tuple[str, ...] | None, str | None, str]:
        o = self.options
        if not o.get("context_field") or not (o.get("choices_fields") or o.get("choices_field")):
            raise ConfigError("task.context_field and task.choices_fields (or "
                              "task.choices_field): a multiple-choice task names its context "
                              "column and its choices")
        fields = tuple(o["choices_fields"]) if o.get("choices_fields") else None
        return (str(o["context_field"]), o.get("question_field"), fields,
                o.get("choices_field"), str(o.get("label_field") or "label"))

    def normalise(self, frames: Mapping[str, pd.DataFrame], train_split: str,
                  origins: Mapping[str, str]) -> tuple[dict[str, pd.DataFrame], tuple[str, ...]]:
        """Columns ``context``, ``choices`` (a list of texts: the question joined to each
        choice) and ``label`` (the right choice's index). Every row of every split must have
        the same number of choices, and a label in ``0..N-1``."""
        context, question, fields, list_field, label_field = self._columns()
        wanted = [context, *([question] if question else []), *(fields or [list_field]),
                  label_field]
        width: int | None = None
        out = {}
        for split, frame in frames.items():
            origin = origins.get(split, split)
            check_columns(frame, list(wanted), origin, split)
            for col in (context, *([question] if question else []), *(fields or ())):
                check_texts(frame[col], col, origin)
            choices = (frame[list(fields)].values.tolist() if fields
                       else [self._choice_list(v, origin, i, list_field)
                             for i, v in enumerate(frame[list_field].tolist())])
            prefixes = frame[question].tolist() if question else [""] * len(frame)
            gold = frame[label_field].tolist()  # Python values, not numpy scalars
            joined, labels = [], []
            for i, (prefix, row) in enumerate(zip(prefixes, choices, strict=True)):
                width = width or len(row)
                if len(row) != width:
                    raise DataError(f"{origin}: {row_name(i, origin)} has {len(row)} choices, "
                                    f"the others {width}; every row needs the same number")
                joined.append([f"{prefix} {c}".strip() for c in row])
                labels.append(self._label(gold[i], width, origin, i))
            out[split] = pd.DataFrame({"context": frame[context].tolist(), "choices": joined,
                                       "label": labels})
        return out, ()

    @staticmethod
    def _choice_list(value: Any, origin: str, i: int, column: str) -> list[str]:
        if isinstance(value, np.ndarray):
            value = value.tolist()
        if not isinstance(value, list | tuple) or len(value) < 2 or \
                not all(isinstance(v, str) for v in value):
            raise DataError(f"{origin}: {row_name(i, origin)} has {value!r} in column "
                            f"'{column}', not a list of two or more texts")
        return list(value)

    @staticmethod
    def _label(value: Any, width: int, origin: str, i: int) -> int:
        n = as_int(value)
        if n is None or not 0 <= n < width:
            raise DataError(f"{origin}: {row_name(i, origin)} has the label {value!r}; a "
                            f"multiple-choice label is the right choice's index, 0..{width - 1}")
        return n

    def one_class(self, frame: pd.DataFrame) -> bool:
        return False  # the right choice's position is not a class the model learns

    def tokenize(self, frame: pd.DataFrame, tokenizer: Any, max_length: int,
                 label_names: tuple[str, ...], *, training: bool) -> TokenizedSplit:
        import datasets

        choices = frame["choices"].tolist()
        width = len(choices[0]) if choices else 0
        firsts = [c for c, row in zip(frame["context"].tolist(), choices, strict=True)
                  for _ in row]
        seconds = [c for row in choices for c in row]
        encoded = tokenizer(firsts, seconds, truncation=True, max_length=max_length)
        columns: dict[str, list] = {}
        for key in ("input_ids", "attention_mask", "token_type_ids"):
            if key in encoded:
                flat = encoded[key]
                columns[key] = [flat[i:i + width] for i in range(0, len(flat), width)]
        columns["labels"] = frame["label"].tolist()
        columns["length"] = [max(len(ids) for ids in row) for row in columns["input_ids"]]
        return TokenizedSplit(datasets.Dataset.from_dict(columns), len(frame))

    def model_config(self, label_names: tuple[str, ...]) -> dict[str, Any]:
        return {}

    def collator(self, tokenizer: Any) -> Any:
        from transformers import DataCollatorForMultipleChoice

        return DataCollatorForMultipleChoice(tokenizer)

    def compute_metrics(self, split: TokenizedSplit, label_names: tuple[str, ...]) -> Metrics:
        names = self.metrics

        def compute(eval_pred: Any) -> dict[str, float]:
            preds = np.asarray(logits_of(eval_pred.predictions)).argmax(axis=-1)
            gold = np.asarray(eval_pred.label_ids)
            out = {}
            for name in names:
                if name != "accuracy":
                    raise ValueError(f"unknown metric {name!r}")
                out[name] = float((preds == gold).mean())
            return out

        return compute

    def describe(self, label_names: tuple[str, ...]) -> str:
        return "multiple choice (picks one of the choices for each context)"
