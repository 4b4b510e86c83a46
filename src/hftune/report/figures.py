"""The report's interactive plots as plotly figures (one function per plot kind).

Trial states are drawn the same way everywhere: finished solid blue, stopped dashed orange,
errored dotted red, running dash-dot grey; the best trial is drawn thicker. Everything is SVG
(no WebGL trace types), so a report renders in a browser without a GPU.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from hftune.report.data import (
    TIME_AXIS,
    StudyData,
    best_so_far,
    member_history,
    objective_groups,
    param_names,
    reports_frame,
)
from hftune.report.expected_max import expected_max
from hftune.report.plan import PlotSpec

STATE_STYLE: dict[str, dict[str, str]] = {
    "finished": {"color": "#1f77b4", "dash": "solid"},
    "stopped": {"color": "#ff7f0e", "dash": "dash"},
    "errored": {"color": "#d62728", "dash": "dot"},
    "running": {"color": "#7f7f7f", "dash": "dashdot"},
    "pending": {"color": "#bbbbbb", "dash": "dot"},
}
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf")
LAYOUT: dict[str, Any] = {"template": "plotly_white", "height": 420,
                          "margin": {"l": 60, "r": 20, "t": 50, "b": 50}}


def figure_for(spec: PlotSpec, studies: list[StudyData]) -> go.Figure:
    """The plotly figure for one planned plot."""
    if spec.kind == "best_so_far":
        fig = best_so_far_figure(studies)
    elif spec.kind == "expected_max":
        fig = expected_max_figure(studies)
    elif spec.study is None:
        raise ValueError(f"plot kind {spec.kind!r} needs a study")
    elif spec.kind == "curves":
        fig = learning_curves_figure(spec.study)
    elif spec.kind == "pbt":
        fig = pbt_figure(spec.study)
    elif spec.kind == "parallel":
        fig = parallel_coordinates_figure(spec.study)
    elif spec.kind == "importance":
        fig = importance_figure(spec.extra["importances"])
    else:
        raise ValueError(f"unknown plot kind {spec.kind!r}")
    fig.update_layout(title=spec.title)
    return fig


def _per_objective(studies: list[StudyData], x_title: str, y_title: str,
                   traces: Callable[[int, StudyData], list[go.Scatter]]) -> go.Figure:
    """One comparison figure whose studies are grouped by objective (metric, mode, score rule:
    :class:`~hftune.report.data.Objective`).

    ``traces(position, study)`` gives a study's traces; ``y_title`` has a ``{metric}`` field.
    Studies of one objective share one axis (a plain figure); several objectives get one
    subplot each, titled with the objective's label (``accuracy (max)``, ``accuracy (max,
    last)``), so that e.g. an accuracy (max) and a loss (min), or best and last evaluations,
    are never drawn on one axis.
    """
    groups = objective_groups(studies)
    if len(groups) <= 1:
        fig = go.Figure()
        for i, s in enumerate(studies):
            for trace in traces(i, s):
                fig.add_trace(trace)
        metric = groups[0][0].metric if groups else "metric"
        fig.update_layout(**LAYOUT, xaxis_title=x_title,
                          yaxis_title=y_title.format(metric=metric))
        return fig
    fig = make_subplots(rows=len(groups), cols=1,
                        subplot_titles=[objective.label for objective, _ in groups],
                        vertical_spacing=min(0.12, 0.3 / len(groups)))
    for r, (objective, members) in enumerate(groups, start=1):
        for i, s in members:
            for trace in traces(i, s):
                fig.add_trace(trace, row=r, col=1)
        fig.update_yaxes(title_text=y_title.format(metric=objective.metric), row=r, col=1)
    fig.update_xaxes(title_text=x_title, row=len(groups), col=1)
    fig.update_layout(**{**LAYOUT, "height": max(420, 320 * len(groups)),
                         "margin": {**LAYOUT["margin"], "t": 90}})
    return fig


def best_so_far_figure(studies: list[StudyData]) -> go.Figure:
    """Best metric seen so far (step line) against minutes since each study started.

    Minutes are calendar time (:data:`~hftune.report.data.TIME_AXIS`); studies of different
    objectives are drawn in subplots of their own (see :func:`_per_objective`).
    """
    def traces(i: int, s: StudyData) -> list[go.Scatter]:
        frame = best_so_far(s)
        if frame.empty:
            return []
        return [go.Scatter(
            x=frame["minutes"], y=frame["best"], mode="lines+markers", line_shape="hv",
            name=s.label, line={"color": PALETTE[i % len(PALETTE)]}, marker={"size": 4},
            hovertemplate="%{x:.1f} min: %{y:.4f}<extra>" + s.label + "</extra>")]

    return _per_objective(studies, TIME_AXIS, "best {metric} so far", traces)


def expected_max_figure(studies: list[StudyData]) -> go.Figure:
    """Expected best validation score of n trials, n = 1..N, one curve per study (studies of
    different objectives in subplots of their own, see :func:`_per_objective`)."""
    def traces(i: int, s: StudyData) -> list[go.Scatter]:
        curve = expected_max([score for _, score in s.scored_trials()], s.mode)
        if not curve:
            return []
        return [go.Scatter(
            x=list(range(1, len(curve) + 1)), y=curve, mode="lines+markers", name=s.label,
            line={"color": PALETTE[i % len(PALETTE)]},
            hovertemplate="n=%{x}: %{y:.4f}<extra>" + s.label + "</extra>")]

    return _per_objective(studies, "trials (n)", "expected best {metric} of n trials", traces)


def _config_text(config: dict[str, Any]) -> str:
    return "<br>".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                       for k, v in config.items())


def learning_curves_figure(data: StudyData) -> go.Figure:
    """Every trial's metric per epoch, styled by state (see :data:`STATE_STYLE`)."""
    frame = reports_frame(data)
    best = data.best()
    fig = go.Figure()
    shown: set[str] = set()
    for t in data.trials:
        rows = frame[frame["trial_id"] == t.trial_id]
        if rows.empty:
            continue
        style = STATE_STYLE.get(t.state, STATE_STYLE["running"])
        is_best = best is not None and t.trial_id == best.trial_id
        fig.add_trace(go.Scatter(
            x=rows["epoch"], y=rows["value"], mode="lines+markers",
            name=f"best ({t.trial_id})" if is_best else t.state,
            legendgroup="best" if is_best else t.state,
            showlegend=is_best or t.state not in shown,
            line={"color": style["color"], "dash": style["dash"], "width": 4 if is_best else 1.5},
            marker={"size": 5}, opacity=1.0 if t.state != "running" else 0.8,
            hovertemplate=(f"{t.trial_id} ({t.state})<br>epoch %{{x}}: %{{y:.4f}}<br>"
                           f"{_config_text(t.config)}<extra></extra>")))
        if not is_best:
            shown.add(t.state)
    fig.update_layout(**LAYOUT, xaxis_title="epoch", yaxis_title=data.metric)
    return fig


