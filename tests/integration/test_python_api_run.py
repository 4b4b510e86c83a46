"""``hftune.run`` from Python through real Ray Tune: a 2-trial grid from a mapping, read back
with :class:`hftune.Study`, its best checkpoint exported and reloaded."""

from __future__ import annotations

from pathlib import Path

import pytest

import hftune

pytestmark = pytest.mark.integration


def test_run_from_a_mapping_then_read_export_and_report(ray_session, tiny_bert: Path,
                                                        shared_data: Path,
                                                        tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    from transformers import AutoModelForSequenceClassification

    config = {"name": "api", "output_dir": str(tmp_path / "api"), "model": str(tiny_bert),
              "task": {"name": "sst2", "max_train_samples": 128, "max_eval_samples": 48},
              "max_length": 48,
              "search_space": {"learning_rate": [1e-3, 3e-4], "num_train_epochs": [1]}}
    study = hftune.run(config, {"seed": 3}, data_dir=shared_data / "sst2")
    assert study.status == "finished" and study.record.planned_trials == 2
    # not a terminal here: the live view printed one line per event
    err = capsys.readouterr().err
    assert err.count(" started: ") == 2 and err.count(" finished: accuracy ") == 2
    trials = study.trials
    assert sorted(trials["state"]) == ["finished", "finished"]
    best = study.best
    assert best.value == trials["score"].max()
    assert best.trial_id == trials.loc[trials["score"].idxmax(), "trial_id"]
    assert best.checkpoint is not None and best.checkpoint.is_dir()
    assert len(study.evaluations) == 2  # one evaluation per trial (1 epoch)
    model = AutoModelForSequenceClassification.from_pretrained(
        study.export(tmp_path / "model"))
    assert model.config.num_labels == 2
    assert "api" in study.report(tmp_path / "report.html").read_text()
