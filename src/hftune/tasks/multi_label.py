"""``task.type: multi_label``: any number of classes per text or text pair.

The label cell is a list of class names or ids (``[]``: none of them); the model
``AutoModelForSequenceClassification`` with ``problem_type: multi_label_classification`` (one
sigmoid per class). A class is predicted when its probability is over 0.5. Metrics:
``micro_f1`` (the standard one), ``macro_f1``, ``subset_accuracy`` (every class of a row right).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from hftune.errors import DataError
from hftune.tasks._rows import as_int, row_name
from hftune.tasks._text import TEXT_FIELDS, pick_text_fields, texts_frame, tokenize_texts
from hftune.tasks.base import Metrics, TaskType, TokenizedSplit, logits_of

THRESHOLD = 0.5


def multi_label_scores(logits: np.ndarray, targets: np.ndarray,
                       names: tuple[str, ...]) -> dict[str, float]:
    """Micro and macro F1 and subset accuracy of ``sigmoid(logits) > 0.5`` against 0/1
    targets."""
    from sklearn.metrics import f1_score

    probs = 1.0 / (1.0 + np.exp(-np.asarray(logits, dtype=float)))
    preds = (probs > THRESHOLD).astype(int)
    gold = (np.asarray(targets) > 0.5).astype(int)
    out: dict[str, float] = {}
    for name in names:
        if name == "micro_f1":
            out[name] = float(f1_score(gold, preds, average="micro", zero_division=0))
        elif name == "macro_f1":
            out[name] = float(f1_score(gold, preds, average="macro", zero_division=0))
        elif name == "subset_accuracy":
            out[name] = float((preds == gold).all(axis=1).mean())
        else:
            raise ValueError(f"unknown metric {name!r}")
    return out


def _classes(value: Any, where: str, label_field: str) -> list[str]:
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if not isinstance(value, list | tuple):
        raise DataError(f"{where} has {value!r} in column '{label_field}', not a list of "
                        f"classes; a multi-label row lists its classes ([] for none)")
    return [str(v) for v in value]


class MultiLabel(TaskType):
    name = "multi_label"
    fields: ClassVar[Mapping[str, Any]] = {**TEXT_FIELDS, "labels": None}
    model_class = "AutoModelForSequenceClassification"
    metric_names = ("micro_f1", "macro_f1", "subset_accuracy")

    def normalise(self, frames: Mapping[str, pd.DataFrame], train_split: str,
                  origins: Mapping[str, str]) -> tuple[dict[str, pd.DataFrame], tuple[str, ...]]:
        """Text columns and a list of classes per row, as 0/1 vectors over the label names
        (the config's, else every class of the training split, sorted)."""
        fields = pick_text_fields(frames, train_split, self.options, origins)
        label_field = str(self.options.get("label_field") or "label")
        lists = {split: [_classes(v, f"{origins.get(split, split)}: {row_name(i, '')}",
                                  label_field)
                         for i, v in enumerate(frame[label_field].tolist())]
                 for split, frame in frames.items()}
        names = self.settings.label_names or tuple(sorted({c for row in lists[train_split]
                                                           for c in row}))
        index = {n: i for i, n in enumerate(names)}
        out = {}
        for split, frame in frames.items():
            vectors = []
            for i, row in enumerate(lists[split]):
                vector = [0.0] * len(names)
                for cls in row:
                    pos = index.get(cls)
                    if pos is None and (n := as_int(cls)) is not None and 0 <= n < len(names):
                        pos = n  # an id
                    if pos is None:
                        raise DataError(
                            f"{origins.get(split, split)}: {row_name(i, '')} has the class "
                            f"{cls!r}, not one of the task's labels ({', '.join(names)})")
                    vector[pos] = 1.0
                vectors.append(vector)
            clean = texts_frame(frame, fields)
            clean["label"] = vectors
            out[split] = clean
        if len(names) < 2:
            raise DataError(f"{origins.get(train_split, train_split)}: the training split has "
                            f"fewer than two classes; a multi-label task needs at least two")
        return out, tuple(names)

    def tokenize(self, frame: pd.DataFrame, tokenizer: Any, max_length: int,
                 label_names: tuple[str, ...], *, training: bool) -> TokenizedSplit:
        import datasets

        columns = tokenize_texts(frame, tokenizer, max_length)
        columns["labels"] = [list(map(float, v)) for v in frame["label"].tolist()]
        return TokenizedSplit(datasets.Dataset.from_dict(columns), len(frame))

    def model_config(self, label_names: tuple[str, ...]) -> dict[str, Any]:
        return {**super().model_config(label_names),
                "problem_type": "multi_label_classification"}

    def compute_metrics(self, split: TokenizedSplit, label_names: tuple[str, ...]) -> Metrics:
        names = self.metrics

        def compute(eval_pred: Any) -> dict[str, float]:
            return multi_label_scores(logits_of(eval_pred.predictions), eval_pred.label_ids,
                                      names)

        return compute
