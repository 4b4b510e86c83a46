"""``task.type: token_classification``: a tag per word (named entities: WNUT-17, CoNLL-2003).

A row is a list of words (``tokens_field``, default ``tokens``) and a tag per word
(``tags_field``, default ``ner_tags``): tag names in IOB2 form (``B-person``, ``I-person``,
``O``) or their ids when the task's label names are given (``task.labels`` or a known task).
Preprocessing follows transformers' ``run_ner.py``: the words are tokenized with
``is_split_into_words``, the first sub-token of each word carries the word's tag and the others
``-100`` (ignored by the loss and the metrics; with ``label_all_tokens`` they carry the word's
tag, ``B-`` as ``I-``); batches are padded by
``DataCollatorForTokenClassification``. A word the tokenizer turns into no token at all (e.g. a
lone U+FE0F variation selector) and the words cut by ``max_length`` are not scored, as in
``run_ner.py``. Metrics are entity-level, as ``seqeval`` computes them in its default
(conlleval-compatible) mode, on arrays (:mod:`hftune.tasks._entities`): ``f1`` (the standard
one), ``precision``, ``recall``, and token ``accuracy``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from hftune.errors import DataError
from hftune.tasks._rows import as_int, check_columns, row_name
from hftune.tasks.base import Metrics, TaskType, TokenizedSplit, logits_of

IGNORED = -100  # the label of a sub-token that is not a word's first, and of special tokens


def entity_scores(gold: list[np.ndarray], predicted: list[np.ndarray],
                  label_names: tuple[str, ...], names: tuple[str, ...]) -> dict[str, float]:
    """Entity-level precision, recall and F1 (micro over entity types, seqeval's default
    mode: :mod:`hftune.tasks._entities`) and token accuracy of predicted tag ids against the
    gold ones, one array per row."""
    from hftune.tasks._entities import entity_counts, micro_scores

    out: dict[str, float] = {}
    entities = micro_scores(*entity_counts(gold, predicted, label_names)) \
        if set(names) & {"f1", "precision", "recall"} else {}
    for name in names:
        if name == "accuracy":
            tokens = sum(len(g) for g in gold)
            right = sum(int((g == p).sum()) for g, p in zip(gold, predicted, strict=True))
            out[name] = right / tokens if tokens else 0.0
        elif name in entities:
            out[name] = float(entities[name])
        else:
            raise ValueError(f"unknown metric {name!r}")
    return out


def aligned_tags(logits: np.ndarray, label_ids: np.ndarray
                 ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Gold and predicted tag ids of every scored token (label id not ``-100``), one array
    per row: the argmax of the logits, in the gold's positions."""
    preds = np.asarray(logits).argmax(axis=-1)
    gold_rows, pred_rows = [], []
    for pred_row, gold_row in zip(preds, np.asarray(label_ids), strict=True):
        keep = gold_row != IGNORED
        gold_rows.append(gold_row[keep])
        pred_rows.append(pred_row[keep])
    return gold_rows, pred_rows


def word_labels(word_ids: list[int | None], tags: list[int],
                inside: Mapping[int, int] | None = None) -> list[int]:
    """The label of each token: the tag of its word on the word's first token, ``-100`` on
    special tokens (``word_ids`` is ``None`` there) and on a word's other tokens, unless
    ``inside`` is given (``label_all_tokens``): then those carry the word's tag too, a ``B-``
    tag as its ``I-`` tag (``inside`` maps a tag id to that of its ``I-`` tag)."""
    labels, previous = [], None
    for word in word_ids:
        if word is None:
            labels.append(IGNORED)
        elif word != previous:
            labels.append(tags[word])
        else:
            labels.append(IGNORED if inside is None else inside.get(tags[word], tags[word]))
        previous = word
    return labels


def inside_tags(label_names: tuple[str, ...]) -> dict[int, int]:
    """For each ``B-X`` tag id, the id of ``I-X`` (where the task has it)."""
    index = {n: i for i, n in enumerate(label_names)}
    return {i: index[f"I-{n[2:]}"] for i, n in enumerate(label_names)
            if n.startswith("B-") and f"I-{n[2:]}" in index}


def _list(value: Any) -> list | None:
    if isinstance(value, np.ndarray):
        value = value.tolist()
    return list(value) if isinstance(value, list | tuple) else None


