"""Compute priced per run: each run of a trial at the per-trial resources it really held.

A resume may run with other resources (another machine); the trainable records a run's
``cpus_per_trial``/``gpus_per_trial`` in its first report, and the report's compute minutes
multiply each run's seconds by them (the study's ``resources`` when a report lacks them).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from hftune.report.data import (
    StudyData,
    compute_minutes,
    compute_unit,
    load_study,
    summary_row,
    trial_compute_minutes,
    trials_frame,
)
from hftune.report.tables import comparison_table, trial_table
from hftune.study.records import ComputePart, StudyRecord, TrialRecord, reports_compute_parts
from hftune.testing.fixtures import STARTED
from hftune.testing.records import trial_record
from hftune.training.trainable import TrialSetup, run_trial

LR = {"lr": 1}


def _run(pid: int, seconds: list[float], start: float,
         **resources: float) -> list[dict[str, Any]]:
    """One run's reports: the first carries ``worker_pid`` (and ``resources``, as the trainable
    writes them; none for a study written by an earlier hftune), one per ``seconds``."""
    reports = [{"epoch": float(i + 1), "accuracy": 0.5 + 0.01 * i, "elapsed_s": s,
                "time": start + s} for i, s in enumerate(seconds)]
    reports[0].update(worker_pid=pid, **resources)
    return reports


def _data(trials: list[TrialRecord], resources: dict[str, Any],
          before: list[dict[str, Any]] | None = None) -> StudyData:
    study = StudyRecord(name="s", status="finished", strategy="random", metric="accuracy",
                        mode="max", started_at=STARTED, resources=resources,
                        resources_before=before or [])
    return StudyData(root=Path("."), study=study, raw={}, trials=trials, label="s")


def test_two_runs_at_different_resources_are_priced_per_run() -> None:
    # 120 s on 1 GPU, then a resume on another machine: 90 s on 2 GPUs
    reports = (_run(1, [60.0, 120.0], STARTED, cpus_per_trial=4, gpus_per_trial=1)
               + _run(2, [30.0, 90.0], STARTED + 500, cpus_per_trial=8, gpus_per_trial=2))
    trial = trial_record("t", config=LR, reports=reports)
    data = _data([trial], {"cpus_per_trial": 8, "gpus_per_trial": 2, "max_concurrent": 1},
                 before=[{"cpus_per_trial": 4, "gpus_per_trial": 1, "max_concurrent": 1}])
    assert trial.compute_parts(data.study.resources) == [ComputePart(120.0, 4.0, 1.0),
                                                         ComputePart(90.0, 8.0, 2.0)]
    assert trial.compute_s == pytest.approx(210.0)  # the seconds: unchanged
    assert compute_unit(data) == "GPU"
    # 120 s × 1 + 90 s × 2 = 300 GPU-s (the latest resources for all: 210 × 2 = 420)
    assert compute_minutes(data) == pytest.approx(5.0)
    row = summary_row(data, price_per_hour=6.0)
    assert (row["compute_unit"], row["compute_min"]) == ("GPU", pytest.approx(5.0))
    assert row["cost"] == pytest.approx(0.5)
    assert list(trials_frame(data)["GPU_min"]) == [pytest.approx(5.0)]
    assert trial_table(data)[1][0][-1] == "5.00"
    assert "5.0 GPU-min" in comparison_table([data])[1][0]
    # in CPU-cores: 120 × 4 + 90 × 8 = 1200 core-s
    assert trial_compute_minutes(data, trial, "CPU-core") == pytest.approx(20.0)


def test_a_report_without_resources_falls_back_to_the_studys() -> None:
    # the first run by an earlier hftune (no resources in its report), resumed on 4 cores
    reports = (_run(1, [60.0, 120.0], STARTED)
               + _run(2, [60.0], STARTED + 500, cpus_per_trial=4, gpus_per_trial=0))
    trial = trial_record("t", config=LR, reports=reports)
    study_resources = {"cpus_per_trial": 2, "gpus_per_trial": 0}
    assert reports_compute_parts(reports, study_resources) == [ComputePart(120.0, 2.0, 0.0),
                                                               ComputePart(60.0, 4.0, 0.0)]
    data = _data([trial], study_resources)
    # 120 s × 2 + 60 s × 4 = 480 core-s = 8 core-min (the study's 2 cores for all: 6)
    assert compute_unit(data) == "CPU-core"
    assert compute_minutes(data) == pytest.approx(8.0)
    # without any recorded resources: 1 CPU, no GPU
    assert reports_compute_parts(reports[:2]) == [ComputePart(120.0, 1.0, 0.0)]
    # a single missing key falls back alone
    assert reports_compute_parts(_run(3, [10.0], STARTED, gpus_per_trial=1),
                                 study_resources) == [ComputePart(10.0, 2.0, 1.0)]


def test_a_mixed_study_counts_only_the_gpu_runs() -> None:
    # trial a ran on a GPU machine (then the study resumed on a CPU-only machine: b, 4 cores)
    gpu = trial_record("a", config=LR, reports=_run(1, [150.0, 300.0], STARTED,
                                                   cpus_per_trial=2, gpus_per_trial=1))
    cpu = trial_record("b", config=LR, reports=_run(2, [600.0], STARTED + 900,
                                                   cpus_per_trial=4, gpus_per_trial=0))
    data = _data([gpu, cpu], {"cpus_per_trial": 4, "gpus_per_trial": 0},
                 before=[{"cpus_per_trial": 2, "gpus_per_trial": 1}])
    # the latest resources alone said CPU-core, 900 s × 4 = 60 core-min
    assert compute_unit(data) == "GPU"
    assert compute_minutes(data) == pytest.approx(5.0)  # 300 GPU-s; the CPU run adds 0
    assert list(trials_frame(data)["GPU_min"]) == [pytest.approx(5.0), pytest.approx(0.0)]
    assert summary_row(data, price_per_hour=3.0)["cost"] == pytest.approx(0.25)


def test_replaced_seconds_and_an_error_tail_take_the_latest_runs_resources() -> None:
    reports = (_run(1, [100.0], STARTED, cpus_per_trial=2, gpus_per_trial=1)
               + _run(2, [50.0], STARTED + 500, cpus_per_trial=8, gpus_per_trial=2))
    trial = trial_record("t", config=LR, reports=reports, state="errored", replaced_s=40.0,
                   ended_at=STARTED + 550 + 10, run_started_at=STARTED + 500)
    parts = trial.compute_parts({"cpus_per_trial": 8, "gpus_per_trial": 2})
    assert parts == [ComputePart(100.0, 2.0, 1.0), ComputePart(50.0, 8.0, 2.0),
                     ComputePart(40.0, 8.0, 2.0),
                     ComputePart(10.0, 8.0, 2.0)]
    assert sum(p.seconds for p in parts) == pytest.approx(trial.compute_s)  # 200 s
    data = _data([trial], {"cpus_per_trial": 8, "gpus_per_trial": 2})
    # 100 × 1 + (50 + 40 + 10) × 2 = 300 GPU-s
    assert compute_minutes(data) == pytest.approx(5.0)
    # no report at all: the errored trial's seconds are priced at the study's resources
    lone = trial_record("u", config=LR, reports=[], state="errored", ended_at=STARTED + 30)
    assert lone.compute_parts({"gpus_per_trial": 0.5}) == [
        ComputePart(30.0, 1.0, 0.5)]


@pytest.mark.parametrize("name", ["grid", "asha", "pbt", "running"])
def test_a_single_run_study_gives_the_figure_it_gave_before(folders: dict[str, Path],
                                                           name: str) -> None:
    data = load_study(folders[name])
    res = data.study.resources
    gpus = float(res.get("gpus_per_trial") or 0)
    per_trial = gpus if gpus > 0 else float(res.get("cpus_per_trial") or 1)
    before = sum(t.compute_s for t in data.trials) * per_trial / 60.0  # the former rule
    assert compute_unit(data) == ("GPU" if gpus > 0 else "CPU-core")
    assert compute_minutes(data) == pytest.approx(before)
    assert sum(trial_compute_minutes(data, t) for t in data.trials) == pytest.approx(before)


def test_a_single_run_recording_its_resources_matches_the_study() -> None:
    trial = trial_record("t", config=LR, reports=_run(1, [60.0, 180.0], STARTED,
                                                     cpus_per_trial=2, gpus_per_trial=0))
    data = _data([trial], {"cpus_per_trial": 2, "gpus_per_trial": 0})
    assert trial.compute_parts(data.study.resources) == [ComputePart(180.0, 2.0, 0.0)]
    assert (compute_unit(data), compute_minutes(data)) == ("CPU-core", pytest.approx(6.0))


def test_no_compute_yet_takes_the_unit_of_the_latest_resources() -> None:
    pending = TrialRecord(trial_id="p", config={})
    assert compute_unit(_data([pending], {"gpus_per_trial": 1})) == "GPU"
    assert compute_unit(_data([pending], {"cpus_per_trial": 2})) == "CPU-core"
    assert compute_minutes(_data([pending], {"gpus_per_trial": 1})) == 0.0


def test_the_first_report_of_a_run_carries_its_resources(rte_trial_setup: TrialSetup,
                                                         tmp_path: Path) -> None:
    setup = dataclasses.replace(rte_trial_setup, cpus_per_trial=2, gpus_per_trial=0)
    events: list[dict[str, Any]] = []
    run_trial({"num_train_epochs": 2, "per_device_train_batch_size": 32}, setup,
              lambda record, folder: events.append(record), str(tmp_path))
    assert len(events) == 2
    # the setup's own values (2 cores: not a default of 1), as floats
    assert (events[0]["cpus_per_trial"], events[0]["gpus_per_trial"]) == (2.0, 0.0)
    assert all(isinstance(events[0][k], float) for k in ("cpus_per_trial", "gpus_per_trial"))
    assert "worker_pid" in events[0]
    assert "cpus_per_trial" not in events[1] and "gpus_per_trial" not in events[1]
