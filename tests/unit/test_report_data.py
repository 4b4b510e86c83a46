"""Study folder → report numbers, checked against the fixture's hand-worked values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hftune.errors import StudyFolderError
from hftune.report.build import write_report
from hftune.report.data import (
    StudyData,
    best_so_far,
    holdout_value,
    load_studies,
    load_study,
    member_history,
    read_lineage,
    summary_row,
    trials_frame,
)
from hftune.report.importance import param_importances
from hftune.report.plan import plan_report
from hftune.report.tables import comparison_table, trial_table
from hftune.study.records import StudyRecord, TrialRecord
from hftune.study.store import StudyStore
from hftune.testing.fixtures import STARTED
from hftune.testing.records import evaluation, study_folder, trials_with


def test_grid_summary(folders: dict[str, Path]) -> None:
    row = summary_row(load_study(folders["grid"]), price_per_hour=0.5)
    assert (row["strategy"], row["status"], row["trials"]) == ("grid", "finished", 9)
    assert (row["finished"], row["stopped"], row["errored"]) == (9, 0, 0)
    assert row["best"] == pytest.approx(0.70)
    assert (row["best_trial"], row["best_epoch"]) == ("grid_00004", 3.0)
    assert row["holdout"] == pytest.approx(0.685)  # study.json best_holdout
    # 9 trials × 180 s × 2 cores = 3240 core-s = 54 core-min; 1650 s wall = 27.5 min
    assert row["compute_unit"] == "CPU-core"
    assert row["compute_min"] == pytest.approx(54.0)
    assert row["wall_min"] == pytest.approx(27.5)
    assert row["cost"] == pytest.approx(54 / 60 * 0.5)  # 0.45


def test_asha_summary(folders: dict[str, Path]) -> None:
    row = summary_row(load_study(folders["asha"]), price_per_hour=0.5)
    assert (row["finished"], row["stopped"], row["errored"]) == (3, 6, 1)
    assert row["best"] == pytest.approx(0.72)
    assert row["best_trial"] == "asha_00002"
    assert row["holdout"] == pytest.approx(0.705)  # holdout_accuracy in the best trial's report
    # (3×180 + 5×60 + 120 [stopped at epoch 2] + 120 [errored after 2 epochs]) s × 2 cores
    # = 1080 s × 2 = 36 core-min
    assert row["compute_min"] == pytest.approx(36.0)
    assert row["wall_min"] == pytest.approx(620 / 60)
    assert row["cost"] == pytest.approx(0.30)


def test_pbt_summary_in_gpu_minutes_without_holdout(folders: dict[str, Path]) -> None:
    row = summary_row(load_study(folders["pbt"]), price_per_hour=2.0)
    assert row["best"] == pytest.approx(0.71)
    assert (row["best_trial"], row["best_epoch"]) == ("pbt_00001", 6.0)
    assert row["holdout"] is None
    assert row["compute_unit"] == "GPU"
    assert row["compute_min"] == pytest.approx(24.0)  # 4 members × 360 s × 1 GPU
    assert row["cost"] == pytest.approx(24 / 60 * 2.0)
    assert summary_row(load_study(folders["pbt"]))["cost"] is None


def test_running_study_reads_what_has_finished(folders: dict[str, Path]) -> None:
    # no process holds the lock: the study was interrupted (as `hftune status` says)
    assert summary_row(load_study(folders["running"]))["status"] == "interrupted"
    runner = StudyStore(folders["running"])
    runner.acquire_lock()
    try:
        data = load_study(folders["running"])
    finally:
        runner.release_lock()
    row = summary_row(data)
    assert row["status"] == "running"
    assert (row["finished"], row["running"], row["pending"]) == (1, 2, 1)
    assert row["best"] == pytest.approx(0.65)
    # no wall_s yet: study start → latest event (rand_00000 ended at start + 5 + 120 s)
    assert row["wall_min"] == pytest.approx(125 / 60)
    assert row["compute_min"] == pytest.approx((120 + 60) * 2 / 60)
    headers, rows = comparison_table([data])
    assert "+ 2 running, 1 pending" in rows[0][3]
    assert rows[0][7] == "-"  # no held-out metric
    plan = plan_report([data])
    assert [p.kind for p in plan.plots] == ["best_so_far", "expected_max", "curves",
                                            "parallel"]
    assert any("at least 8 scored trials (it has 2)" in n for n in plan.notes)


def test_study_with_no_trials_yet(tmp_path: Path) -> None:
    store = StudyStore(tmp_path / "fresh")
    store.write_study(StudyRecord(name="fresh", status="running", strategy="random",
                                  metric="f1", mode="max"))
    data = load_study(store.root)
    row = summary_row(data, 1.0)
    assert (row["trials"], row["best"], row["wall_min"], row["compute_min"]) == (0, None,
                                                                                  None, 0.0)
    assert plan_report([data]).plots == []
    assert comparison_table([data])[1][0][5] == "-"
    assert best_so_far(data).empty


def test_best_so_far_against_wall_clock(folders: dict[str, Path]) -> None:
    frame = best_so_far(load_study(folders["grid"]))
    assert len(frame) == 27  # 9 trials × 3 evaluations
    assert frame["minutes"].iloc[0] == pytest.approx(65 / 60)  # 5 s set-up + 60 s epoch
    assert frame["best"].iloc[0] == pytest.approx(0.56)
    assert frame["best"].is_monotonic_increasing
    # 0.70 is trial 4's epoch 3: it started at 5 + 4 × 180 s and reported 180 s later
    first = frame[frame["best"] >= 0.70 - 1e-9]["minutes"].iloc[0]
    assert first == pytest.approx((5 + 4 * 180 + 180) / 60)


def test_lineage_and_member_history(folders: dict[str, Path], tmp_path: Path) -> None:
    data = load_study(folders["pbt"])
    assert [(e["from_trial"], e["to_trial"], e["epoch"]) for e in data.lineage] == [
        ("pbt_00001", "pbt_00003", 2.0), ("pbt_00001", "pbt_00000", 4.0)]
    history = member_history(data)
    assert [c["learning_rate"] for _, c in history["pbt_00003"]] == [1e-4, 3.6e-5]
    assert [c["weight_decay"] for _, c in history["pbt_00000"]] == [0.0, 0.012]
    assert history["pbt_00000"][1][0] == pytest.approx(5 + 4 * 60 + 1)
    assert len(history["pbt_00001"]) == 1
    assert member_history(load_study(folders["grid"])) == {}
    # a line still being written is skipped, events come back sorted by time
    path = tmp_path / "lineage.jsonl"
    path.write_text(json.dumps({"time": STARTED + 9, "to_trial": "b", "from_trial": "a"}) + "\n"
                    + json.dumps({"time": STARTED + 3, "to_trial": "a", "from_trial": "b"})
                    + "\n" + '{"time": 1700000010, "to_tr', encoding="utf-8")
    assert [e["to_trial"] for e in read_lineage(path)] == ["a", "b"]
    assert read_lineage(tmp_path / "absent.jsonl") == []


def test_trial_table_marks_the_best(folders: dict[str, Path]) -> None:
    headers, rows = trial_table(load_study(folders["asha"]))
    assert headers[:4] == ["trial", "state", "learning_rate", "weight_decay"]
    best = [r for r in rows if r[0].endswith(" *")]
    assert [r[0] for r in best] == ["asha_00002 *"]
    errored = next(r for r in rows if r[1] == "errored")
    assert errored[0] == "asha_00006"
    assert errored[4] == "0.4700" and errored[-1] == "4.00"  # 120 s × 2 cores


def test_importance_needs_eight_scored_trials(folders: dict[str, Path]) -> None:
    grid = param_importances(load_study(folders["grid"]))
    assert grid is not None
    assert set(grid) == {"learning_rate", "per_device_train_batch_size"}
    assert sum(grid.values()) == pytest.approx(1.0)
    assert param_importances(load_study(folders["grid"])) == grid  # seeded: deterministic
    assert param_importances(load_study(folders["pbt"])) is None  # 4 scored trials


def test_plan_for_the_three_strategies(folders: dict[str, Path]) -> None:
    studies = load_studies([folders["grid"], folders["asha"], folders["pbt"]])
    plan = plan_report(studies)
    assert [(p.kind, p.study.label if p.study else None) for p in plan.plots] == [
        ("best_so_far", None), ("expected_max", None),
        ("curves", "grid-rte"), ("parallel", "grid-rte"), ("importance", "grid-rte"),
        ("curves", "asha-rte"), ("parallel", "asha-rte"), ("importance", "asha-rte"),
        ("curves", "pbt-rte"), ("pbt", "pbt-rte")]
    assert any("pbt-rte: PBT members changed configs" in n for n in plan.notes)


def test_labels_are_unique_and_bad_folders_refused(folders: dict[str, Path],
                                                   tmp_path: Path) -> None:
    studies = load_studies([folders["grid"], folders["grid"]])
    assert len({s.label for s in studies}) == 2
    with pytest.raises(StudyFolderError, match="not a study folder"):
        load_study(tmp_path)


def test_member_history_starts_from_the_first_config() -> None:
    # the recorder overwrites ``config`` with the latest one; the first comes from the
    # lineage's old_config, else from ``config_history``
    member = TrialRecord(trial_id="m", config={"learning_rate": 2e-5}, started_at=STARTED)
    if hasattr(member, "config_history"):
        member.config_history = [{"epoch": 0.0, "config": {"learning_rate": 1e-5}}]
    event = {"time": STARTED + 60, "from_trial": "d", "to_trial": "m", "epoch": 1.0,
             "new_config": {"learning_rate": 2e-5}}
    study = StudyRecord(name="s", status="finished", strategy="pbt", metric="accuracy",
                        mode="max", started_at=STARTED)
    data = StudyData(root=Path("."), study=study, raw={}, trials=[member], lineage=[event])
    expected_first = 1e-5 if hasattr(member, "config_history") else 2e-5
    assert member_history(data)["m"] == [(0.0, {"learning_rate": expected_first}),
                                         (60.0, {"learning_rate": 2e-5})]
    data.lineage = [{**event, "old_config": {"learning_rate": 3e-5}}]
    assert member_history(data)["m"][0] == (0.0, {"learning_rate": 3e-5})


def test_score_last_takes_value_and_epoch_from_the_last_evaluation(tmp_path: Path) -> None:
    """With strategy.score: last, the row's best value, its epoch and the held-out value all
    come from the selected trial's last evaluation, not from its best one."""
    store = StudyStore(tmp_path / "last")
    store.write_study(StudyRecord(name="last", status="finished", strategy="grid",
                                  metric="accuracy", mode="max", score="last",
                                  best_trial_id="steady"))
    reports = {"peaked": [(0.9, 0.88), (0.6, 0.61)], "steady": [(0.85, 0.83), (0.8, 0.77)]}
    for trial_id, values in reports.items():
        store.write_trial(TrialRecord(trial_id, {}, state="finished", reports=[
            {"epoch": float(i + 1), "accuracy": acc, "holdout_accuracy": held}
            for i, (acc, held) in enumerate(values)]))
    row = summary_row(load_study(store.root))
    assert (row["best_trial"], row["best"], row["best_epoch"]) == ("steady", 0.8, 2.0)
    assert row["holdout"] == pytest.approx(0.77)
    # the trial table: each score with the epoch it was reached at
    frame = trials_frame(load_study(store.root)).set_index("trial_id")
    assert (frame.loc["peaked", "score"], frame.loc["peaked", "score_epoch"]) == (0.6, 2.0)
    # best so far: only each trial's last evaluation counts, so it ends at the best score
    data = load_study(store.root)
    data.study.started_at = STARTED
    for trial_ in data.trials:
        for i, report_ in enumerate(trial_.reports):
            report_["time"] = STARTED + 60.0 * (i + 1) + (5 if trial_.trial_id == "steady" else 0)
    curve = best_so_far(data)
    assert list(curve["best"]) == [0.6, 0.8] and curve["best"].iloc[-1] == row["best"]