class TokenClassification(TaskType):
    name = "token_classification"
    fields: ClassVar[Mapping[str, Any]] = {"tokens_field": "tokens", "tags_field": "ner_tags",
                                           "label_all_tokens": False, "labels": None}
    model_class = "AutoModelForTokenClassification"
    metric_names = ("f1", "precision", "recall", "accuracy")
    pipeline_tag = "token-classification"

    def normalise(self, frames: Mapping[str, pd.DataFrame], train_split: str,
                  origins: Mapping[str, str]) -> tuple[dict[str, pd.DataFrame], tuple[str, ...]]:
        """Columns ``tokens`` (lists of words) and ``label`` (lists of tag ids). The tag names:
        the task's, else every tag of the training split (``O`` first, then sorted). A row
        whose words and tags differ in number, a word that is not text and a tag outside the
        names are refused, naming the file and the row."""
        words_col = str(self.options.get("tokens_field") or "tokens")
        tags_col = str(self.options.get("tags_field") or "ner_tags")
        rows: dict[str, tuple[list[list[str]], list[list[Any]]]] = {}
        for split, frame in frames.items():
            origin = origins.get(split, split)
            check_columns(frame, [words_col, tags_col], origin, split,
                          "set task.tokens_field and task.tags_field")
            rows[split] = self._rows(frame[words_col].tolist(), frame[tags_col].tolist(),
                                     origin, words_col, tags_col)
        names = self.settings.label_names or self._names_from(rows[train_split][1],
                                                             origins.get(train_split, ""))
        out = {}
        for split, (words, tags) in rows.items():
            origin = origins.get(split, split)
            ids = [self._tag_ids(row, names, origin, i) for i, row in enumerate(tags)]
            out[split] = pd.DataFrame({"tokens": words, "label": ids})
        return out, tuple(names)

    @staticmethod
    def _rows(words: list[Any], tags: list[Any], origin: str, words_col: str,
              tags_col: str) -> tuple[list[list[str]], list[list[Any]]]:
        out_words, out_tags = [], []
        for i, (w, t) in enumerate(zip(words, tags, strict=True)):
            where = f"{origin}: {row_name(i, origin)}"
            w_list, t_list = _list(w), _list(t)
            if w_list is None or t_list is None:
                bad = words_col if w_list is None else tags_col
                raise DataError(f"{where} has {(w if w_list is None else t)!r} in column "
                                f"'{bad}', not a list; a row lists its words and a tag per word")
            if len(w_list) != len(t_list):
                raise DataError(f"{where} has {len(w_list)} words but {len(t_list)} tags; "
                                f"give each word one tag")
            if not all(isinstance(x, str) for x in w_list):
                raise DataError(f"{where} has a word that is not text in column '{words_col}'")
            out_words.append(w_list)
            out_tags.append(t_list)
        return out_words, out_tags

    @staticmethod
    def _names_from(tags: list[list[Any]], origin: str) -> tuple[str, ...]:
        found = {t for row in tags for t in row}
        if any(as_int(t) is not None and not isinstance(t, str) for t in found):
            raise DataError(f"{origin}: the tags are ids; give their names in task.labels (in "
                            f"id order) so that entities can be scored")
        named = sorted(str(t) for t in found if t != "O")
        return ("O", *named) if "O" in found else tuple(named)

    @staticmethod
    def _tag_ids(row: list[Any], names: tuple[str, ...], origin: str, i: int) -> list[int]:
        index = {n: k for k, n in enumerate(names)}
        out = []
        for tag in row:
            k = index.get(str(tag)) if isinstance(tag, str) else None
            if k is None and not isinstance(tag, str) and (n := as_int(tag)) is not None \
                    and 0 <= n < len(names):
                k = n
            if k is None:
                raise DataError(f"{origin}: {row_name(i, origin)} has the tag {tag!r}, not one "
                                f"of the task's tags ({', '.join(names)})")
            out.append(k)
        return out

    def one_class(self, frame: pd.DataFrame) -> bool:
        return len({t for row in frame["label"] for t in row}) < 2

    def tokenize(self, frame: pd.DataFrame, tokenizer: Any, max_length: int,
                 label_names: tuple[str, ...], *, training: bool) -> TokenizedSplit:
        import datasets

        encoded = tokenizer(frame["tokens"].tolist(), is_split_into_words=True,
                            truncation=True, max_length=max_length)
        columns = {k: encoded[k] for k in ("input_ids", "attention_mask", "token_type_ids")
                   if k in encoded}
        inside = inside_tags(label_names) if self.options.get("label_all_tokens") else None
        columns["labels"] = [word_labels(encoded.word_ids(i), tags, inside)
                             for i, tags in enumerate(frame["label"].tolist())]
        columns["length"] = [len(ids) for ids in encoded["input_ids"]]
        return TokenizedSplit(datasets.Dataset.from_dict(columns), len(frame))

    def collator(self, tokenizer: Any) -> Any:
        from transformers import DataCollatorForTokenClassification

        return DataCollatorForTokenClassification(tokenizer)

    def compute_metrics(self, split: TokenizedSplit, label_names: tuple[str, ...]) -> Metrics:
        names = self.metrics

        def compute(eval_pred: Any) -> dict[str, float]:
            gold, predicted = aligned_tags(logits_of(eval_pred.predictions),
                                           eval_pred.label_ids)
            return entity_scores(gold, predicted, label_names, names)

        return compute

    def describe(self, label_names: tuple[str, ...]) -> str:
        return f"token classification ({len(label_names)} tags: {', '.join(label_names)})"
