"""Which plots a report has: the same list for the HTML (plotly) and Markdown (PNG) writers.

A plot is left out, not drawn empty, when its study lacks what it needs: learning curves need a
report with a value of the metric (not NaN), the PBT plot needs ``lineage.jsonl`` (and then
replaces the per-config plots: a PBT member's score belongs to no single config), parallel
coordinates need two scored trials and a hyperparameter, importance needs
:data:`~hftune.report.importance.MIN_TRIALS` scored trials with a hyperparameter that varied. A
left-out plot leaves a note saying why. A study that stood still between runs (interrupted, then
resumed) gets a note too: the time axes are calendar time, so the pause is on them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from hftune.report.data import (
    StudyData,
    best_so_far,
    param_names,
    paused_minutes,
    reports_frame,
)
from hftune.report.importance import MIN_TRIALS, param_importances
from hftune.report.seed_noise import seed_noise_notes

KINDS = ("best_so_far", "expected_max", "curves", "pbt", "parallel", "importance")
PAUSE_NOTE_MIN = 1.0
"""A pause between runs this long (minutes) or longer gets a note (see
:func:`~hftune.report.data.paused_minutes`)."""


@dataclass
class PlotSpec:
    """One plot: its ``kind`` (one of :data:`KINDS`), title and study (``None``: all studies).

    ``extra`` carries what was computed to decide on the plot (importances) so the writers do
    not compute it twice.
    """

    kind: str
    title: str
    study: StudyData | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def slug(self) -> str:
        """A file-name-safe name: the kind and the study label, punctuation made ``-``.

        Not unique on its own (labels ``rte.grid`` and ``rte grid`` give the same slug): the
        writers put the plot's position in the plan in front of it (DOM ids, PNG names).
        """
        name = self.study.label if self.study else "all"
        safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in name)
        return f"{self.kind}-{safe}"


@dataclass
class ReportPlan:
    """The report's plots, in order, and notes for the plots left out."""

    plots: list[PlotSpec]
    notes: list[str]


def plan_report(studies: list[StudyData]) -> ReportPlan:
    """Decide the plots for ``studies``: two comparison plots, then each study's own."""
    plots: list[PlotSpec] = []
    notes: list[str] = []
    if any(s.scored_trials() for s in studies):
        if any(not best_so_far(s).empty for s in studies):
            plots.append(PlotSpec("best_so_far",
                                  "Best validation metric so far vs time since the start"))
        else:
            notes.append("No report carries a time: no best-so-far plot.")
        plots.append(PlotSpec("expected_max",
                              "Expected maximum validation performance vs trials run"))
    elif any(t.reports for s in studies for t in s.trials):
        notes.append("No trial reported a finite value of the metric: no comparison plots.")
    else:
        notes.append("No trial has reported the metric yet: no comparison plots.")
    for s in studies:
        pause = paused_minutes(s)
        if pause is not None and pause >= PAUSE_NOTE_MIN:
            notes.append(f"{s.label}: {pause:.1f} min passed between runs (interrupted, then "
                         f"resumed); the time axes count them, Wall min does not.")
        scored = s.scored_trials()
        if not reports_frame(s).empty:
            plots.append(PlotSpec("curves", f"{s.label}: learning curves", s))
        else:
            notes.append(_no_curves_note(s))
        if s.lineage:
            plots.append(PlotSpec("pbt", f"{s.label}: PBT hyperparameters over time", s))
            # a member's score comes from a schedule of configs and cloned weights, not from
            # the config it ends with: plotting scores against configs would mislead
            notes.append(f"{s.label}: PBT members changed configs during training (see the "
                         f"PBT plot); no parallel-coordinates or importance plot. Its trial "
                         f"table shows each member's config in effect at the evaluation that "
                         f"gives its score.")
            continue
        if len(scored) >= 2 and param_names(s):
            plots.append(PlotSpec("parallel", f"{s.label}: hyperparameters vs {s.metric}", s))
        importances = param_importances(s) if len(scored) >= MIN_TRIALS else None
        if importances:
            plots.append(PlotSpec("importance", f"{s.label}: hyperparameter importance "
                                  "(Optuna fANOVA)", s, {"importances": importances}))
        elif len(scored) < MIN_TRIALS:
            notes.append(f"{s.label}: hyperparameter importance needs at least {MIN_TRIALS} "
                         f"scored trials (it has {len(scored)}).")
        else:
            notes.append(f"{s.label}: no hyperparameter varied; no importance plot.")
    notes.extend(seed_noise_notes(studies))  # empty unless a study has `hftune rerun` results
    return ReportPlan(plots, notes)


def _no_curves_note(data: StudyData) -> str:
    """Why ``data`` has no learning curves: no reports yet, or none with a value of the metric
    (NaN, or the metric missing from them)."""
    reports = [r for t in data.trials for r in t.reports]
    if not reports:
        return f"{data.label}: no trial has reported yet."
    nan = sum(1 for r in reports if isinstance(r.get(data.metric), float)
              and math.isnan(r[data.metric]))
    return (f"{data.label}: no trial reported a finite value of the metric {data.metric} "
            f"({len(reports)} evaluations: {nan} NaN, {len(reports) - nan} without it); "
            f"no learning curves.")
