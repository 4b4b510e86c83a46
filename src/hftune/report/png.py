"""The report's plots as static PNGs, drawn with matplotlib (the optional ``report-png`` extra).

Why not plotly's ``write_image``: it needs kaleido, which drives a Chrome/Chromium of its own;
matplotlib installs from PyPI as wheels and renders offline with no browser. The plots follow
the plan and the styles of :mod:`hftune.report.figures` (same states, same colours).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

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

_DASH = {"solid": "-", "dash": "--", "dot": ":", "dashdot": "-."}


def have_matplotlib() -> bool:
    """Whether matplotlib can be imported (``pip install 'hftune[report-png]'``)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def write_png(spec: PlotSpec, studies: list[StudyData], path: Path) -> Path:
    """Draw one planned plot to ``path`` (a PNG); returns ``path``."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    from hftune.report.figures import PALETTE, STATE_STYLE

    fig, ax = plt.subplots(figsize=(9, 4.5), dpi=100)
    try:
        if spec.kind in ("best_so_far", "expected_max"):
            plt.close(fig)
            fig = comparison_figure(spec.kind, studies, PALETTE)
        elif spec.kind == "curves" and spec.study is not None:
            _curves(ax, spec.study, STATE_STYLE)
        elif spec.kind == "pbt" and spec.study is not None:
            plt.close(fig)
            fig = _pbt(spec.study, PALETTE)
            ax = fig.axes[0]
        elif spec.kind == "parallel" and spec.study is not None:
            _parallel(ax, spec.study, STATE_STYLE)
        elif spec.kind == "importance":
            imp: dict[str, float] = spec.extra["importances"]
            names = list(imp)[::-1]
            ax.barh(names, [imp[n] for n in names], color="#1f77b4")
            ax.set(xlabel="importance (fANOVA, normalised)")
        else:
            raise ValueError(f"cannot draw plot kind {spec.kind!r}")
        fig.suptitle(spec.title, fontsize=11)
        fig.tight_layout()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path)
    finally:
        plt.close(fig)
    return path


def comparison_figure(kind: str, studies: list[StudyData], palette: tuple[str, ...]) -> Any:
    """The matplotlib figure of a comparison plot (``best_so_far`` or ``expected_max``).

    One axes per objective (metric, mode, score rule), in the order of
    :func:`~hftune.report.data.objective_groups`, each labelled with its metric: studies of
    different objectives never share an axis. A study keeps its colour (its position).
    """
    import matplotlib.pyplot as plt

    groups = objective_groups(studies)
    n = max(1, len(groups))
    fig, axes = plt.subplots(n, 1, figsize=(9, 4.5 if n == 1 else 3.2 * n), dpi=100,
                             squeeze=False)
    for (objective, members), row in zip(groups, axes, strict=False):
        metric = objective.metric
        ax = row[0]
        for i, s in members:
            color = palette[i % len(palette)]
            if kind == "best_so_far":
                frame = best_so_far(s)
                if not frame.empty:
                    ax.step(frame["minutes"], frame["best"], where="post", label=s.label,
                            color=color)
            else:
                curve = expected_max([v for _, v in s.scored_trials()], s.mode)
                if curve:
                    ax.plot(range(1, len(curve) + 1), curve, marker="o", label=s.label,
                            color=color)
        what = (f"best {metric} so far" if kind == "best_so_far"
                else f"expected best {metric} of n trials")
        ax.set_ylabel(what if len(groups) == 1 else f"{what} ({objective.qualifier})")
        _legend(ax)
    axes[-1][0].set_xlabel(TIME_AXIS if kind == "best_so_far" else "trials (n)")
    return fig


def _legend(ax: Any, **kwargs: Any) -> None:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(**{"fontsize": 8, **kwargs})


def _curves(ax: Any, data: StudyData, styles: dict[str, dict[str, str]]) -> None:
    frame = reports_frame(data)
    best = data.best()
    seen: set[str] = set()
    for t in data.trials:
        rows = frame[frame["trial_id"] == t.trial_id]
        if rows.empty:
            continue
        style = styles.get(t.state, styles["running"])
        is_best = best is not None and t.trial_id == best.trial_id
        label = f"best ({t.trial_id})" if is_best else (t.state if t.state not in seen else None)
        if not is_best:
            seen.add(t.state)
        ax.plot(rows["epoch"], rows["value"], marker="o", markersize=3,
                linestyle=_DASH[style["dash"]], color=style["color"],
                linewidth=3 if is_best else 1.2, label=label)
    ax.set(xlabel="epoch", ylabel=data.metric)
    _legend(ax)


def _pbt(data: StudyData, palette: tuple[str, ...]) -> Any:
    import matplotlib.pyplot as plt

    history = member_history(data)
    keys: list[str] = []
    for event in data.lineage:
        keys.extend(k for k in (event.get("new_config") or {}) if k not in keys)
    keys = [k for k in keys if all(isinstance(c.get(k), int | float)
                                   for s in history.values() for _, c in s if k in c)]
    frame = reports_frame(data)
    has_lr = not frame.empty and bool(frame["learning_rate"].notna().any())
    rows = keys + (["learning_rate (reported)"] if has_lr else [])
    fig, axes = plt.subplots(max(1, len(rows)), 1, figsize=(9, 2.4 * max(1, len(rows))),
                             dpi=100, sharex=True, squeeze=False)
    start = data.started_at or 0.0
    timed = frame.dropna(subset=["t_s"])
    last_t = timed.groupby("trial_id")["t_s"].max().to_dict() if not timed.empty else {}
    for m, (member, steps) in enumerate(history.items()):
        color = palette[m % len(palette)]
        end = max(last_t.get(member, 0.0), steps[-1][0])
        for r, key in enumerate(keys):
            xs = [w / 60 for w, _ in steps] + [end / 60]
            ys = [c.get(key) for _, c in steps] + [steps[-1][1].get(key)]
            axes[r][0].step(xs, ys, where="post", color=color, label=member if r == 0 else None)
        if has_lr:
            rm = frame[frame["trial_id"] == member].dropna(subset=["t_s", "learning_rate"])
            axes[-1][0].plot(rm["t_s"] / 60, rm["learning_rate"], marker=".", color=color,
                             label=member if not keys else None)
    for r, key in enumerate(keys):
        events = [e for e in data.lineage if key in (e.get("new_config") or {})]
        axes[r][0].scatter([(float(e.get("time") or start) - start) / 60 for e in events],
                           [e["new_config"][key] for e in events], marker="x", s=60,
                           color="black", zorder=3, label="exploit" if r == 0 else None)
        axes[r][0].set_ylabel(key, fontsize=8)
    if has_lr:
        axes[-1][0].set_ylabel("learning_rate\n(reported)", fontsize=8)
    axes[-1][0].set_xlabel(TIME_AXIS)
    _legend(axes[0][0], fontsize=7, loc="upper right")
    return fig


def _parallel(ax: Any, data: StudyData, styles: dict[str, dict[str, str]]) -> None:
    from matplotlib import colormaps

    from hftune.report.figures import scale_axis

    scored = data.scored_trials()
    axes_names = [*param_names(data), data.metric]
    columns: dict[str, list[Any]] = {n: [t.config.get(n) for t, _ in scored]
                                     for n in param_names(data)}
    columns[data.metric] = [v for _, v in scored]
    scaled = {n: scale_axis(v) for n, v in columns.items()}
    scores = columns[data.metric]
    lo, hi = min(scores), max(scores)
    cmap = colormaps["viridis"]
    for i, (t, score) in enumerate(scored):
        frac = 0.5 if hi == lo else (score - lo) / (hi - lo)
        if data.mode == "min":
            frac = 1 - frac
        ys = [scaled[n][0][i] for n in axes_names]
        ax.plot(range(len(axes_names)), ys, color=cmap(frac), marker="o", markersize=3,
                linestyle=_DASH[styles.get(t.state, styles["running"])["dash"]])
    for j, n in enumerate(axes_names):
        ax.axvline(j, color="#444", linewidth=0.8)
        for y, label in scaled[n][1]:
            ax.annotate(label, (j, y), xytext=(-4, 0), textcoords="offset points",
                        ha="right", va="center", fontsize=7)
    ax.set_xticks(range(len(axes_names)),
                  [f"log10 {n}" if scaled[n][2] else n for n in axes_names], fontsize=8)
    ax.set_yticks([])
    ax.set_xlim(-0.6, len(axes_names) - 0.4)
