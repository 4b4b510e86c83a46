"""The report's tables as display strings, shared by the HTML and Markdown writers.

:func:`comparison_table` is the study comparison (one row per study); :func:`trial_table` lists
one study's trials. Both return ``(headers, rows)`` of plain strings; ``-`` marks a value that
is unknown or absent (no held-out metric, no price, a study that has not scored yet).
"""

from __future__ import annotations

import math
from typing import Any

from hftune.report.data import StudyData, comparable_price, summary_row, trials_frame
from hftune.report.seed_noise import mean_std_cell, rerun_configs

INTEGRAL_MAX = 1e15
"""Integral floats below this magnitude are shown as ints (``1234567.0`` as ``1234567``)."""


def fmt(value: Any, digits: int = 4, *, exact: bool = False) -> str:
    """A cell: ``-`` for None/NaN, ``str`` for non-floats; a float that is a whole number (a
    column of ints that pandas made float64 because some rows lack it) as an int, any other
    float with ``digits`` significant digits.

    ``exact`` (hyperparameter values): a float is given as many more digits as it needs to
    read back as the same number, so that distinct values never look the same.
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < INTEGRAL_MAX:
            return str(int(value))
        text = f"{value:.{digits}g}"
        while exact and float(text) != value and digits < 17:
            digits += 1
            text = f"{value:.{digits}g}"
        return text
    return str(value)


def fixed(value: float | None, decimals: int) -> str:
    """A cell with a fixed number of decimals, ``-`` for None/NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{decimals}f}"


def comparison_table(studies: list[StudyData],
                     price_per_hour: float | None = None) -> tuple[list[str], list[list[str]]]:
    """One row per study: strategy, trial counts, best and held-out metric, compute, wall
    minutes, cost, and the best trial's metric on each extra validation split (MNLI's
    mismatched set: measured at the evaluation that gives the trial its score, never selected
    on; a column only when a study has one). Compute is GPU-minutes when any run of the
    study's trials held GPUs (runs on CPUs alone then add 0), otherwise CPU-core-minutes
    (the unit is written in the cell);
    each run is priced at its own resources (:func:`~hftune.report.data.compute_minutes`);
    cost is at ``price_per_hour``, and ``-`` for every study when their units differ
    (:func:`~hftune.report.data.comparable_price`). The metric cell names the objective:
    ``accuracy (max)``, or ``accuracy (max, last)`` for a study scored by last evaluations."""
    price = comparable_price(studies, price_per_hour)
    headers = ["Study", "Strategy", "Status", "Trials (finished / stopped / errored)",
               "Metric", "Best (validation)", "Best trial (epoch)", "Held-out",
               "Compute", "Wall min",
               "Cost" if price_per_hour is None else f"Cost at {price_per_hour:g}/h"]
    rows = []
    summaries = [summary_row(s, price) for s in studies]
    for s, r in zip(studies, summaries, strict=True):
        counts = f"{r['trials']} ({r['finished']} / {r['stopped']} / {r['errored']})"
        live = [f"{r[k]} {k}" for k in ("running", "pending") if r[k]]
        if live:
            counts += " + " + ", ".join(live)
        best_at = "-"
        if r["best_trial"]:
            best_at = r["best_trial"] + (f" ({fmt(r['best_epoch'], 3)})"
                                         if r["best_epoch"] is not None else "")
        rows.append([
            r["study"], r["strategy"], r["status"], counts, s.objective.label,
            fixed(r["best"], 4), best_at, fixed(r["holdout"], 4),
            f"{r['compute_min']:.1f} {r['compute_unit']}-min", fixed(r["wall_min"], 1),
            fixed(r["cost"], 2),
        ])
    prefixes = list(dict.fromkeys(p for s in studies for p in s.study.extra_evaluations))
    for offset, prefix in enumerate(prefixes):  # e.g. MNLI's mismatched set: never selected on
        headers.insert(8 + offset, f"Best trial on {prefix}")
        for r, row in zip(summaries, rows, strict=True):
            row.insert(8 + offset, fixed(r["also"].get(prefix), 4))
    if any(rerun_configs(s) for s in studies):  # only after `hftune rerun`
        headers.insert(8, "Best config rerun (mean ± std)")
        for s, row in zip(studies, rows, strict=True):
            row.insert(8, mean_std_cell(s))
    return headers, rows


def trial_table(data: StudyData) -> tuple[list[str], list[list[str]]]:
    """One row per trial of ``data``: id (``*`` on the best), state, hyperparameters (those in
    effect at the evaluation that gives the score, see :func:`~hftune.report.data.trials_frame`),
    score and the epoch it was reached at, last epoch, evaluations and compute minutes."""
    frame = trials_frame(data)
    if frame.empty:
        return ["trial"], []
    best = data.best()
    best_id = best.trial_id if best else None
    unit_col = [c for c in frame.columns if c.endswith("_min")][0]
    params = [c for c in frame.columns if c not in (
        "trial_id", "state", "score", "score_epoch", "epochs", "evaluations", "compute_s",
        unit_col)]
    headers = ["trial", "state", *params, f"{data.metric} ({data.study.score})", "at epoch",
               "epochs", "evaluations", unit_col.replace("_min", "-min")]
    rows = []
    for rec in frame.to_dict("records"):
        mark = " *" if rec["trial_id"] == best_id else ""
        rows.append([rec["trial_id"] + mark, rec["state"],
                     *(fmt(rec[p], exact=True) for p in params),
                     fixed(rec["score"], 4), fmt(rec["score_epoch"], 3), fmt(rec["epochs"], 3),
                     str(rec["evaluations"]), fixed(rec[unit_col], 2)])
    return headers, rows
