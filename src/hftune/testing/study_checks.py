"""Checks of a finished study that several integration tests share."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pytest

from hftune.study.store import StudyStore


def check_holdout_rerun_report_status(out: Path, metric: str, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str],
                                      mode: str = "max") -> None:
    """The held-out estimate is in the type's metric; seed reruns of the best config score
    it; report and status name it and show the study's numbers."""
    from hftune.study.rerun import rerun_study
    from hftune.testing.cli import run_cli

    study = StudyStore(out).read_study()
    best = {t.trial_id: t for t in StudyStore(out).read_trials()}[study.best_trial_id]
    assert study.best_holdout is not None and math.isfinite(study.best_holdout)
    assert best.holdout["metrics"][metric] == study.best_holdout
    summary = rerun_study(out, top=1, seeds=2)
    [row] = summary["configs"]
    assert row["n"] == 2 and all(math.isfinite(v) for v in row["values"])
    report = out.parent / "report.md"
    code, _, err = run_cli(["report", str(out), "--format", "md", "-o", str(report)],
                           monkeypatch, capsys)
    assert code == 0, err
    text = report.read_text()
    assert f"{metric} ({mode})" in text
    assert f"{study.best_value:.4f}" in text and f"{study.best_holdout:.4f}" in text
    assert f"{row['mean']:.4f}" in text
    monkeypatch.setenv("COLUMNS", "200")  # the whole table: no header cut to the terminal
    code, stdout, err = run_cli(["status", str(out)], monkeypatch, capsys)
    assert code == 0, err
    assert f"best {metric}" in stdout  # the column: status rounds to 4 significant digits
    shown = [float(x) for x in re.findall(r"-?\d+\.\d+", stdout)]
    assert any(math.isclose(x, study.best_value, abs_tol=1e-3) for x in shown), stdout


def export_with_cli(out: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch,
                    *extra: str) -> None:
    """``hftune export OUT -o MODEL_DIR [extra]`` through the command line's ``main``; it must
    exit 0."""
    import sys

    from hftune.cli.main import main

    monkeypatch.setattr(sys, "argv", ["hftune", "export", str(out), "-o", str(model_dir),
                                      *extra])
    try:
        main()
    except SystemExit as exc:
        assert exc.code in (0, None)


def check_export_rescores(out: Path, cfg: Any, metric: str, auto: str, model_dir: Path,
                          monkeypatch: pytest.MonkeyPatch) -> str:
    """Export the study's best trial to ``model_dir``, load it with the transformers class
    ``auto`` and score it again on the validation rows: the value the study recorded comes
    back. Returns the model card's text."""
    import transformers
    from transformers import AutoTokenizer

    from hftune.study.checkpoints import evaluate_model
    from hftune.study.prepare import prepare_study

    export_with_cli(out, model_dir, monkeypatch)
    model = getattr(transformers, auto).from_pretrained(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    prepared = prepare_study(cfg)
    study = StudyStore(out).read_study()
    again = evaluate_model(model, prepared.tokenized.splits[prepared.task.validation_split],
                           tokenizer=tokenizer, task_type=prepared.task.type,
                           label_names=tuple(study.label_names or ()))
    assert math.isclose(again[metric], study.best_value, rel_tol=1e-5, abs_tol=1e-6)
    return (model_dir / "README.md").read_text()
