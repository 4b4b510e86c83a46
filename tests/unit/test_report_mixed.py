"""Reports over studies that differ: other metrics, look-alike labels, a pause between runs."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from hftune.report.data import (
    TIME_AXIS,
    cost_note,
    load_studies,
    load_study,
    objective_groups,
    paused_minutes,
)
from hftune.report.figures import best_so_far_figure, expected_max_figure, pbt_figure
from hftune.report.html import render_html
from hftune.report.plan import plan_report
from hftune.report.seed_noise import seed_noise_notes
from hftune.report.tables import comparison_table
from hftune.testing.fixtures import STARTED
from hftune.testing.records import study_folder, trial_record, trials_with


def _one_report_study(root: Path, name: str, metric: str, mode: str, values: list[float],
                      seed_std: float | None = None, **record: Any) -> Path:
    """A finished grid study whose trial ``i`` reported ``values[i]`` once, at minute i + 1."""
    reruns = None
    if seed_std is not None:
        reruns = {"seeds": [1, 2, 3], "seed_std": seed_std,
                  "configs": [{"rank": 1, "trial_id": f"{name}_0", "config": {"lr": 0},
                               "study_score": values[0], "mean": values[0], "std": seed_std,
                               "n": 3}]}
    records = [trial_record(f"{name}_{i}", config={"lr": i}, reports=[
        {"epoch": 1.0, metric: value, "time": STARTED + 60.0 * (i + 1)}])
        for i, value in enumerate(values)]
    return study_folder(root / name.replace(".", "_dot_").replace(" ", "_space_"), records,
                        name=name, metric=metric, mode=mode, reruns=reruns, **record)


def test_seed_noise_is_per_metric(tmp_path: Path) -> None:
    """A loss study's large seed std must not make two accuracy studies look alike."""
    studies = load_studies([
        _one_report_study(tmp_path, "acc-a", "accuracy", "max", [0.70], seed_std=0.01),
        _one_report_study(tmp_path, "acc-b", "accuracy", "max", [0.73]),
        _one_report_study(tmp_path, "loss-a", "loss", "min", [0.40], seed_std=0.5),
        _one_report_study(tmp_path, "loss-b", "loss", "min", [0.45]),
        _one_report_study(tmp_path, "f1-a", "f1", "max", [0.5]),
        _one_report_study(tmp_path, "f1-b", "f1", "max", [0.6])])
    notes = seed_noise_notes(studies)
    levels = [n for n in notes if n.startswith("Seed noise:")]
    assert len(levels) == 2
    assert "validation accuracy" in levels[0] and "0.0100" in levels[0]
    assert "acc-a" in levels[0] and "loss-a" not in levels[0]
    assert "validation loss" in levels[1] and "0.5000" in levels[1]
    pairs = {n.split(":")[0]: n for n in notes if " vs " in n}
    assert "more than the seed std" in pairs["acc-a vs acc-b"]  # 0.03 > 0.01 (not 0.5)
    assert "within seed noise" in pairs["loss-a vs loss-b"]  # 0.05 < 0.5
    assert "f1-a vs f1-b" not in pairs  # no reruns of an f1 study: no noise to compare with
    assert not any("acc-a vs loss" in p for p in pairs)


def _y_axes(fig: Any) -> set[str]:
    return {trace.yaxis or "y" for trace in fig.data}


def test_comparison_plots_give_each_metric_its_own_axis(tmp_path: Path) -> None:
    acc = _one_report_study(tmp_path, "acc", "accuracy", "max", [0.6, 0.7])
    loss = _one_report_study(tmp_path, "loss", "loss", "min", [0.5, 0.3])
    acc2 = _one_report_study(tmp_path, "acc2", "accuracy", "max", [0.65, 0.66])
    studies = load_studies([acc, loss, acc2])
    for fig, what in ((best_so_far_figure(studies), "best {} so far"),
                      (expected_max_figure(studies), "expected best {} of n trials")):
        axis_of = {trace.name: trace.yaxis or "y" for trace in fig.data}
        assert axis_of["acc"] == axis_of["acc2"] != axis_of["loss"]
        layout = fig.layout
        assert layout.yaxis.title.text == what.format("accuracy")
        assert layout.yaxis2.title.text == what.format("loss")
        assert [a.text for a in layout.annotations] == ["accuracy (max)", "loss (min)"]
    # one metric: one axis, as before
    single = load_studies([acc, acc2])
    fig = best_so_far_figure(single)
    assert _y_axes(fig) == {"y"} and fig.layout.yaxis.title.text == "best accuracy so far"
    assert _y_axes(expected_max_figure(single)) == {"y"}


def test_png_comparison_plots_give_each_metric_its_own_axis(tmp_path: Path,
                                                            matplotlib_installed: None) -> None:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    from hftune.report.figures import PALETTE
    from hftune.report.png import comparison_figure

    studies = load_studies([_one_report_study(tmp_path, "acc", "accuracy", "max", [0.6, 0.7]),
                            _one_report_study(tmp_path, "loss", "loss", "min", [0.5, 0.3])])
    for kind in ("best_so_far", "expected_max"):
        fig = comparison_figure(kind, studies, PALETTE)
        try:
            labels = [ax.get_ylabel() for ax in fig.axes]
            assert len(labels) == 2
            assert "accuracy" in labels[0] and "loss" in labels[1]
        finally:
            plt.close(fig)