def _numeric(values: list[Any]) -> bool:
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)


def pbt_figure(data: StudyData) -> go.Figure:
    """Each member's hyperparameters over time (step lines) with exploits marked by an ``x``;
    a last row shows the ``learning_rate`` the optimizer reported, when reports have it."""
    history = member_history(data)
    keys: list[str] = []
    for event in data.lineage:
        keys.extend(k for k in (event.get("new_config") or {}) if k not in keys)
    keys = [k for k in keys
            if _numeric([c.get(k) for steps in history.values() for _, c in steps
                         if c.get(k) is not None])]
    frame = reports_frame(data)
    has_lr = bool(frame["learning_rate"].notna().any()) if not frame.empty else False
    rows = keys + (["learning_rate (reported)"] if has_lr else [])
    fig = make_subplots(rows=max(1, len(rows)), cols=1, shared_xaxes=True,
                        subplot_titles=rows or ["no numeric hyperparameter changed"],
                        vertical_spacing=0.08)
    members = list(history)
    timed = frame.dropna(subset=["t_s"])
    last_t = timed.groupby("trial_id")["t_s"].max().to_dict() if not timed.empty else {}
    for m, member in enumerate(members):
        color = PALETTE[m % len(PALETTE)]
        steps = history[member]
        end = max(last_t.get(member, 0.0), steps[-1][0])
        for r, key in enumerate(keys, start=1):
            xs = [when / 60 for when, _ in steps] + [end / 60]
            ys = [c.get(key) for _, c in steps] + [steps[-1][1].get(key)]
            fig.add_trace(go.Scatter(
                x=xs, y=ys, mode="lines", line_shape="hv", name=member, legendgroup=member,
                showlegend=r == 1, line={"color": color},
                hovertemplate=f"{member}<br>%{{x:.1f}} min: {key}=%{{y:.4g}}<extra></extra>"),
                row=r, col=1)
        if has_lr:
            rows_m = frame[frame["trial_id"] == member].dropna(subset=["t_s", "learning_rate"])
            fig.add_trace(go.Scatter(
                x=rows_m["t_s"] / 60, y=rows_m["learning_rate"], mode="lines+markers",
                name=member, legendgroup=member, showlegend=not keys, line={"color": color},
                marker={"size": 4},
                hovertemplate=f"{member}<br>%{{x:.1f}} min: lr=%{{y:.3g}}<extra></extra>"),
                row=len(rows), col=1)
    for r, key in enumerate(keys, start=1):
        events = [e for e in data.lineage if key in (e.get("new_config") or {})]
        start = data.started_at or 0.0
        fig.add_trace(go.Scatter(
            x=[(float(e.get("time") or start) - start) / 60 for e in events],
            y=[e["new_config"][key] for e in events], mode="markers",
            marker={"symbol": "x", "size": 11, "color": "black"},
            name="exploit", legendgroup="exploit", showlegend=r == 1,
            text=[f"exploit: {e.get('to_trial')} ← {e.get('from_trial')} at epoch "
                  f"{e.get('epoch')}<br>{key}: {e.get('old_config', {}).get(key)} → "
                  f"{e['new_config'][key]}" for e in events],
            hovertemplate="%{text}<extra></extra>"), row=r, col=1)
        if _log_scale([e["new_config"][key] for e in events]
                      + [c.get(key) for s in history.values() for _, c in s]):
            fig.update_yaxes(type="log", row=r, col=1)
    if has_lr and _log_scale(list(frame["learning_rate"].dropna())):
        fig.update_yaxes(type="log", row=len(rows), col=1)
    fig.update_layout(**{**LAYOUT, "height": max(420, 230 * len(rows)),
                         "margin": {**LAYOUT["margin"], "t": 90}})
    fig.update_yaxes(exponentformat="e")
    fig.update_xaxes(title_text=TIME_AXIS, row=max(1, len(rows)), col=1)
    return fig


