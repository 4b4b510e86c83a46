"""LoRA studies through real Ray Tune: the adapter's settings searched like any hyperparameter,
``hftune export`` writing the adapter (``PeftModel.from_pretrained(base, OUT)``) and ``--merge``
a whole model (the plain ``AutoModelFor…`` class), both scoring on the validation rows what the
study recorded; and PBT exploiting adapter checkpoints, with the explored ``lora_alpha`` and
``lora_dropout`` in force after the restore and the rank never explored."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from hftune.study.checkpoints import evaluate_model
from hftune.study.loading import validate_study
from hftune.study.prepare import prepare_study
from hftune.study.runner import run_study
from hftune.study.store import StudyStore
from hftune.testing.study_checks import export_with_cli

pytestmark = pytest.mark.integration

TASKS = {
    "sequence_classification": ("tiny_bert", lambda data: {
        "name": "sst2", "data_dir": str(data / "sst2"), "max_train_samples": 128,
        "max_eval_samples": 48}, {"target_modules": ["query", "value"]}, 48, "accuracy",
        "AutoModelForSequenceClassification"),
    "causal_lm": ("tiny_llama", lambda data: {
        "name": "gsm8k", "type": "causal_lm", "data_dir": str(data / "gsm8k"),
        "prompt_template": "Q: {instruction}\nA: ", "response_field": "response",
        "max_train_samples": 32, "max_eval_samples": 16}, {}, 320, "loss",
        "AutoModelForCausalLM"),
}


@pytest.mark.parametrize("kind", list(TASKS))
def test_a_lora_study_exports_an_adapter_and_a_merged_model_that_score_what_was_recorded(
        kind: str, ray_session, shared_data: Path, tmp_path: Path,
        request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    import transformers
    from peft import PeftModel

    fixture, task, peft, max_length, metric, auto_name = TASKS[kind]
    base = request.getfixturevalue(fixture)
    out = tmp_path / "study"
    cfg = validate_study({
        "name": f"lora-{kind}", "output_dir": str(out), "model": str(base),
        "task": task(shared_data), "max_length": max_length, "peft": {"r": 4, **peft},
        "search_space": {"learning_rate": [3e-3], "peft.r": [2, 4]},
        "training": {"num_train_epochs": 2, "per_device_train_batch_size": 16},
        "strategy": {"name": "grid"}, "evaluation": {"holdout": 0.5},
    })
    result = run_study(cfg)
    assert [t.state for t in result.trials] == ["finished", "finished"]
    assert sorted(t.reports[0]["adapter"]["r"] for t in result.trials) == [2.0, 4.0]
    study = StudyStore(out).read_study()
    assert study.best_holdout is not None and math.isfinite(study.best_holdout)
    prepared = prepare_study(cfg)
    rows = prepared.tokenized.splits[prepared.task.validation_split]
    auto = getattr(transformers, auto_name)
    labels = {"num_labels": len(study.label_names)} if study.label_names else {}

    adapter_dir = tmp_path / "adapter"
    export_with_cli(out, adapter_dir, monkeypatch)
    assert (adapter_dir / "adapter_model.safetensors").is_file()
    assert not (adapter_dir / "model.safetensors").is_file()
    model = PeftModel.from_pretrained(auto.from_pretrained(base, **labels), adapter_dir)
    again = evaluate_model(model, rows, tokenizer=prepared.tokenizer,
                           task_type=prepared.task.type, label_names=study.label_names or ())
    assert math.isclose(again[metric], study.best_value, rel_tol=1e-5, abs_tol=1e-6)
    assert "PeftModel.from_pretrained" in (adapter_dir / "README.md").read_text()
    import peft

    auto_peft = getattr(peft, auto_name.replace("AutoModel", "AutoPeftModel"))
    by_auto = evaluate_model(auto_peft.from_pretrained(adapter_dir, **labels), rows,
                             tokenizer=prepared.tokenizer, task_type=prepared.task.type,
                             label_names=study.label_names or ())
    assert math.isclose(by_auto[metric], study.best_value, rel_tol=1e-5, abs_tol=1e-6)

    merged_dir = tmp_path / "merged"
    export_with_cli(out, merged_dir, monkeypatch, "--merge")
    assert not (merged_dir / "adapter_config.json").exists()
    merged = evaluate_model(auto.from_pretrained(merged_dir), rows,
                            tokenizer=prepared.tokenizer, task_type=prepared.task.type,
                            label_names=study.label_names or ())
    assert math.isclose(merged[metric], study.best_value, rel_tol=1e-4, abs_tol=1e-5)


def test_pbt_exploits_adapter_checkpoints_and_its_explored_alpha_and_dropout_take_effect(
        ray_session, tiny_bert: Path, shared_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "pbt"
    cfg = validate_study({
        "name": "lora-pbt", "output_dir": str(out), "model": str(tiny_bert), "seed": 5,
        "task": {"name": "sst2", "data_dir": str(shared_data / "sst2"),
                 "max_train_samples": 128, "max_eval_samples": 48},
        "max_length": 48, "peft": {"target_modules": ["query", "value"]},
        "search_space": {"learning_rate": {"loguniform": [3e-4, 3e-3]},
                         "peft.r": [2, 4],
                         "peft.lora_alpha": {"uniform": [4.0, 32.0]},
                         "peft.lora_dropout": [0.0, 0.1, 0.2],
                         "num_train_epochs": [3]},
        "strategy": {"name": "pbt", "population": 4, "perturbation_interval": 1,
                     "quantile_fraction": 0.25, "resample_probability": 0.5},
        "checkpoints": {"keep": 1},
    })
    result = run_study(cfg)
    assert [t.state for t in result.trials] == ["finished"] * 4, [t.error for t in result.trials]
    lineage = StudyStore(out).read_lineage()
    assert lineage, "no exploit happened"
    by_id = {t.trial_id: t for t in result.trials}
    trained_after = 0
    for event in lineage:
        new = event["new_config"]
        # the rank is the donor's (never explored): its checkpoint loaded into this model
        assert new["peft.r"] in (2, 4)
        assert 4.0 <= new["peft.lora_alpha"] <= 32.0 and new["peft.lora_dropout"] in (0, .1, .2)
        after = [r for r in by_id[event["to_trial"]].reports if r["time"] == event["time"]]
        assert after and after[0]["restored_from"] == event["from_trial"]
        if after[0].get("trained") is False:
            continue
        trained_after += 1
        assert after[0]["adapter"] == pytest.approx(
            {"r": float(new["peft.r"]), "lora_alpha": new["peft.lora_alpha"],
             "lora_dropout": new["peft.lora_dropout"]}), (event, after[0]["adapter"])
        assert after[0]["applied"]["base_learning_rate"] == pytest.approx(new["learning_rate"])
    assert trained_after >= 1