def test_plot_ids_are_unique_when_labels_differ_only_in_punctuation(tmp_path: Path) -> None:
    studies = load_studies([_one_report_study(tmp_path, "rte.grid", "accuracy", "max", [0.6, 0.7]),
                            _one_report_study(tmp_path, "rte grid", "accuracy", "max", [0.5, 0.8])])
    assert [s.label for s in studies] == ["rte.grid", "rte grid"]
    page, n_plots = render_html(studies)
    divs = re.findall(r'<div id="([^"]+)" class="plotly-graph-div"', page)
    drawn = re.findall(r'Plotly\.newPlot\(\s*"([^"]+)"', page)
    assert len(divs) == n_plots and len(set(divs)) == n_plots
    assert drawn == divs  # every plot draws into its own slot


def test_time_axes_say_calendar_time_and_a_pause_gets_a_note(tmp_path: Path,
                                                              folders: dict[str, Path]) -> None:
    # ran 10 min, stood still 20 min, ran 5 min more: 35 calendar minutes, 15 wall minutes
    paused = _one_report_study(tmp_path, "paused", "accuracy", "max", [0.6, 0.7], wall_s=900.0,
                    ended_at=STARTED + 2100.0)
    data = load_study(paused)
    assert paused_minutes(data) == pytest.approx(20.0)
    assert "calendar time" in TIME_AXIS
    assert best_so_far_figure([data]).layout.xaxis.title.text == TIME_AXIS
    pbt = load_study(folders["pbt"])
    layout = pbt_figure(pbt).to_dict()["layout"]
    x_titles = [v.get("title", {}).get("text") for k, v in layout.items() if k.startswith("xaxis")]
    assert TIME_AXIS in x_titles  # the last row's axis
    notes = plan_report([data]).notes
    assert any("paused: 20.0 min passed between runs" in n for n in notes)
    # no pause (wall_s covers the whole span), or a study still running: no note
    grid = load_study(folders["grid"])
    assert paused_minutes(grid) == pytest.approx(0.0)
    assert not any("between runs" in n for n in plan_report([grid]).notes)
    assert paused_minutes(load_study(folders["running"])) is None


def test_best_and_last_rules_are_different_objectives(tmp_path: Path) -> None:
    values = [[0.60, 0.70, 0.62], [0.61, 0.71, 0.63]]
    reruns = {"seed_std": 0.01, "configs": [{"rank": 1, "trial_id": "t1", "study_score": 0.0,
                                             "mean": 0.65, "std": 0.01, "n": 3}]}
    best = study_folder(tmp_path / "by-best", trials_with(values), reruns=reruns)
    last = study_folder(tmp_path / "by-last", trials_with(values), score="last", reruns=reruns)
    studies = load_studies([best, last])
    assert [(o.label, [s.label for _, s in members])
            for o, members in objective_groups(studies)] == [
        ("accuracy (max)", ["by-best"]), ("accuracy (max, last)", ["by-last"])]
    headers, rows = comparison_table(studies)
    col = headers.index("Metric")
    assert [r[col] for r in rows] == ["accuracy (max)", "accuracy (max, last)"]
    assert not any(" vs " in n for n in seed_noise_notes(studies))


def test_failed_reruns_of_the_best_config_show_no_other_config(tmp_path: Path) -> None:
    reruns = {"seed_std": 0.01, "configs": [
        {"rank": 1, "trial_id": "t2", "study_score": 0.62, "n": 0, "mean": None, "std": None},
        {"rank": 2, "trial_id": "t1", "study_score": 0.61, "n": 3, "mean": 0.58,
         "std": 0.01}]}
    root = study_folder(tmp_path / "s", trials_with([[0.60], [0.61], [0.62]]), reruns=reruns)
    data = load_study(root)
    headers, rows = comparison_table([data])
    cell = rows[0][headers.index("Best config rerun (mean ± std)")]
    assert cell == "reruns failed"
    notes = seed_noise_notes([data])
    assert not any("0.5800" in n or "0.6100" in n for n in notes)
    assert any("every rerun of its best config (trial t2) failed" in n for n in notes)


def test_reruns_of_a_trial_no_longer_best_are_not_the_best_configs(tmp_path: Path) -> None:
    reruns = {"seed_std": 0.01, "configs": [
        {"rank": 1, "trial_id": "t1", "study_score": 0.61, "n": 3, "mean": 0.6, "std": 0.01}]}
    root = study_folder(tmp_path / "s", trials_with([[0.60], [0.61], [0.62]]), reruns=reruns)
    data = load_study(root)  # t2 became the best after the rerun (a resumed study)
    headers, rows = comparison_table([data])
    assert rows[0][headers.index("Best config rerun (mean ± std)")] == "-"
    assert any("no longer the best trial (t2)" in n for n in seed_noise_notes([data]))


def test_mixed_compute_units_get_no_cost(tmp_path: Path) -> None:
    trials = trials_with([[0.6, 0.7]])
    gpu = study_folder(tmp_path / "on-gpu", trials,
                 resources={"cpus_per_trial": 8, "gpus_per_trial": 1})
    cpu = study_folder(tmp_path / "on-cpu", trials)
    mixed = load_studies([gpu, cpu])
    headers, rows = comparison_table(mixed, price_per_hour=3.0)
    assert [r[headers.index("Cost at 3/h")] for r in rows] == ["-", "-"]
    note = cost_note(mixed, 3.0)
    assert note is not None and "GPU-hours: on-gpu" in note and "CPU-core-hours: on-cpu" in note
    assert cost_note(mixed, None) is None
    same = load_studies([cpu, cpu])
    assert cost_note(same, 3.0) is None
    assert comparison_table(same, price_per_hour=3.0)[1][0][-1] == "0.20"  # 2 × 2 min × 2 cores
