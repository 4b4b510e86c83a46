"""The live view of ``hftune run``/``resume``: in a terminal a header (done / planned, best
under the study's rule with its searched values, time left) over a row per running and
recently ended trial; elsewhere one plain line per event, in order."""

from __future__ import annotations

import io

from rich.console import Console

from hftune.study.progress import LiveProgress
from hftune.study.records import TrialRecord


def _records() -> dict[str, TrialRecord]:
    peaked = TrialRecord("peaked", {"learning_rate": 3e-4, "num_train_epochs": 2},
                         state="finished", started_at=1000.0, ended_at=1100.0,
                         reports=[{"epoch": 1.0, "accuracy": 0.9},
                                  {"epoch": 2.0, "accuracy": 0.6}])
    steady = TrialRecord("steady", {"learning_rate": 1e-4, "num_train_epochs": 2},
                         state="running", started_at=1050.0,
                         reports=[{"epoch": 1.0, "accuracy": 0.7}])
    return {"peaked": peaked, "steady": steady}


def _terminal(rule: str = "best", planned: int | None = 4) -> tuple[LiveProgress, io.StringIO]:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=160, color_system=None)
    return LiveProgress("accuracy", "max", console, rule=rule,
                        planned=lambda: planned), out


def test_the_header_counts_trials_names_the_best_and_estimates_the_time_left() -> None:
    """One trial ended after 100 s; one runs, at epoch 1 of 2; 4 planned: (4 − 1 − 0.5)
    trials × 100 s ÷ 1 running = 250 s left."""
    progress, _ = _terminal()
    progress.update(_records())
    header = progress.header()
    assert "trials 1 done / 4 planned, 1 running" in header
    assert "best accuracy 0.9000 (peaked: learning_rate=0.0003" in header
    assert progress.seconds_left() == 250.0 and "left ~4m10s" in header


def test_the_best_follows_the_score_rule() -> None:
    progress, _ = _terminal(rule="last")
    progress.update(_records())
    assert "best accuracy 0.7000 (steady" in progress.header()


def test_no_estimate_before_a_trial_ended_or_without_a_plan() -> None:
    records = _records()
    unplanned, _ = _terminal(planned=None)
    unplanned.update(records)
    assert unplanned.seconds_left() is None and "left ?" in unplanned.header()
    records["peaked"].state, records["peaked"].ended_at = "running", None
    early, _ = _terminal()
    early.update(records)
    assert early.seconds_left() is None


def test_the_table_shows_each_trial_with_its_values_and_epochs() -> None:
    progress, out = _terminal()
    with progress:
        progress.update(_records())
    shown = out.getvalue()
    assert "steady" in shown and "peaked" in shown and "0.0001" in shown
    assert "1/2" in shown and "2/2" in shown and "running" in shown and "finished" in shown


def test_not_a_terminal_prints_one_line_per_event_in_order() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=200)
    records = _records()
    steady = records.pop("steady")
    steady.reports, steady.state = [], "running"
    with LiveProgress("accuracy", "max", console) as progress:
        progress.update({"steady": steady})
        steady.reports = [{"epoch": 1.0, "accuracy": 0.7}]
        progress.update({"steady": steady})
        progress.update({"steady": steady})  # nothing changed: nothing printed
        steady.reports.append({"epoch": 2.0, "accuracy": 0.8})
        steady.state = "finished"
        progress.update({"steady": steady})
    lines = out.getvalue().strip().splitlines()
    assert lines == [
        'trial steady started: {"learning_rate": 0.0001, "num_train_epochs": 2}',
        "trial steady epoch 1: accuracy 0.7000",
        "trial steady epoch 2: accuracy 0.8000",
        "trial steady finished: accuracy 0.8000",
    ]
    assert out.getvalue().endswith("\n")


def test_status_watch_follows_the_folder_until_no_process_holds_it(tmp_path, monkeypatch,
                                                                   capsys) -> None:
    """Three reads: the lock is held for two; between reads the trial reports and ends. The
    view prints each event once, then returns (no terminal: plain lines)."""
    from hftune.cli.status import watch_study
    from hftune.study.store import StudyStore
    from hftune.testing.records import evaluation, study_folder, trial_record

    root = study_folder(tmp_path / "s", [trial_record("t", [], state="running",
                                                      config={"learning_rate": 1e-4})],
                        status="running", planned_trials=1)
    store = StudyStore(root)
    held = iter([True, True, False])
    monkeypatch.setattr(StudyStore, "is_locked", lambda self: next(held))
    steps = iter([[evaluation(1, 0.7)], [evaluation(1, 0.7), evaluation(2, 0.8)]])

    def sleep(seconds: float) -> None:
        rec = store.read_trials()[0]
        rec.reports = next(steps)
        rec.state = "finished" if len(rec.reports) == 2 else "running"
        store.write_trial(rec)

    watch_study(root, sleep=sleep)
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == ['trial t started: {"learning_rate": 0.0001}',
                     "trial t epoch 1: accuracy 0.7000", "trial t epoch 2: accuracy 0.8000",
                     "trial t finished: accuracy 0.8000"]
