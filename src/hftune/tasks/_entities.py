"""Entity-level scores of tag sequences, as ``seqeval`` computes them in its default mode,
on arrays.

``seqeval``'s default (conlleval-compatible) mode reads a tag as its first character (``B``,
``I``, ``E``, ``S``, ``O``, ...) and the rest after the first ``-`` as the entity type, and
walks the sentences joined by an ``O`` between them, closing and opening chunks by
conlleval's rules (``seqeval.metrics.sequence_labeling.end_of_chunk`` / ``start_of_chunk``).
Precision, recall and F1 are micro-averaged over types: matches of (type, first, last) between
gold and predicted chunks. It does this one token at a time in Python: on WNUT-17's 1,009
validation sentences, three calls (precision, recall, F1) took 0.39 s, against the tiny model's
0.46 s evaluation loop (``benchmarks/postprocessing.py``). :func:`entity_counts` applies the
same rules to every token at once with numpy (a few milliseconds);
``tests/unit/test_tasks_token_classification.py`` checks it against ``seqeval`` itself on
random sequences of every tag kind.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

_START = -1  # the type code before the first token: seqeval's prev_type '' (no tag has it)


def tag_parts(label_names: Sequence[str]) -> tuple[list[str], list[str]]:
    """Each label's chunk tag and type as seqeval reads them (prefix mode): ``B-PER`` →
    (``B``, ``PER``), ``O`` → (``O``, ``_``), ``B`` → (``B``, ``_``)."""
    tags = [name[0] if name else "" for name in label_names]
    types = [name[1:].split("-", maxsplit=1)[-1] or "_" for name in label_names]
    return tags, types


def _chunks(ids: np.ndarray, tag: np.ndarray, kind: np.ndarray, codes: dict[str, int]
            ) -> np.ndarray:
    """The chunks of the joined sequence ``ids`` (label ids, sentences already separated by
    the id of ``O``, an ``O`` at the end) as one int64 per chunk (type, first, last)."""
    t, k = tag[ids], kind[ids]
    pt = np.concatenate(([codes["O"]], t[:-1]))  # seqeval starts with prev_tag 'O'
    pk = np.concatenate(([_START], k[:-1]))
    b, i, e, s, o = (codes.get(c, -2) for c in "BIESO")
    dot = codes.get(".", -2)
    # seqeval's end_of_chunk: after E or S; B, S or O after B or I; a type change after a tag
    new_type_prev = (pt != o) & (pt != dot) & (pk != k)
    end = ((pt == e) | (pt == s) | (((pt == b) | (pt == i)) & ((t == b) | (t == s) | (t == o)))
           | new_type_prev)
    # seqeval's start_of_chunk: B or S; E or I after E, S or O; a tag of a new type
    start = ((t == b) | (t == s)
             | (((pt == e) | (pt == s) | (pt == o)) & ((t == e) | (t == i)))
             | ((t != o) & (t != dot) & (pk != k)))
    index = np.arange(len(ids))
    # the chunk closed at i began at the latest start before i (0 when none yet, as seqeval)
    begun = np.maximum.accumulate(np.where(start, index, 0))
    at = np.flatnonzero(end)
    first = np.where(at > 0, begun[np.maximum(at - 1, 0)], 0)
    n = len(ids) + 1
    return (pk[at].astype(np.int64) + 1) * n * n + first * n + (at - 1)


def entity_counts(gold: Sequence[np.ndarray], predicted: Sequence[np.ndarray],
                  label_names: Sequence[str]) -> tuple[int, int, int]:
    """(matched, predicted, gold) chunk counts of per-sentence label-id arrays, by seqeval's
    default-mode rules (see the module docstring)."""
    tags, types = tag_parts(list(label_names) + ["O"])
    codes = {c: n for n, c in enumerate(dict.fromkeys(tags))}
    type_codes = {c: n for n, c in enumerate(dict.fromkeys(types))}
    tag = np.array([codes[c] for c in tags])
    kind = np.array([type_codes[c] for c in types])
    sep = np.array([len(label_names)])  # the "O" between sentences and at the end

    def joined(rows: Sequence[np.ndarray]) -> np.ndarray:
        parts = [p for row in rows for p in (np.asarray(row, dtype=np.int64), sep)]
        return np.concatenate(parts) if parts else sep

    g = np.unique(_chunks(joined(gold), tag, kind, codes))
    p = np.unique(_chunks(joined(predicted), tag, kind, codes))
    return len(np.intersect1d(g, p, assume_unique=True)), len(p), len(g)


def micro_scores(matched: int, predicted: int, gold: int) -> dict[str, float]:
    """Micro precision, recall and F1 from chunk counts, 0 where undefined (seqeval's
    ``zero_division=0``)."""
    precision = matched / predicted if predicted else 0.0
    recall = matched / gold if gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}
