"""The generative task types end to end: a 2-trial grid study through real Ray Tune on a tiny
T5 (seq2seq on SciTLDR summaries, ROUGE-L of generated text) and a tiny Llama (causal_lm on
GSM8K instructions, the loss over response tokens, minimised), then ``hftune export`` of the
best trial, loaded with the type's ``AutoModelFor…`` class and scored again on the validation
rows (the recorded value comes back), then the held-out estimate, seed reruns, ``hftune
report`` and ``hftune status`` in the study's metric."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from hftune.study.loading import validate_study
from hftune.study.prepare import prepare_study
from hftune.study.runner import run_study
from hftune.testing.study_checks import check_export_rescores, check_holdout_rerun_report_status

pytestmark = pytest.mark.integration

TASKS = {
    "seq2seq": ("tiny_t5", lambda data: {
        "name": "summ", "type": "seq2seq", "data_dir": str(data / "summ"),
        "source_prefix": "summarize: ", "max_target_length": 24},
        {"generation": {"max_new_tokens": 8, "metrics": ["rougeL", "rouge1"]}},
        "rougeL", "max", "AutoModelForSeq2SeqLM"),
    "causal_lm": ("tiny_llama", lambda data: {
        "name": "gsm8k", "type": "causal_lm", "data_dir": str(data / "gsm8k"),
        "prompt_template": "### Instruction:\n{instruction}\n\n### Response:\n",
        "response_field": "response"},
        {"generation": {"max_new_tokens": 8, "max_samples": 6}}, "loss", "min",
        "AutoModelForCausalLM"),
}


@pytest.mark.parametrize("kind", list(TASKS))
def test_a_generative_study_exports_a_model_that_scores_what_was_recorded(
        kind: str, ray_session, shared_data: Path, tmp_path: Path,
        request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:


    model_fixture, make_task, evaluation, metric, mode, auto = TASKS[kind]
    out = tmp_path / "study"
    cfg = validate_study({
        "name": f"{kind}-it", "output_dir": str(out),
        "model": str(request.getfixturevalue(model_fixture)),
        "task": {**make_task(shared_data), "max_train_samples": 48, "max_eval_samples": 16},
        "max_length": 320,
        "search_space": {"learning_rate": [3e-3, 1e-3], "num_train_epochs": [1]},
        "training": {"per_device_train_batch_size": 8},
        "strategy": {"name": "grid", "metric": metric},
        "evaluation": {"holdout": 0.5, **evaluation},
    })
    result = run_study(cfg)
    assert result.study.status == "finished"
    assert [t.state for t in result.trials] == ["finished", "finished"]
    assert result.study.task_type == kind
    assert (result.study.metric, result.study.mode) == (metric, mode)
    values = [r[metric] for t in result.trials for r in t.reports]
    assert all(math.isfinite(v) for v in values)
    assert all(math.isfinite(r["perplexity"]) for t in result.trials for r in t.reports)
    generated = prepare_study(cfg).task.type.generation_metrics()
    assert all(math.isfinite(r[m]) for t in result.trials for r in t.reports
               for m in generated), generated
    assert result.study.best_value == (max(values) if mode == "max" else min(values))

    card = check_export_rescores(out, cfg, metric, auto, tmp_path / "model", monkeypatch)
    assert prepare_study(cfg).task.type.pipeline_tag in card and metric in card
    check_holdout_rerun_report_status(out, metric, monkeypatch, capsys, mode)
