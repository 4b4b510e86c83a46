"""PBT on the real HF path: exploits happen, nothing errors, explored values take effect."""

from __future__ import annotations

import pytest

from hftune.study.loading import validate_study
from hftune.study.runner import run_study
from hftune.study.store import StudyStore

pytestmark = pytest.mark.integration


def test_pbt_exploits_and_applies_explored_values(ray_session, tiny_bert, shared_data,
                                                  tmp_path) -> None:
    out = tmp_path / "pbt"
    cfg = validate_study({
        "name": "pbt-it", "output_dir": str(out), "model": str(tiny_bert), "seed": 7,
        "task": {"name": "rte", "data_dir": str(shared_data / "rte"), "max_train_samples": 128,
                 "max_eval_samples": 64},
        "max_length": 48,
        "search_space": {"learning_rate": {"loguniform": [1e-4, 3e-3]},
                         "weight_decay": {"uniform": [0.0, 0.3]},
                         "per_device_train_batch_size": [16, 32],
                         "num_train_epochs": [3]},
        "strategy": {"name": "pbt", "population": 4, "perturbation_interval": 1,
                     "quantile_fraction": 0.25, "resample_probability": 0.5},
        "checkpoints": {"keep": 1},
    })
    result = run_study(cfg)
    store = StudyStore(out)
    lineage = store.read_lineage()

    assert len(result.trials) == 4
    assert not [t for t in result.trials if t.state == "errored"], [t.error for t in result.trials]
    assert len(lineage) >= 1, "no exploit happened"
    by_id = {t.trial_id: t for t in result.trials}
    trained_after = 0
    for event in lineage:
        new = event["new_config"]
        # explored values stay inside their domains, with their types
        assert 1e-4 <= new["learning_rate"] <= 3e-3
        assert 0.0 <= new["weight_decay"] <= 0.3
        assert new["per_device_train_batch_size"] in (16, 32)
        # the first report after this exploit: what the optimizer held right after the restore
        target = by_id[event["to_trial"]]
        after = [r for r in target.reports if r["time"] == event["time"]]
        assert after and after[0]["restored_from"] == event["from_trial"], event
        if after[0].get("trained") is False:  # cloned a finished trial: nothing left to train
            assert "applied" not in after[0] and after[0]["epoch"] == event["epoch"]
            continue
        trained_after += 1
        applied = after[0]["applied"]
        assert applied["weight_decay"] == pytest.approx(new["weight_decay"])
        assert applied["base_learning_rate"] == pytest.approx(new["learning_rate"])
        assert 0 < applied["learning_rate"] <= new["learning_rate"]
        assert after[0]["weight_decay"] == pytest.approx(new["weight_decay"])
    assert trained_after >= 1, "no exploit was followed by training"
    # the exploiting trial's history is readable: its configs over time
    target = by_id[lineage[0]["to_trial"]]
    assert len(target.config_history) >= 2
    assert result.study.disk_bytes and result.study.disk_bytes > 0

    # replay: one model from scratch along the best trial's schedule; at every epoch the
    # optimizer held the learning rate and weight decay that the schedule's trial had then
    from hftune.study.replay import replay_study

    replay = replay_study(out)
    assert (out / "replay.json").is_file()
    segments = replay["schedule"]
    assert segments[0]["start"] == 0.0 and segments[-1]["end"] is None
    trained = [r for r in replay["reports"] if r.get("trained") is not False]
    assert trained and [r["epoch"] for r in trained] == sorted({r["epoch"] for r in trained})
    for rep in trained:
        seg = segments[rep["segment"]]
        assert rep["weight_decay"] == pytest.approx(seg["config"]["weight_decay"])
        originals = [r["learning_rate"] for r in by_id[seg["trial_id"]].reports
                     if r["epoch"] == rep["epoch"] and "learning_rate" in r]
        assert any(lr == pytest.approx(rep["learning_rate"]) for lr in originals), (rep, originals)

    # rerun: every trial once more with a fresh seed; a trial that exploited trains its whole
    # schedule from scratch (the hyperparameters change at the schedule's epochs), not its
    # final config alone
    from hftune.study.rerun import rerun_study

    summary = rerun_study(out, top=4, seeds=1)
    rows = {row["trial_id"]: row for row in summary["configs"]}
    runs = {int(r.config["config_index"]): r for r in StudyStore(out / "reruns").read_trials()}
    exploited = lineage[0]["to_trial"]
    schedule = rows[exploited]["schedule"]
    assert len(schedule) >= 2 and schedule[-1]["end"] is None
    rerun = runs[rows[exploited]["rank"] - 1]
    assert rerun.state == "finished" and not rerun.config_history
    assert {r["segment"] for r in rerun.reports} == set(range(len(schedule)))
    for rep in (r for r in rerun.reports if r.get("trained") is not False):
        seg = schedule[rep["segment"]]
        assert seg["start"] < rep["epoch"] <= (seg["end"] or 3.0)
        assert rep["weight_decay"] == pytest.approx(seg["config"]["weight_decay"])
    never_exploited = [row for tid, row in rows.items()
                       if not any(e["to_trial"] == tid for e in lineage)]
    assert all("schedule" not in row for row in never_exploited)
