"""The PBT schedule behind a trial's final weights, from the lineage (worked by hand)."""

from __future__ import annotations

import pytest

from hftune.errors import StudyFolderError
from hftune.study.records import TrialRecord
from hftune.study.replay import Segment, pbt_schedule


def trial(tid: str, config: dict, history: list | None = None) -> TrialRecord:
    return TrialRecord(trial_id=tid, config=config, config_history=history or [])


def test_schedule_follows_the_lineage_back() -> None:
    a0, b0 = {"lr": 1}, {"lr": 2}
    a1, b1, a2 = {"lr": 3}, {"lr": 4}, {"lr": 5}
    lineage = [
        # t=10: A copies B at epoch 1, explores to a1
        {"time": 10, "from_trial": "B", "to_trial": "A", "epoch": 1.0, "new_config": a1},
        # t=20: B copies A at epoch 2 (A's weights: B until 1, a1 until 2), explores to b1
        {"time": 20, "from_trial": "A", "to_trial": "B", "epoch": 2.0, "new_config": b1},
        # t=30: A copies B at epoch 3, explores to a2
        {"time": 30, "from_trial": "B", "to_trial": "A", "epoch": 3.0, "new_config": a2},
    ]
    trials = [trial("A", a2, [{"epoch": 0.0, "config": a0}]),
              trial("B", b1, [{"epoch": 0.0, "config": b0}])]
    assert pbt_schedule(trials, lineage, "A") == [
        Segment(0.0, 1.0, b0, "B"), Segment(1.0, 2.0, a1, "A"), Segment(2.0, 3.0, b1, "B"),
        Segment(3.0, None, a2, "A")]
    # B's final weights: b0 until 1 (B itself), a1 from 1 to 2 (A), then b1
    assert pbt_schedule(trials, lineage, "B") == [
        Segment(0.0, 1.0, b0, "B"), Segment(1.0, 2.0, a1, "A"), Segment(2.0, None, b1, "B")]


def test_no_exploit_is_one_segment() -> None:
    assert pbt_schedule([trial("C", {"lr": 7})], [], "C") == [Segment(0.0, None, {"lr": 7}, "C")]


def test_replay_refuses_a_study_that_evaluated_every_n_steps(tmp_path) -> None:
    """Segments end at epoch boundaries; a study whose exploits fell between them is refused
    with the reason, before any data or model is loaded."""
    import pytest

    from hftune.errors import StudyFolderError
    from hftune.study.replay import replay_study
    from hftune.study.store import StudyStore
    from hftune.testing.fixtures import build_pbt_study

    root = build_pbt_study(tmp_path / "pbt")
    StudyStore(root).write_config({
        "name": "pbt-rte", "model": "no-such-model", "task": {"name": "rte"},
        "search_space": {"learning_rate": {"loguniform": [1e-5, 5e-5]}},
        "strategy": {"name": "pbt"}, "evaluation": {"every": "steps", "eval_steps": 20}})
    with pytest.raises(StudyFolderError,
                       match="every 20 steps; replay and reruns of a schedule work for"):
        replay_study(root)


@pytest.mark.parametrize("event, needle", [
    ({"to_trial": "b", "epoch": 1.0, "new_config": {}}, "lacks time, from_trial"),
    ({"time": 1.0, "from_trial": "a", "to_trial": "b"}, "lacks epoch, new_config"),
    ({"time": "x", "from_trial": "a", "to_trial": "b", "epoch": 1.0, "new_config": {}},
     "time is not a number"),
    ({"time": 1.0, "from_trial": "zz", "to_trial": "b", "epoch": 1.0, "new_config": {}},
     "copies trial 'zz', which has no record")])
def test_pbt_schedule_refuses_an_event_it_cannot_follow(event: dict, needle: str) -> None:
    from hftune.study.replay import pbt_schedule

    trials = [TrialRecord(trial_id=t, config={"lr": 1}) for t in ("a", "b")]
    with pytest.raises(StudyFolderError, match=needle):
        pbt_schedule(trials, [event], "b")
