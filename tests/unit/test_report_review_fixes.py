"""Report fixes after review: held-out of the report's best trial, objectives with their score
rule, the best config's reruns only, Markdown image links, mixed compute units, the wall time
of a run in progress, exact hyperparameter cells, NaN-only curves, and bad input folders."""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from hftune.cli.main import app, main
from hftune.errors import StudyFolderError
from hftune.report.build import write_report
from hftune.report.data import (
    cost_note,
    holdout_value,
    load_studies,
    load_study,
    objective_groups,
    summary_row,
)
from hftune.report.markdown import image_markdown
from hftune.report.plan import plan_report
from hftune.report.seed_noise import seed_noise_notes
from hftune.report.tables import comparison_table, fmt, trial_table
from hftune.study.records import StudyRecord, TrialRecord
from hftune.study.store import StudyStore
from hftune.testing.fixtures import STARTED


def _report(value: float, epoch: int, **extra: Any) -> dict[str, Any]:
    return {"accuracy": value, "epoch": float(epoch), "step": 10 * epoch,
            "elapsed_s": 60.0 * epoch, "time": STARTED + 60.0 * epoch, **extra}


def _study(root: Path, name: str, trials: list[TrialRecord], **record: Any) -> Path:
    """A grid study in ``root/name`` with these trial records and ``study.json`` fields."""
    store = StudyStore(root / name)
    fields = {"status": "finished", "strategy": "grid", "metric": "accuracy", "mode": "max",
              "started_at": STARTED, "resources": {"cpus_per_trial": 2, "gpus_per_trial": 0},
              **record}
    store.write_study(StudyRecord(name=name, **fields))
    for t in trials:
        store.write_trial(t)
    return store.root


def _trials(values: list[list[float]]) -> list[TrialRecord]:
    return [TrialRecord(f"t{i}", {"learning_rate": 1e-5 * (i + 1)}, state="finished",
                        started_at=STARTED, reports=[_report(v, e + 1) for e, v in enumerate(vs)])
            for i, vs in enumerate(values)]


# -- 1: held-out value of the trial the report calls best -------------------------------------
def test_holdout_of_a_stale_best_trial_is_not_shown(tmp_path: Path) -> None:
    """study.json still names the previous run's best (a killed resume): its best_holdout is
    a's, so the row shows b's own held-out record, or nothing."""
    a = TrialRecord("a", {}, state="finished", reports=[_report(0.7, 1)])
    b = TrialRecord("b", {}, state="running", reports=[_report(0.9, 1)],
                    holdout={"metrics": {"accuracy": 0.88}, "epoch": 1.0})
    root = _study(tmp_path, "s", [a, b], status="running", best_trial_id="a",
                  best_value=0.7, best_holdout=0.55)
    data = load_study(root)
    assert data.best().trial_id == "b"
    assert holdout_value(data) == pytest.approx(0.88)
    data.trials[1].holdout = None  # b never evaluated on the held-out rows
    assert holdout_value(data) is None
    # when study.json's best is the report's best, its best_holdout is used
    data.raw["best_trial_id"], data.raw["best_holdout"] = "b", 0.87
    assert holdout_value(data) == pytest.approx(0.87)


# -- 4: the score rule is part of the objective -----------------------------------------------
def test_best_and_last_rules_are_different_objectives(tmp_path: Path) -> None:
    values = [[0.60, 0.70, 0.62], [0.61, 0.71, 0.63]]
    reruns = {"seed_std": 0.01, "configs": [{"rank": 1, "trial_id": "t1", "study_score": 0.0,
                                             "mean": 0.65, "std": 0.01, "n": 3}]}
    best = _study(tmp_path, "by-best", _trials(values), reruns=reruns)
    last = _study(tmp_path, "by-last", _trials(values), score="last", reruns=reruns)
    studies = load_studies([best, last])
    assert [(o.label, [s.label for _, s in members])
            for o, members in objective_groups(studies)] == [
        ("accuracy (max)", ["by-best"]), ("accuracy (max, last)", ["by-last"])]
    headers, rows = comparison_table(studies)
    col = headers.index("Metric")
    assert [r[col] for r in rows] == ["accuracy (max)", "accuracy (max, last)"]
    assert not any(" vs " in n for n in seed_noise_notes(studies))


