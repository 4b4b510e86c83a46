"""Seed noise in the report: rerun mean ± std, and whether studies differ by more than it.

Reads ``study.json`` ``reruns`` (written by ``hftune rerun``; see :mod:`hftune.study.rerun`):
per rerun config its mean, std and n, and ``seed_std``, the pooled std over configs. Studies
without reruns contribute nothing; with none at all, there is nothing to say.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

from hftune.report.data import StudyData


def rerun_of_best(data: StudyData) -> dict[str, Any] | None:
    """The rerun entry of the study's best config (rank 1), or ``None`` without reruns."""
    reruns = data.raw.get("reruns") or {}
    configs = [c for c in reruns.get("configs") or [] if c.get("mean") is not None]
    if not configs:
        return None
    return min(configs, key=lambda c: int(c.get("rank") or 1))


def seed_std(data: StudyData) -> float | None:
    """The study's pooled seed std (``None`` without reruns of at least two seeds)."""
    value = (data.raw.get("reruns") or {}).get("seed_std")
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def mean_std_cell(data: StudyData) -> str:
    """``mean ± std (n seeds)`` of the best config's reruns, or ``-``."""
    row = rerun_of_best(data)
    if row is None:
        return "-"
    std = "?" if row.get("std") is None else f"{float(row['std']):.4f}"
    return f"{float(row['mean']):.4f} ± {std} ({row.get('n', '?')} seeds)"


def seed_noise_notes(studies: list[StudyData]) -> list[str]:
    """Sentences comparing the studies' best validation values with the measured seed std.

    Seed noise is measured per objective, ``(metric, mode)``: the noise level of an objective
    is the largest pooled seed std among the studies of that objective that have reruns (the
    cautious choice), and a std of one metric says nothing about another. For each pair of
    studies with the same objective whose noise was measured, a note says whether their best
    values differ by less than that std (within seed noise) or by more; pairs of an objective
    without reruns get no verdict. Empty when no study has reruns.
    """
    noise = [(s, v) for s in studies if (v := seed_std(s)) is not None]
    if not noise:
        return []
    objectives = list(dict.fromkeys(_objective(s) for s in studies))
    names = [metric for metric, _ in objectives]
    levels: dict[tuple[str, str], float] = {}
    notes = []
    for objective in objectives:
        measured = [(s, v) for s, v in noise if _objective(s) == objective]
        if not measured:
            continue
        levels[objective] = max(v for _, v in measured)
        metric, mode = objective
        label = metric if names.count(metric) == 1 else f"{metric} ({mode})"
        notes.append(f"Seed noise: the std of the validation {label} over reruns with "
                     f"different seeds is {levels[objective]:.4f} (pooled over the rerun "
                     f"configs of {', '.join(s.label for s, _ in measured)}).")
    for s in studies:
        row = rerun_of_best(s)
        if row is not None and row.get("study_score") is not None:
            notes.append(f"{s.label}: its best config scored {float(row['study_score']):.4f} "
                         f"in the study and {mean_std_cell(s)} when rerun.")
    for a, b in itertools.combinations(studies, 2):
        level = levels.get(_objective(a))
        if _objective(a) != _objective(b) or level is None:
            continue
        best_a = _best(a)
        best_b = _best(b)
        if best_a is None or best_b is None:
            continue
        gap = abs(best_a - best_b)
        verdict = ("less than the seed std: the difference is within seed noise"
                   if gap < level else "more than the seed std")
        notes.append(f"{a.label} vs {b.label}: best {a.metric} {best_a:.4f} vs {best_b:.4f}, "
                     f"a difference of {gap:.4f}, {verdict}.")
    return notes


def _objective(data: StudyData) -> tuple[str, str]:
    return data.metric, data.mode


def _best(data: StudyData) -> float | None:
    best = data.best()
    return data.score(best) if best is not None else None
