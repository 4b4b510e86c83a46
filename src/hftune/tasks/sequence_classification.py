"""``task.type: sequence_classification`` (the default): one class per text or text pair.

Labels are class names or ids (strings or integers; see :func:`hftune.tasks._rows.map_labels`),
the model ``AutoModelForSequenceClassification``; metrics from the logits' argmax: ``accuracy``,
``f1`` (binary for two classes, macro otherwise), ``matthews_correlation``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from hftune.errors import DataError
from hftune.tasks._rows import check_labels_present, labels_from_data, map_labels
from hftune.tasks._text import TEXT_FIELDS, pick_text_fields, texts_frame, tokenize_texts
from hftune.tasks.base import Metrics, TaskType, TokenizedSplit, logits_of


def classification_scores(logits: np.ndarray, labels: np.ndarray, names: tuple[str, ...],
                          num_labels: int) -> dict[str, float]:
    """The named metrics of argmax predictions; ``f1`` is binary F1 for two labels, macro F1
    otherwise."""
    from sklearn.metrics import f1_score, matthews_corrcoef

    preds = np.asarray(logits).argmax(axis=-1)
    labels = np.asarray(labels)
    out: dict[str, float] = {}
    for name in names:
        if name == "accuracy":
            out[name] = float((preds == labels).mean())
        elif name == "f1":
            average = "binary" if num_labels == 2 else "macro"
            out[name] = float(f1_score(labels, preds, average=average, zero_division=0))
        elif name == "macro_f1":
            out[name] = float(f1_score(labels, preds, average="macro", zero_division=0))
        elif name == "matthews_correlation":
            out[name] = float(matthews_corrcoef(labels, preds))
        else:
            raise ValueError(f"unknown metric {name!r}")
    return out


class SequenceClassification(TaskType):
    name = "sequence_classification"
    fields: ClassVar[Mapping[str, Any]] = {**TEXT_FIELDS, "labels": None}
    model_class = "AutoModelForSequenceClassification"
    metric_names = ("accuracy", "f1", "matthews_correlation", "macro_f1")

    def normalise(self, frames: Mapping[str, pd.DataFrame], train_split: str,
                  origins: Mapping[str, str]) -> tuple[dict[str, pd.DataFrame], tuple[str, ...]]:
        """Text columns and a label per row (checked before any class names are taken from
        the data); a training split of one class is refused."""
        fields = pick_text_fields(frames, train_split, self.options, origins)
        label_field = str(self.options.get("label_field") or "label")
        for split, frame in frames.items():
            check_labels_present(frame[label_field], label_field, origins.get(split, split))
        names = self.settings.label_names or labels_from_data(frames[train_split][label_field])
        out = {}
        for split, frame in frames.items():
            clean = texts_frame(frame, fields)
            clean["label"] = map_labels(frame[label_field], names, origins.get(split, split))
            out[split] = clean
        if out[train_split]["label"].nunique() < 2:
            raise DataError(f"{origins.get(train_split, train_split)}: the training split has "
                            f"a single class; a classifier needs at least two")
        return out, tuple(names)

    def one_class(self, frame: pd.DataFrame) -> bool:
        return frame["label"].nunique() < 2

    def tokenize(self, frame: pd.DataFrame, tokenizer: Any, max_length: int,
                 label_names: tuple[str, ...], *, training: bool) -> TokenizedSplit:
        import datasets

        columns = tokenize_texts(frame, tokenizer, max_length)
        columns["labels"] = frame["label"].tolist()
        return TokenizedSplit(datasets.Dataset.from_dict(columns), len(frame))

    def compute_metrics(self, split: TokenizedSplit, label_names: tuple[str, ...]) -> Metrics:
        names, num_labels = self.metrics, len(label_names)

        def compute(eval_pred: Any) -> dict[str, float]:
            return classification_scores(logits_of(eval_pred.predictions),
                                         eval_pred.label_ids, names, num_labels)

        return compute
