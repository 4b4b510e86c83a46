"""Classification metrics computed from logits (scikit-learn; no network, unlike ``evaluate.load``).

``evaluate.load("accuracy")`` downloads its metric script from the Hub, which offline machines
cannot do; these are the same definitions GLUE uses.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

METRICS = ("accuracy", "f1", "matthews_correlation")


def compute_classification_metrics(logits: np.ndarray, labels: np.ndarray, names: Sequence[str],
                                   num_labels: int) -> dict[str, float]:
    """The named metrics; ``f1`` is binary F1 for two labels, macro F1 otherwise."""
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
        elif name == "matthews_correlation":
            out[name] = float(matthews_corrcoef(labels, preds))
        else:
            raise ValueError(f"unknown metric {name!r}; known: {', '.join(METRICS)}")
    return out


def make_compute_metrics(names: Sequence[str],
                         num_labels: int) -> Callable[[Any], dict[str, float]]:
    """A ``Trainer(compute_metrics=...)`` function for these metrics."""

    def compute(eval_pred: Any) -> dict[str, float]:
        logits, labels = eval_pred.predictions, eval_pred.label_ids
        if isinstance(logits, tuple):
            logits = logits[0]
        return compute_classification_metrics(logits, labels, names, num_labels)

    return compute
