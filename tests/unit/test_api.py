"""The Python API (``hftune.run``, ``hftune.open``, :class:`hftune.Study`): configs from a
path, a mapping or a StudyConfig with overrides; a study folder read as DataFrames and its
selected trial; the command line's errors as exceptions; a cheap ``import hftune``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import hftune
from hftune.testing.records import checkpoint_meta, evaluation, study_folder, trial_record


def test_a_config_from_a_path_a_mapping_or_a_config_takes_the_overrides(
        write_study, tmp_path: Path) -> None:
    path, _ = write_study()
    from_path = hftune.study_config(path, {"budget.num_samples": 3,
                                           "search_space.learning_rate": [1e-4, 2e-4]})
    assert from_path.budget.num_samples == 3
    assert from_path.search_space["learning_rate"] == [1e-4, 2e-4]
    mapping = json.loads(path.read_text())
    from_mapping = hftune.study_config(mapping, {"seed": 5}, data_dir=tmp_path)
    assert from_mapping.seed == 5 and from_mapping.task.data_dir == tmp_path.resolve()
    assert "seed" not in mapping and mapping["task"]["data_dir"] != str(tmp_path)  # not changed
    again = hftune.study_config(from_mapping, {"budget.num_samples": 2})
    assert again.seed == 5 and again.budget.num_samples == 2


def test_a_bad_config_raises_the_commands_error(write_study) -> None:
    path, _ = write_study()
    with pytest.raises(hftune.ConfigError, match="budget.num_samples"):
        hftune.study_config(path, {"budget.num_samples": 0})
    with pytest.raises(hftune.HftuneInputError):
        hftune.open(path.parent / "no-study-here")


def test_an_open_study_reads_as_frames_and_names_its_best_trial(tmp_path: Path) -> None:
    """b is best at its first evaluation (0.8, epoch 1) although its last is 0.7; its
    checkpoint of that evaluation is the one export would take."""
    a = trial_record("a", [0.5, 0.6], config={"learning_rate": 1e-4})
    b = trial_record("b", reports=[evaluation(1, 0.8, ray_node_id="n1"),
                                   evaluation(2, 0.7)], config={"learning_rate": 3e-4})
    root = study_folder(tmp_path / "s", [a, b])
    ck = checkpoint_meta(root / "ray" / "trial_b" / "checkpoint_000000", "b", 1.0, 0.8,
                         step=10, config={"learning_rate": 3e-4})
    study = hftune.open(root)
    assert study.status == "finished"
    trials = study.trials.set_index("trial_id")
    assert trials.loc["b", "score"] == 0.8 and trials.loc["a", "score"] == 0.6
    assert trials.loc["b", "node"] == "n1" and pd.isna(trials.loc["a", "node"])
    evaluations = study.evaluations
    assert list(evaluations["trial_id"]) == ["a", "a", "b", "b"]
    assert list(evaluations["accuracy"]) == [0.5, 0.6, 0.8, 0.7]
    best = study.best
    assert (best.trial_id, best.value, best.epoch) == ("b", 0.8, 1.0)
    assert best.config == {"learning_rate": 3e-4}
    assert best.checkpoint == ck.resolve()


def test_a_study_with_no_score_has_no_best(tmp_path: Path) -> None:
    root = study_folder(tmp_path / "s", [trial_record("a", [], state="errored")])
    assert hftune.open(root).best is None


def test_the_report_format_follows_the_file_name(tmp_path: Path) -> None:
    root = study_folder(tmp_path / "s", [trial_record("a", [0.5])])
    other = study_folder(tmp_path / "t", [trial_record("b", [0.9])])
    html = hftune.open(root).report(tmp_path / "r.html", others=[other])
    assert html.read_text().lstrip().lower().startswith("<!doctype html")
    assert "0.9000" in html.read_text()
    md = hftune.open(root).report(tmp_path / "r.md")
    assert md.read_text().lstrip().startswith("#")


def test_import_hftune_loads_no_heavy_library() -> None:
    code = ("import sys, hftune; hftune.ConfigError; "
            "print([m for m in ('torch', 'transformers', 'ray', 'pandas', 'datasets') "
            "if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
