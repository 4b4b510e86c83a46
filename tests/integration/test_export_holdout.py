"""Best-epoch checkpoints, export, the held-out estimate and seed reruns, on one real study.

One grid study (2 trials, 2 epochs, tiny BERT, a slice of RTE: 64 validation rows of which the
first 32 select and the last 32 are held out) is run once for the module; each test reads it.
"""

from __future__ import annotations

import json
import math
import statistics
import sys
from pathlib import Path

import pytest

from hftune.study.checkpoints import best_checkpoint, evaluate_model, scan_checkpoints
from hftune.study.loading import validate_study
from hftune.study.runner import run_study
from hftune.study.store import StudyStore

pytestmark = pytest.mark.integration

EVAL_ROWS, HELD = 64, 32


@pytest.fixture(scope="module")
def study(ray_session, tiny_bert, shared_data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("holdout") / "study"
    cfg = {
        "name": "holdout-it", "output_dir": str(out), "model": str(tiny_bert),
        "task": {"name": "rte", "data_dir": str(shared_data / "rte"), "max_train_samples": 128,
                 "max_eval_samples": EVAL_ROWS},
        "max_length": 48,
        "search_space": {"learning_rate": [1e-3, 3e-4], "num_train_epochs": [2]},
        "strategy": {"name": "grid"},
        "evaluation": {"holdout": 0.5, "holdout_top_k": 2},
    }
    result = run_study(validate_study(cfg))
    assert result.study.status == "finished"
    assert {t.state for t in result.trials} == {"finished"}
    return out


@pytest.fixture(scope="module")
def rows(study, tiny_bert, shared_data):
    """The validation slice tokenized independently of hftune: (selection, held-out, all)."""
    import datasets
    import pandas as pd
    from transformers import AutoTokenizer

    frame = pd.read_json(shared_data / "rte" / "validation.jsonl", lines=True).iloc[:EVAL_ROWS]
    first = "sentence1" if "sentence1" in frame else "premise"
    second = "sentence2" if "sentence2" in frame else "hypothesis"
    names = StudyStore(study).read_study().label_names
    labels = [names.index(v) if isinstance(v, str) else int(v) for v in frame["label"]]
    tok = AutoTokenizer.from_pretrained(str(tiny_bert))
    enc = tok(frame[first].tolist(), frame[second].tolist(), truncation=True, max_length=48)
    full = datasets.Dataset.from_dict({**{k: enc[k] for k in enc}, "labels": labels})
    return full.select(range(HELD)), full.select(range(HELD, EVAL_ROWS)), full, tok


def _close(a: float, b: float, tol: float = 1e-6) -> bool:
    return math.isclose(a, b, rel_tol=tol, abs_tol=tol)


def test_each_trial_keeps_its_best_evaluation(study) -> None:
    store = StudyStore(study)
    meta = store.read_study()
    checkpoints = scan_checkpoints(store.ray_dir)
    for trial in store.read_trials():
        own = [c for c in checkpoints if c.trial_id == trial.trial_id]
        assert len(own) == 1, own  # the budget: one checkpoint per trial
        best = trial.best_report(meta.metric, meta.mode)
        assert own[0].epoch == best["epoch"] and own[0].global_step == best["step"]
        assert own[0].value(meta.metric) == best[meta.metric]
        assert own[0].record["loss"] == best["loss"]
        assert trial.trial_id in own[0].path.parent.name  # in the trial's own Ray folder


def test_trials_saw_only_the_selection_rows(study, rows) -> None:
    selection, _, full, tok = rows
    store = StudyStore(study)
    meta = store.read_study()
    checkpoints = scan_checkpoints(store.ray_dir)
    for trial in store.read_trials():
        ck = best_checkpoint(checkpoints, trial.trial_id, meta.metric, meta.mode)
        recorded = ck.record
        on_selection = evaluate_model(ck.path, selection, tokenizer=tok, metrics=["accuracy"])
        on_all = evaluate_model(ck.path, full, tokenizer=tok, metrics=["accuracy"])
        # the recorded numbers are exactly those of the first 32 rows, not of all 64
        assert _close(on_selection["loss"], recorded["loss"])
        assert _close(on_selection["accuracy"], recorded["accuracy"])
        assert not _close(on_all["loss"], recorded["loss"], 1e-4)
        # no report of any trial carries a selection value computed elsewhere
        for report in trial.reports:
            assert round(report["accuracy"] * HELD, 6).is_integer()


def test_holdout_is_recorded_for_the_top_trials_only_after_selection(study, rows) -> None:
    from hftune.report.data import holdout_value, load_study
    from hftune.study.records import best_trial

    _, held, _, tok = rows
    store = StudyStore(study)
    meta = store.read_study()
    trials = store.read_trials()
    assert meta.holdout["source"] == f"validation[{HELD}:{EVAL_ROWS}]"
    assert meta.holdout["rows"] == EVAL_ROWS - HELD
    assert set(meta.holdout["trials"]) == {t.trial_id for t in trials}  # top_k = 2
    # selection is unchanged: the best trial is still the best on the selection rows
    assert meta.best_trial_id == best_trial(trials, meta.metric, meta.mode).trial_id
    checkpoints = scan_checkpoints(store.ray_dir)
    for trial in trials:
        ck = best_checkpoint(checkpoints, trial.trial_id, meta.metric, meta.mode)
        again = evaluate_model(ck.path, held, tokenizer=tok, metrics=["accuracy"])
        assert _close(trial.holdout["metrics"]["accuracy"], again["accuracy"])
        assert _close(trial.holdout["metrics"]["loss"], again["loss"])
        tagged = [r for r in trial.reports if "holdout_accuracy" in r]
        assert [r["step"] for r in tagged] == [ck.global_step]
    best = next(t for t in trials if t.trial_id == meta.best_trial_id)
    assert meta.best_holdout == best.holdout["metrics"]["accuracy"]
    assert holdout_value(load_study(study)) == meta.best_holdout


def test_export_loads_and_reproduces_the_recorded_metric(study, rows, tmp_path,
                                                         monkeypatch) -> None:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from hftune.cli.main import main

    selection = rows[0]
    out = tmp_path / "model"
    monkeypatch.setattr(sys, "argv", ["hftune", "export", str(study), "-o", str(out)])
    try:
        main()
    except SystemExit as exc:
        assert exc.code in (0, None)
    meta = StudyStore(study).read_study()
    assert (out / "model.safetensors").is_file()
    assert not list(out.glob("*.bin"))
    model = AutoModelForSequenceClassification.from_pretrained(out)
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert model.config.id2label == dict(enumerate(meta.label_names))
    again = evaluate_model(model, selection, tokenizer=tokenizer, metrics=["accuracy"])
    provenance = json.loads((out / "hftune_export.json").read_text())
    assert provenance["trial_id"] == meta.best_trial_id
    assert _close(again["accuracy"], meta.best_value)
    assert _close(again["loss"], provenance["record"]["loss"])
    card = (out / "README.md").read_text()
    for text in (meta.best_trial_id, "accuracy", "learning_rate", "rte", meta.name,
                 "How it was selected", f"{meta.best_holdout:.4f}"):
        assert text in card


def test_evaluate_cli_rewrites_the_same_holdout(study, monkeypatch, capsys) -> None:
    from hftune.cli.main import main

    before = StudyStore(study).read_study()
    monkeypatch.setattr(sys, "argv", ["hftune", "evaluate", str(study), "--split", "holdout",
                                      "--top-k", "1", "--json"])
    try:
        main()
    except SystemExit as exc:
        assert exc.code in (0, None)
    data = json.loads(capsys.readouterr().out)
    assert data["best_trial_id"] == before.best_trial_id
    assert _close(data["best_holdout"], before.best_holdout)
    assert list(data["trials"]) == [before.best_trial_id]


def test_rerun_records_mean_and_std(study) -> None:
    from hftune.study.rerun import rerun_study

    summary = rerun_study(study, top=1, seeds=2)
    store = StudyStore(study)
    meta = store.read_study()
    [row] = summary["configs"]
    assert row["trial_id"] == meta.best_trial_id and row["seeds"] == [43, 44]
    runs = StudyStore(study / "reruns").read_trials()
    assert len(runs) == 2 and {r.state for r in runs} == {"finished"}
    values = sorted(r.score(meta.metric, meta.mode) for r in runs)
    assert sorted(row["values"]) == values and row["n"] == 2
    assert _close(row["mean"], statistics.fmean(values))
    assert _close(row["std"], statistics.stdev(values))
    assert meta.reruns["configs"][0]["mean"] == row["mean"]
    assert meta.reruns["configs"][0]["std"] == row["std"]
    assert json.loads((study / "reruns.json").read_text())["configs"][0]["n"] == 2
    assert len((study / "reruns.csv").read_text().strip().splitlines()) == 3
    # the reruns trained the selected config, not a new search
    for run in runs:
        assert run.reports[-1]["epoch"] == 2.0 and run.reports[-1]["trained_all"]
