"""Which trial is the best and what the study records of it (``hftune.study.records``: a trial's
score under the study's mode and rule, the best trial, ``select_best``): the numbers export,
the held-out estimate and the report act on."""

from __future__ import annotations

import math

import pytest

from hftune.study.records import StudyRecord, TrialRecord, best_trial, select_best
from hftune.testing.records import evaluation, trial_record


def _study(mode: str = "max", score: str = "best") -> StudyRecord:
    return StudyRecord(name="s", status="finished", strategy="grid", metric="accuracy",
                       mode=mode, score=score)


def test_a_trials_score_is_its_best_or_its_last_evaluation() -> None:
    trial = trial_record("t", [0.6, 0.9, math.nan, 0.7, "n/a"])
    assert trial.score("accuracy", "max") == 0.9
    assert trial.score("accuracy", "min") == 0.6
    assert trial.score("accuracy", "max", "last") == 0.7  # NaN and text are no value
    assert trial.scored_report("accuracy", "max", "last")["epoch"] == 4
    assert trial.scored_report("accuracy", "max")["epoch"] == 2
    assert trial_record("none", [math.nan]).score("accuracy", "max") is None
    assert trial_record("empty").scored_report("accuracy", "max", "last") is None


def test_ties_go_to_the_first_report_and_the_first_trial() -> None:
    trial = trial_record("t", [0.8, 0.8])
    assert trial.best_report("accuracy", "max")["epoch"] == 1
    assert trial.best_report("accuracy", "min")["epoch"] == 1
    first, second = trial_record("a", [0.5, 0.8]), trial_record("b", [0.8])
    assert best_trial([first, second], "accuracy", "max") is first
    assert best_trial([second, first], "accuracy", "max") is second
    assert best_trial([first, second], "accuracy", "min") is first


@pytest.mark.parametrize(("mode", "score", "expected"), [
    ("max", "best", "peaked"), ("min", "best", "low"), ("max", "last", "steady"),
    ("min", "last", "peaked")])
def test_the_best_trial_follows_the_mode_and_the_rule(mode: str, score: str,
                                                      expected: str) -> None:
    trials = [trial_record("peaked", [0.5, 0.95, 0.4]), trial_record("steady", [0.7, 0.8]),
              trial_record("low", [0.3, 0.6]), trial_record("unscored", [math.nan])]
    assert best_trial(trials, "accuracy", mode, score).trial_id == expected


def test_an_errored_trial_counts_when_it_reported_and_no_score_means_no_best() -> None:
    errored = trial_record("e", [0.9], state="errored")
    assert best_trial([trial_record("f", [0.5]), errored], "accuracy", "max") is errored
    assert best_trial([trial_record("x"), trial_record("y", [math.inf])], "accuracy",
                      "max") is None
    assert best_trial([], "accuracy", "max") is None


def test_select_best_records_the_value_and_epoch_of_the_scored_report() -> None:
    study = _study(score="last")
    trials = [trial_record("a", [0.5, 0.9, 0.6]),
              TrialRecord("b", {}, state="finished",
                          reports=[evaluation(1, 0.95), evaluation(2, 0.8),
                                   evaluation(3, math.nan)])]
    best = select_best(study, trials)  # last: a 0.6, b 0.8 (its best, 0.95, is not its score)
    assert best is trials[1]
    assert (study.best_trial_id, study.best_value, study.best_epoch) == ("b", 0.8, 2)
    assert isinstance(study.best_value, float)
    by_best = _study()
    assert select_best(by_best, trials) is trials[1]
    assert (by_best.best_trial_id, by_best.best_value, by_best.best_epoch) == ("b", 0.95, 1)


def test_select_best_without_a_score_changes_nothing() -> None:
    study = _study()
    study.best_trial_id, study.best_value, study.best_epoch = "old", 0.4, 3
    assert select_best(study, [trial_record("x", [math.nan])]) is None
    assert (study.best_trial_id, study.best_value, study.best_epoch) == ("old", 0.4, 3)
