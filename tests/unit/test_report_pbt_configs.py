"""PBT members in the trial tables: the config shown is the one in effect at the scored report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from hftune.report.data import load_study, trials_frame
from hftune.report.tables import trial_table
from hftune.study.effective_config import config_at_epoch, config_of_report, scored_config
from hftune.study.records import StudyRecord, TrialRecord
from hftune.study.store import StudyStore
from hftune.testing.records import evaluation

OLD = {"learning_rate": 1e-5, "weight_decay": 0.0}
NEW = {"learning_rate": 5e-5, "weight_decay": 0.01}


def _member(reports: list[dict[str, Any]], restored_epoch: float) -> TrialRecord:
    """A member that switched OLD → NEW from donor ``d``'s checkpoint of ``restored_epoch``,
    as the recorder leaves it: ``config`` is the latest config."""
    return TrialRecord(trial_id="m", config=dict(NEW), state="finished", reports=reports,
                       config_history=[{"epoch": 0.0, "config": dict(OLD)},
                                       {"epoch": restored_epoch, "config": dict(NEW),
                                        "from_trial": "d"}])


def exploited_after_its_best() -> TrialRecord:
    """Best at epoch 2 (0.80) under OLD; exploited at epoch 2, then 0.70 and 0.75 under NEW."""
    return _member([evaluation(1.0, 0.60), evaluation(2.0, 0.80),
                    evaluation(3.0, 0.70, worker_pid=2, restored_from="d", restored_epoch=2.0),
                    evaluation(4.0, 0.75)], restored_epoch=2.0)


def test_config_at_epoch_follows_the_history() -> None:
    member = exploited_after_its_best()
    assert config_at_epoch(member, 1.0) == OLD
    assert config_at_epoch(member, 2.0) == OLD  # its own evaluation at 2 came before the switch
    assert config_at_epoch(member, 3.0) == NEW
    assert config_at_epoch(member, None) == NEW  # unknown epoch: the latest config
    plain = TrialRecord(trial_id="g", config={"learning_rate": 3e-5})
    assert config_at_epoch(plain, 1.0) == {"learning_rate": 3e-5}


def test_scored_config_is_the_config_of_the_scored_report() -> None:
    member = exploited_after_its_best()
    assert scored_config(member, "accuracy", "max") == OLD  # best: epoch 2
    assert scored_config(member, "accuracy", "max", "last") == NEW  # last: epoch 4
    assert scored_config(TrialRecord(trial_id="n", config=dict(NEW)), "accuracy", "max") == NEW


def test_report_order_settles_what_epochs_cannot() -> None:
    # continued from the donor's epoch-1 checkpoint after its own epoch 2: two evaluations at
    # epoch 2, the first under OLD, the second under NEW
    older = _member([evaluation(1.0, 0.50), evaluation(2.0, 0.90),
                     evaluation(2.0, 0.40, worker_pid=2, restored_from="d", restored_epoch=1.0),
                     evaluation(3.0, 0.60)], restored_epoch=1.0)
    assert [config_of_report(older, r) for r in older.reports] == [OLD, OLD, NEW, NEW]
    assert scored_config(older, "accuracy", "max") == OLD
    assert config_at_epoch(older, 2.0) == NEW  # the epoch alone would say NEW
    # cloned a finished donor: its one report is at the checkpoint's own epoch, under NEW
    clone = _member([evaluation(1.0, 0.50), evaluation(2.0, 0.55),
                     evaluation(6.0, 0.90, worker_pid=2, restored_from="d", restored_epoch=6.0)],
                    restored_epoch=6.0)
    assert scored_config(clone, "accuracy", "max") == NEW
    assert config_at_epoch(clone, 6.0) == OLD  # the epoch alone would say OLD


def test_without_restore_markers_the_epoch_decides() -> None:
    member = _member([evaluation(1.0, 0.60), evaluation(2.0, 0.80), evaluation(3.0, 0.70)],
                     restored_epoch=2.0)
    assert [config_of_report(member, r) for r in member.reports] == [OLD, OLD, NEW]


def _pbt_folder(root: Path, rule: str = "best") -> StudyStore:
    store = StudyStore(root)
    study = StudyRecord(name="pbt", status="finished", strategy="pbt", metric="accuracy",
                        mode="max", score=rule)
    store.write_study(study)
    store.write_trial(exploited_after_its_best())
    store.write_trial(TrialRecord(trial_id="d", config=dict(NEW), state="finished",
                                  reports=[evaluation(1.0, 0.65), evaluation(2.0, 0.70)]))
    store.write_tables(study)
    return store


def test_trial_table_and_trials_csv_show_the_scored_config(tmp_path: Path) -> None:
    store = _pbt_folder(tmp_path / "best")
    frame = trials_frame(load_study(store.root)).set_index("trial_id")
    assert frame.loc["m", "learning_rate"] == pytest.approx(1e-5)
    assert frame.loc["m", "score"] == pytest.approx(0.80)
    headers, rows = trial_table(load_study(store.root))
    row = next(r for r in rows if r[0].startswith("m"))
    assert row[headers.index("learning_rate")] == "1e-05"
    csv = pd.read_csv(store.root / "trials.csv").set_index("trial_id")
    assert csv.loc["m", "config.learning_rate"] == pytest.approx(1e-5)
    assert csv.loc["m", "config.weight_decay"] == pytest.approx(0.0)
    assert csv.loc["d", "config.learning_rate"] == pytest.approx(5e-5)
    # scored by the last evaluation: that one was made under NEW
    last = _pbt_folder(tmp_path / "last", rule="last")
    assert trials_frame(load_study(last.root)).set_index("trial_id").loc[
        "m", "learning_rate"] == pytest.approx(5e-5)
    csv = pd.read_csv(last.root / "trials.csv").set_index("trial_id")
    assert csv.loc["m", "config.learning_rate"] == pytest.approx(5e-5)