# -- 6: the best config's reruns, never another config's --------------------------------------
def test_failed_reruns_of_the_best_config_show_no_other_config(tmp_path: Path) -> None:
    reruns = {"seed_std": 0.01, "configs": [
        {"rank": 1, "trial_id": "t2", "study_score": 0.62, "n": 0, "mean": None, "std": None},
        {"rank": 2, "trial_id": "t1", "study_score": 0.61, "n": 3, "mean": 0.58,
         "std": 0.01}]}
    root = _study(tmp_path, "s", _trials([[0.60], [0.61], [0.62]]), reruns=reruns)
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
    root = _study(tmp_path, "s", _trials([[0.60], [0.61], [0.62]]), reruns=reruns)
    data = load_study(root)  # t2 became the best after the rerun (a resumed study)
    headers, rows = comparison_table([data])
    assert rows[0][headers.index("Best config rerun (mean ± std)")] == "-"
    assert any("no longer the best trial (t2)" in n for n in seed_noise_notes([data]))


# -- 7: Markdown image links ------------------------------------------------------------------
def test_markdown_images_render_with_spaces_and_brackets(tmp_path: Path) -> None:
    markdown_it = pytest.importorskip("markdown_it")
    render = markdown_it.MarkdownIt("commonmark").render
    html = render(image_markdown("rte [v2: a\\b", "my report_plots/00-x.png"))
    assert re.findall(r'<img src="([^"]+)" alt="([^"]*)"', html) == [
        ("my%20report_plots/00-x.png", "rte [v2: a\\b")]
    pytest.importorskip("matplotlib")
    root = _study(tmp_path, "rte ]x[", _trials([[0.5, 0.6], [0.55, 0.58]]))
    result = write_report([root], tmp_path / "out dir" / "my report.md", fmt="md")
    page = render((tmp_path / "out dir" / "my report.md").read_text(encoding="utf-8"))
    sources = re.findall(r'<img src="([^"]+)"', page)
    assert len(sources) == len(result.pngs) > 0
    assert all(s.startswith("my%20report_plots/") for s in sources)


# -- 8: one price for one compute unit --------------------------------------------------------
def test_mixed_compute_units_get_no_cost(tmp_path: Path) -> None:
    trials = _trials([[0.6, 0.7]])
    gpu = _study(tmp_path, "on-gpu", trials,
                 resources={"cpus_per_trial": 8, "gpus_per_trial": 1})
    cpu = _study(tmp_path, "on-cpu", trials)
    mixed = load_studies([gpu, cpu])
    headers, rows = comparison_table(mixed, price_per_hour=3.0)
    assert [r[headers.index("Cost at 3/h")] for r in rows] == ["-", "-"]
    note = cost_note(mixed, 3.0)
    assert note is not None and "GPU-hours: on-gpu" in note and "CPU-core-hours: on-cpu" in note
    assert cost_note(mixed, None) is None
    same = load_studies([cpu, cpu])
    assert cost_note(same, 3.0) is None
    assert comparison_table(same, price_per_hour=3.0)[1][0][-1] == "0.20"  # 2 × 2 min × 2 cores


# -- 9: the wall time of the run in progress --------------------------------------------------
def test_wall_minutes_count_the_current_run(tmp_path: Path) -> None:
    now = time.time()
    trial = TrialRecord("a", {}, state="running", started_at=now - 1800,
                        reports=[_report(0.6, 1, time=now - 1500),
                                 _report(0.7, 2, time=now - 60)])
    root = _study(tmp_path, "s", [trial], status="running", started_at=now - 3 * 3600,
                  wall_s=600.0, run_started_at=now - 1800)
    store = StudyStore(root)
    store.acquire_lock()
    try:
        live = load_study(root)
    finally:
        store.release_lock()
    # 10 min of the earlier run + 30 min of this one so far
    assert summary_row(live)["wall_min"] == pytest.approx(40.0, abs=0.2)
    # killed (no lock): counted up to its last recorded event, as a resume charges it
    assert summary_row(load_study(root))["wall_min"] == pytest.approx(10.0 + 1740 / 60)


