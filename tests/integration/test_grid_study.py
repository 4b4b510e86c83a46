"""The core study end to end: real Ray Tune, tiny BERT, a slice of the real RTE data."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from hftune.study.loading import validate_study
from hftune.study.runner import run_study
from hftune.study.store import StudyStore

pytestmark = pytest.mark.integration


def grid_config(out: Path, model: Path, data: Path, **extra) -> dict:
    cfg = {
        "name": "grid-it",
        "output_dir": str(out),
        "model": str(model),
        "task": {"name": "rte", "data_dir": str(data), "max_train_samples": 160,
                 "max_eval_samples": 96},
        "max_length": 64,
        "search_space": {"learning_rate": [3e-4, 3e-3], "per_device_train_batch_size": [16, 32],
                         "num_train_epochs": [2]},
        "strategy": {"name": "grid"},
    }
    cfg.update(extra)
    return cfg


def test_grid_study_end_to_end(ray_session, tiny_bert, shared_data, tmp_path, monkeypatch,
                               capsys) -> None:
    # tests/conftest.py points every process's tokenization marker at this file
    tokenize_log = Path(os.environ["HFTUNE_TOKENIZE_LOG"])
    before = tokenize_log.read_text().count("\n") if tokenize_log.exists() else 0
    out = tmp_path / "grid"
    result = run_study(validate_study(grid_config(out, tiny_bert, shared_data / "rte")))

    # all 4 trials finished, each with per-epoch accuracy records
    assert len(result.trials) == 4
    assert {t.state for t in result.trials} == {"finished"}
    configs = {(t.config["learning_rate"], t.config["per_device_train_batch_size"])
               for t in result.trials}
    assert configs == {(3e-4, 16), (3e-4, 32), (3e-3, 16), (3e-3, 32)}
    for t in result.trials:
        assert [r["epoch"] for r in t.reports] == [1.0, 2.0]
        assert all(0 <= r["accuracy"] <= 1 for r in t.reports)
        assert t.reports[-1]["trained_all"] is True
        assert t.reports[0]["torch_threads"] == 1  # one CPU per trial → one torch thread

    # the reported best trial is the one with the highest recorded metric
    best_value = max(r["accuracy"] for t in result.trials for r in t.reports)
    assert result.study.best_value == best_value
    best = next(t for t in result.trials if t.trial_id == result.study.best_trial_id)
    assert max(r["accuracy"] for r in best.reports) == best_value
    assert result.study.status == "finished" and result.study.wall_s > 0

    # tokenization ran once for the study, in this process, never in a trial
    after = tokenize_log.read_text().splitlines()[before:]
    assert len(after) == 1, after

    # workers were reused: fewer worker processes than trials
    assert len({t.reports[0]["worker_pid"] for t in result.trials}) <= 2

    # the folder holds the resolved config, records and tables, in open formats
    for name in ("study.yaml", "study.json", "trials.csv", "reports.csv"):
        assert (out / name).is_file()

    # `hftune status --json` reads the same numbers back
    from hftune.cli.main import main

    monkeypatch.setattr(sys, "argv", ["hftune", "status", str(out), "--json"])
    try:
        main()
    except SystemExit as exc:  # a clean run returns; an error would exit non-zero
        assert exc.code in (0, None)
    data = json.loads(capsys.readouterr().out)
    assert data["best_trial_id"] == result.study.best_trial_id
    assert data["counts"] == {"finished": 4}
    by_id = {row["trial_id"]: row for row in data["trials"]}
    for t in StudyStore(out).read_trials():
        assert by_id[t.trial_id]["best"] == max(r["accuracy"] for r in t.reports)
        assert by_id[t.trial_id]["config"] == t.config


def test_custom_pair_task_with_string_labels(ray_session, tiny_bert, tmp_path) -> None:
    data = tmp_path / "pairs"
    data.mkdir()
    words = ["red", "green", "blue", "cold", "warm", "tall"]
    rows = [{"left": f"the {a} one", "right": f"a {b} thing",
             "relation": "same" if a == b else "different"}
            for a in words for b in words]
    for split, part in (("train", rows), ("dev", rows[::2])):
        (data / f"{split}.csv").write_text(
            "left,right,relation\n" + "".join(f"{r['left']},{r['right']},{r['relation']}\n"
                                               for r in part))
    cfg = grid_config(tmp_path / "out", tiny_bert, data,
                      task={"name": "pairs", "data_dir": str(data),
                            "text_fields": ["left", "right"], "label_field": "relation",
                            "validation_split": "dev"},
                      search_space={"learning_rate": [1e-3], "num_train_epochs": [1]})
    result = run_study(validate_study(cfg))
    assert [t.state for t in result.trials] == ["finished"]
    assert result.study.label_names == ["different", "same"]
    assert json.loads((tmp_path / "out" / "study.json").read_text())["label_names"] == [
        "different", "same"]


def test_time_budget_ends_the_study_as_finished(ray_session, tiny_bert, shared_data,
                                                tmp_path) -> None:
    """Ray stops the trials running when ``budget.time_budget_s`` is reached without its
    end-of-trial events; the study still ends ``finished``, those trials ``stopped``."""
    out = tmp_path / "budget"
    cfg = validate_study(grid_config(
        out, tiny_bert, shared_data / "rte",
        search_space={"learning_rate": [3e-4, 1e-3], "num_train_epochs": [200]},
        resources={"cpus_per_trial": 1}, budget={"time_budget_s": 20},
        checkpoints={"save_best": False}))
    result = run_study(cfg)
    assert result.study.status == "finished"
    assert result.study.wall_s >= 20
    assert "time_budget_s (20 s) reached" in result.study.message
    states = [t.state for t in result.trials]
    assert "running" not in states and "stopped" in states, states
    stopped = [t for t in result.trials if t.state == "stopped"]
    assert all(t.ended_at and not t.reports[-1].get("trained_all") for t in stopped
               if t.reports)
