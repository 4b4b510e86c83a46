"""Extractive QA's two hard parts, kept apart from the task type: answer spans from the logits
of every window of a context (n-best post-processing, as transformers' ``utils_qa.py``
``postprocess_qa_predictions`` does), and SQuAD's exact match and F1 (as the official v1.1 and
v2.0 evaluation scripts compute them: answers normalised by lower-casing and removing
punctuation, the articles a/an/the and extra whitespace; the best score over the gold answers;
a question without an answer is right only when the prediction is empty)."""

from __future__ import annotations

import collections
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """Lower-case, without punctuation, articles and extra whitespace (SQuAD's scripts)."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def token_f1(prediction: str, gold: str) -> float:
    """Token-overlap F1 of the normalised texts; with an empty side, 1.0 when both are empty
    (the v2.0 script's rule; v1.1 never has an empty gold answer)."""
    pred, ref = normalize_answer(prediction).split(), normalize_answer(gold).split()
    if not pred or not ref:
        return float(pred == ref)
    common = collections.Counter(pred) & collections.Counter(ref)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(ref)
    return 2 * precision * recall / (precision + recall)


def squad_scores(predictions: Sequence[str], answers: Sequence[Sequence[str]]
                 ) -> dict[str, float]:
    """``exact_match`` and ``f1`` in percent, averaged over questions: each the best over the
    question's gold answers (none: the gold answer is the empty text)."""
    if not predictions:
        return {"exact_match": 0.0, "f1": 0.0}
    em = f1 = 0.0
    for pred, golds in zip(predictions, answers, strict=True):
        golds = list(golds) or [""]
        em += max(exact_match(pred, g) for g in golds)
        f1 += max(token_f1(pred, g) for g in golds)
    n = len(predictions)
    return {"exact_match": 100.0 * em / n, "f1": 100.0 * f1 / n}


@dataclass(frozen=True)
class Windows:
    """Where the windows (features) of an evaluation split come from: ``example`` (each
    window's question, by index) and ``offsets`` (each token's character span in the context,
    ``None`` for the question's and special tokens)."""

    example: list[int]
    offsets: list[list[tuple[int, int] | None]]


def best_answers(start_logits: np.ndarray, end_logits: np.ndarray, windows: Windows,
                 contexts: Sequence[str], *, version_2: bool, n_best: int = 20,
                 max_answer_length: int = 30, null_threshold: float = 0.0) -> list[str]:
    """The answer text of each question: over all its windows, the spans of the ``n_best``
    top start and end logits that lie in the context, end at or after their start and are at
    most ``max_answer_length`` tokens, the highest start + end logit winning. With
    ``version_2``, the empty answer wins when the lowest CLS score over the windows exceeds the
    best span's by more than ``null_threshold``."""
    per_example: dict[int, list[int]] = collections.defaultdict(list)
    for feature, example in enumerate(windows.example):
        per_example[example].append(feature)
    out = []
    for example, context in enumerate(contexts):
        best_score, best_text = -np.inf, ""
        null_score = None
        for feature in per_example.get(example, []):
            starts, ends = start_logits[feature], end_logits[feature]
            offsets = windows.offsets[feature]
            cls = float(starts[0] + ends[0])
            null_score = cls if null_score is None else min(null_score, cls)
            top_starts = np.argsort(starts)[-1:-n_best - 1:-1]
            top_ends = np.argsort(ends)[-1:-n_best - 1:-1]
            for s in top_starts:
                for e in top_ends:
                    if s >= len(offsets) or e >= len(offsets) or offsets[s] is None \
                            or offsets[e] is None:
                        continue
                    if e < s or e - s + 1 > max_answer_length:
                        continue
                    score = float(starts[s] + ends[e])
                    if score > best_score:
                        best_score, best_text = score, context[offsets[s][0]:offsets[e][1]]
        if version_2 and null_score is not None and (
                best_score == -np.inf or null_score - best_score > null_threshold):
            best_text = ""
        out.append(best_text)
    return out