# -- 10: hyperparameter cells -----------------------------------------------------------------
def test_hyperparameters_keep_every_digit(tmp_path: Path) -> None:
    trials = [TrialRecord("s1", {"seed": 1234567, "learning_rate": 2e-5}, state="finished",
                          reports=[_report(0.6, 1)]),
              TrialRecord("s2", {"seed": 1234568, "learning_rate": 2.00001e-5},
                          state="finished", reports=[_report(0.61, 1)]),
              TrialRecord("p1", {"learning_rate": 2e-5, "max_steps": 20000},
                          state="finished", reports=[_report(0.7, 1)])]
    headers, rows = trial_table(load_study(_study(tmp_path, "s", trials)))
    cells = {r[0]: dict(zip(headers, r, strict=True)) for r in rows}
    assert (cells["s1"]["seed"], cells["s2"]["seed"]) == ("1234567", "1234568")
    assert cells["p1 *"]["max_steps"] == "20000"
    assert cells["s1"]["learning_rate"] == "2e-05"
    assert cells["s2"]["learning_rate"] == "2.00001e-05"
    assert fmt(3.0, 3) == "3" and fmt(0.123456) == "0.1235"


# -- 11: no empty learning-curves plot --------------------------------------------------------
def test_nan_only_study_gets_no_curves_plot(tmp_path: Path) -> None:
    nan = float("nan")
    root = _study(tmp_path, "nan", _trials([[nan, nan], [nan, nan]]))
    plan = plan_report([load_study(root)])
    assert plan.plots == []
    assert any("no trial reported a finite value of the metric accuracy (4 evaluations: "
               "4 NaN" in n for n in plan.notes)
    assert not any("has reported" in n for n in plan.notes)


# -- 13: input folders ------------------------------------------------------------------------
def test_a_folder_given_twice_is_reported_once(tmp_path: Path) -> None:
    root = _study(tmp_path, "s", _trials([[0.6]]))
    out = tmp_path / "r.html"
    result = write_report([root, Path(f"{root}/"), root / ".." / "s"], out)
    assert result.duplicates == [root, root / ".." / "s"]
    assert out.read_text(encoding="utf-8").count("<td>s</td>") == 1
    cli = CliRunner().invoke(app, ["report", str(root), str(root), "-o", str(out)])
    assert cli.exit_code == 0 and "reported once" in cli.output


@pytest.mark.parametrize(("text", "match"), [
    ('{"name": "x"', "study.json: cannot be read as JSON"),
    ('{"name": "x"}', "study.json: not a study record .missing status, strategy, metric, mode"),
    ("[1, 2]", "study.json: not a study record .a JSON list"),
])
def test_a_bad_study_json_is_one_line(tmp_path: Path, text: str, match: str,
                                      monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "study.json").write_text(text, encoding="utf-8")
    with pytest.raises(StudyFolderError, match=match):
        StudyStore(tmp_path).read_study()
    for command in (["report", str(tmp_path), "-o", str(tmp_path / "r.html")],
                    ["status", str(tmp_path)], ["resume", str(tmp_path)]):
        monkeypatch.setattr(sys, "argv", ["hftune", *command])
        with pytest.raises(SystemExit) as info:
            main()
        err = capsys.readouterr().err.strip().splitlines()
        assert info.value.code == 2, (command, err)
        assert len(err) == 1 and err[0].startswith("error: ") and "study.json" in err[0]


def test_a_bad_trial_record_is_one_line(tmp_path: Path) -> None:
    root = _study(tmp_path, "s", _trials([[0.6]]))
    (root / "trials" / "t9.json").write_text(json.dumps({"config": {}}), encoding="utf-8")
    with pytest.raises(StudyFolderError, match=r"t9\.json: not a trial record"):
        StudyStore(root).read_trials()


def test_values_that_are_no_score_are_left_out_of_every_report(tmp_path: Path) -> None:
    """A record hftune did not write (a text value) or a diverged evaluation (infinite) is no
    score: the best, the curves and both formats leave it out instead of failing."""
    trials = _trials([[0.6, 0.7]])
    trials[0].reports.append(_report("high", 3))  # type: ignore[arg-type]
    trials[0].reports.append(_report(float("inf"), 4))
    root = _study(tmp_path, "odd", trials)
    data = load_study(root)
    assert data.best().trial_id == "t0" and summary_row(data)["best"] == 0.7
    from hftune.report.data import reports_frame

    assert list(reports_frame(data)["value"]) == [0.6, 0.7]
    for fmt_name, name in (("html", "r.html"), ("md", "r.md")):
        write_report([root], tmp_path / name, fmt=fmt_name)
        assert (tmp_path / name).stat().st_size > 0
