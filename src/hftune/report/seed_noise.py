"""Seed noise in the report: rerun mean ± std, and whether studies differ by more than it.

Reads ``study.json`` ``reruns`` (written by ``hftune rerun``; see :mod:`hftune.study.rerun`):
per rerun config its rank, trial, mean, std and n, and ``seed_std``, the pooled std over configs.
Studies without reruns contribute nothing; with none at all, there is nothing to say. Only the
rerun of the trial the report calls best (rank 1 and that trial) is shown as the best config's:
never another config's numbers in its place.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

from hftune.report.data import Objective, StudyData


def rerun_configs(data: StudyData) -> list[dict[str, Any]]:
    """The study's rerun entries (``study.json`` ``reruns.configs``); ``[]`` without reruns."""
    reruns = data.raw.get("reruns")
    configs = reruns.get("configs") if isinstance(reruns, dict) else None
    return [c for c in configs or [] if isinstance(c, dict)]


def rerun_of_best(data: StudyData) -> dict[str, Any] | None:
    """The rerun entry of the study's best config: rank 1, and of the trial the report calls
    best (:meth:`StudyData.best`); ``None`` without one (no reruns, or a resume has made
    another trial the best since). Its ``mean`` is ``None`` when every rerun of it failed."""
    best = data.best()
    if best is None:
        return None
    for entry in rerun_configs(data):
        if _rank(entry) == 1 and entry.get("trial_id") == best.trial_id:
            return entry
    return None


def seed_std(data: StudyData) -> float | None:
    """The study's pooled seed std (``None`` without reruns of at least two seeds)."""
    value = (data.raw.get("reruns") or {}).get("seed_std")
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def mean_std_cell(data: StudyData) -> str:
    """``mean ± std (n seeds)`` of the best config's reruns (:func:`rerun_of_best`),
    ``reruns failed`` when none of them gave a score, or ``-`` when it has no reruns."""
    row = rerun_of_best(data)
    if row is None:
        return "-"
    if row.get("mean") is None:
        return "reruns failed"
    std = "?" if row.get("std") is None else f"{float(row['std']):.4f}"
    return f"{float(row['mean']):.4f} ± {std} ({row.get('n', '?')} seeds)"


def seed_noise_notes(studies: list[StudyData]) -> list[str]:
    """Sentences comparing the studies' best validation values with the measured seed std.

    Seed noise is measured per objective (metric, mode, score rule:
    :class:`~hftune.report.data.Objective`): the noise level of an objective
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
    names = [objective.metric for objective in objectives]
    levels: dict[Objective, float] = {}
    notes = []
    for objective in objectives:
        measured = [(s, v) for s, v in noise if _objective(s) == objective]
        if not measured:
            continue
        levels[objective] = max(v for _, v in measured)
        label = (objective.metric if names.count(objective.metric) == 1
                 else objective.label)
        notes.append(f"Seed noise: the std of the validation {label} over reruns with "
                     f"different seeds is {levels[objective]:.4f} (pooled over the rerun "
                     f"configs of {', '.join(s.label for s, _ in measured)}).")
    for s in studies:
        notes.extend(_best_rerun_notes(s))
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


def _best_rerun_notes(data: StudyData) -> list[str]:
    """What the reruns say about the study's best config: its rerun mean ± std next to its
    study score, that its reruns failed, or that they are of a trial no longer the best."""
    row = rerun_of_best(data)
    if row is None:
        best = data.best()
        first = next((c for c in rerun_configs(data) if _rank(c) == 1), None)
        if best is None or first is None or first.get("trial_id") is None:
            return []
        return [f"{data.label}: its reruns were of trial {first['trial_id']}, no "
                f"longer the best trial ({best.trial_id}); run hftune rerun again to measure "
                f"the best config."]
    if row.get("mean") is None:
        return [f"{data.label}: every rerun of its best config (trial {row['trial_id']}) "
                f"failed; no rerun mean ± std."]
    if row.get("study_score") is None:
        return []
    return [f"{data.label}: its best config scored {float(row['study_score']):.4f} in the "
            f"study and {mean_std_cell(data)} when rerun."]


def _rank(entry: dict[str, Any]) -> int | None:
    rank = entry.get("rank")
    try:
        return int(rank) if rank is not None else None
    except (TypeError, ValueError):
        return None


def _objective(data: StudyData) -> Objective:
    return data.objective


def _best(data: StudyData) -> float | None:
    best = data.best()
    return data.score(best) if best is not None else None