def test_holdout_of_a_stale_best_trial_is_not_shown(tmp_path: Path) -> None:
    """study.json still names the previous run's best (a killed resume): its best_holdout is
    a's, so the row shows b's own held-out record, or nothing."""
    a = TrialRecord("a", {}, state="finished", reports=[evaluation(1, 0.7)])
    b = TrialRecord("b", {}, state="running", reports=[evaluation(1, 0.9)],
                    holdout={"metrics": {"accuracy": 0.88}, "epoch": 1.0})
    root = study_folder(tmp_path / "s", [a, b], status="running", best_trial_id="a",
                  best_value=0.7, best_holdout=0.55)
    data = load_study(root)
    assert data.best().trial_id == "b"
    assert holdout_value(data) == pytest.approx(0.88)
    data.trials[1].holdout = None  # b never evaluated on the held-out rows
    assert holdout_value(data) is None
    # when study.json's best is the report's best, its best_holdout is used
    data.raw["best_trial_id"], data.raw["best_holdout"] = "b", 0.87
    assert holdout_value(data) == pytest.approx(0.87)


def test_wall_minutes_count_the_current_run(tmp_path: Path, monkeypatch) -> None:
    """A live run counts up to now (the report's clock, fixed here); a killed one up to its
    last recorded event."""
    from types import SimpleNamespace

    from hftune.report import data as report_data

    now = STARTED + 3 * 3600.0
    monkeypatch.setattr(report_data, "time", SimpleNamespace(time=lambda: now))
    trial = TrialRecord("a", {}, state="running", started_at=now - 1800,
                        reports=[evaluation(1, 0.6, time=now - 1500),
                                 evaluation(2, 0.7, time=now - 60)])
    root = study_folder(tmp_path / "s", [trial], status="running", started_at=STARTED,
                        wall_s=600.0, run_started_at=now - 1800)
    store = StudyStore(root)
    store.acquire_lock()
    try:
        live = load_study(root)
    finally:
        store.release_lock()
    # 10 min of the earlier run + 30 min of this one so far
    assert summary_row(live)["wall_min"] == pytest.approx(40.0)
    # killed (no lock): counted up to its last recorded event, as a resume charges it
    assert summary_row(load_study(root))["wall_min"] == pytest.approx(10.0 + 1740 / 60)


def test_values_that_are_no_score_are_left_out_of_every_report(tmp_path: Path) -> None:
    """A record hftune did not write (a text value) or a diverged evaluation (infinite) is no
    score: the best, the curves and both formats leave it out instead of failing."""
    trials = trials_with([[0.6, 0.7]])
    trials[0].reports.append(evaluation(3, "high"))  # type: ignore[arg-type]
    trials[0].reports.append(evaluation(4, float("inf")))
    root = study_folder(tmp_path / "odd", trials)
    data = load_study(root)
    assert data.best().trial_id == "t0" and summary_row(data)["best"] == 0.7
    from hftune.report.data import reports_frame

    assert list(reports_frame(data)["value"]) == [0.6, 0.7]
    for fmt_name, name in (("html", "r.html"), ("md", "r.md")):
        write_report([root], tmp_path / name, fmt=fmt_name)
        assert (tmp_path / name).stat().st_size > 0
