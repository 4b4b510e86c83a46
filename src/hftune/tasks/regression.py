"""``task.type: regression``: one number per text or text pair (STS-B's similarity scores).

The label is a number (a JSON number or numeric text); the model
``AutoModelForSequenceClassification`` with one output and ``problem_type: regression`` (mean
squared error). Metrics: ``pearson`` (the standard one), ``spearman``, ``mse``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from hftune.errors import DataError
from hftune.tasks._rows import check_labels_present, row_name
from hftune.tasks._text import TEXT_FIELDS, pick_text_fields, texts_frame, tokenize_texts
from hftune.tasks.base import Metrics, TaskType, TokenizedSplit, logits_of


def regression_scores(predictions: np.ndarray, targets: np.ndarray,
                      names: tuple[str, ...]) -> dict[str, float]:
    """Pearson and Spearman correlation and mean squared error of predictions against
    targets (a constant prediction has no correlation: 0.0)."""
    from scipy.stats import pearsonr, spearmanr

    preds = np.asarray(predictions, dtype=float).reshape(-1)
    targets = np.asarray(targets, dtype=float).reshape(-1)
    constant = bool(np.all(preds == preds[0])) if len(preds) else True
    out: dict[str, float] = {}
    for name in names:
        if name == "pearson":
            out[name] = 0.0 if constant else float(pearsonr(preds, targets)[0])
        elif name == "spearman":
            out[name] = 0.0 if constant else float(spearmanr(preds, targets)[0])
        elif name == "mse":
            out[name] = float(np.mean((preds - targets) ** 2))
        else:
            raise ValueError(f"unknown metric {name!r}")
    return out


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


class Regression(TaskType):
    name = "regression"
    fields: ClassVar[Mapping[str, Any]] = dict(TEXT_FIELDS)
    model_class = "AutoModelForSequenceClassification"
    metric_names = ("pearson", "spearman", "mse")
    minimised = ("mse",)
    with_labels = False

    def normalise(self, frames: Mapping[str, pd.DataFrame], train_split: str,
                  origins: Mapping[str, str]) -> tuple[dict[str, pd.DataFrame], tuple[str, ...]]:
        """Text columns and a finite number per row (a label that is not a number is refused,
        naming the row)."""
        fields = pick_text_fields(frames, train_split, self.options, origins)
        label_field = str(self.options.get("label_field") or "label")
        out = {}
        for split, frame in frames.items():
            origin = origins.get(split, split)
            check_labels_present(frame[label_field], label_field, origin)
            values = []
            for i, value in enumerate(frame[label_field].tolist()):
                number = _number(value)
                if number is None:
                    raise DataError(f"{origin}: {row_name(i, origin)} has the label {value!r} "
                                    f"in column '{label_field}', not a number; a regression "
                                    f"task needs a number per row")
                values.append(number)
            clean = texts_frame(frame, fields)
            clean["label"] = values
            out[split] = clean
        return out, ()

    def tokenize(self, frame: pd.DataFrame, tokenizer: Any, max_length: int,
                 label_names: tuple[str, ...], *, training: bool) -> TokenizedSplit:
        import datasets

        columns = tokenize_texts(frame, tokenizer, max_length)
        columns["labels"] = [float(v) for v in frame["label"].tolist()]
        return TokenizedSplit(datasets.Dataset.from_dict(columns), len(frame))

    def model_config(self, label_names: tuple[str, ...]) -> dict[str, Any]:
        return {"num_labels": 1, "problem_type": "regression"}

    def compute_metrics(self, split: TokenizedSplit, label_names: tuple[str, ...]) -> Metrics:
        names = self.metrics

        def compute(eval_pred: Any) -> dict[str, float]:
            return regression_scores(logits_of(eval_pred.predictions), eval_pred.label_ids,
                                     names)

        return compute

    def describe(self, label_names: tuple[str, ...]) -> str:
        return "regression (one number per input)"