def _log_scale(values: list[Any]) -> bool:
    nums = [float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    return bool(nums) and min(nums) > 0 and max(nums) / min(nums) >= 10


def parallel_coordinates_figure(data: StudyData) -> go.Figure:
    """Hyperparameters against the metric as parallel axes, one line per scored trial.

    Drawn with ordinary SVG lines (each axis scaled to [0, 1], log10 where a numeric
    hyperparameter spans a factor of 10 or more; categories evenly spaced) rather than
    plotly's WebGL ``Parcoords``, so it renders without a GPU. Colour is the trial's score.
    """
    scored = data.scored_trials()
    axes = [*param_names(data), data.metric]
    columns: dict[str, list[Any]] = {n: [t.config.get(n) for t, _ in scored]
                                     for n in param_names(data)}
    columns[data.metric] = [score for _, score in scored]
    scaled = {n: scale_axis(v) for n, v in columns.items()}
    scores = columns[data.metric]
    lo, hi = min(scores), max(scores)
    fig = go.Figure()
    for i, (t, score) in enumerate(scored):
        ys = [scaled[n][0][i] for n in axes]
        frac = 0.5 if hi == lo else (score - lo) / (hi - lo)
        if data.mode == "min":
            frac = 1 - frac
        style = STATE_STYLE.get(t.state, STATE_STYLE["running"])
        fig.add_trace(go.Scatter(
            x=list(range(len(axes))), y=ys, mode="lines+markers", showlegend=False,
            line={"color": _viridis(frac), "width": 2, "dash": style["dash"]},
            marker={"size": 5},
            hovertemplate=(f"{t.trial_id} ({t.state}): {score:.4f}<br>"
                           f"{_config_text(t.config)}<extra></extra>")))
    # a hidden trace carries the colour scale
    fig.add_trace(go.Scatter(
        x=[None], y=[None], mode="markers", showlegend=False, hoverinfo="skip",
        marker={"color": [lo, hi], "colorscale": "Viridis", "showscale": True,
                "reversescale": data.mode == "min", "colorbar": {"title": data.metric}}))
    for j, n in enumerate(axes):
        fig.add_shape(type="line", x0=j, x1=j, y0=0, y1=1, line={"color": "#444", "width": 1})
        for y, label in scaled[n][1]:
            fig.add_annotation(x=j, y=y, text=label, showarrow=False, xanchor="right",
                               xshift=-4, font={"size": 10})
    fig.update_layout(**LAYOUT)
    fig.update_xaxes(tickvals=list(range(len(axes))),
                     ticktext=[f"log10 {n}" if scaled[n][2] else n for n in axes],
                     range=[-0.6, len(axes) - 0.6], showgrid=False)
    fig.update_yaxes(visible=False, range=[-0.05, 1.05])
    return fig


def scale_axis(values: list[Any]) -> tuple[list[float | None], list[tuple[float, str]], bool]:
    """Values mapped to [0, 1], tick (position, label) pairs, and whether log10 was used."""
    present = [v for v in values if v is not None]
    if present and _numeric(present):
        log = _log_scale(present)
        nums = [math.log10(float(v)) if log else float(v) for v in present]
        lo, hi = min(nums), max(nums)

        def pos(v: Any) -> float | None:
            if v is None:
                return None
            x = math.log10(float(v)) if log else float(v)
            return 0.5 if hi == lo else (x - lo) / (hi - lo)

        ticks = sorted({(pos(v), f"{float(v):.3g}") for v in present})
        if len(ticks) > 6:
            ticks = [(0.0, f"{min(present):.3g}"), (1.0, f"{max(present):.3g}")]
        return [pos(v) for v in values], [(p, lab) for p, lab in ticks if p is not None], log
    cats: list[str] = []
    for v in present:
        if str(v) not in cats:
            cats.append(str(v))
    where = {c: (0.5 if len(cats) == 1 else i / (len(cats) - 1)) for i, c in enumerate(cats)}
    return ([None if v is None else where[str(v)] for v in values],
            [(p, c) for c, p in where.items()], False)


def _viridis(frac: float) -> str:
    from plotly.colors import sample_colorscale

    return sample_colorscale("Viridis", [min(1.0, max(0.0, frac))])[0]


def importance_figure(importances: dict[str, float]) -> go.Figure:
    """Horizontal bars of the normalised importances, most important on top."""
    names = list(importances)[::-1]
    fig = go.Figure(go.Bar(x=[importances[n] for n in names], y=names, orientation="h",
                           marker={"color": "#1f77b4"},
                           hovertemplate="%{y}: %{x:.3f}<extra></extra>"))
    fig.update_layout(**{**LAYOUT, "height": max(260, 80 + 40 * len(names))},
                      xaxis_title="importance (fANOVA, normalised)")
    return fig
