"""What the generative task types share (``hftune.tasks._generation``): perplexity weighted per
target token over the whole split, the generated-text metrics, the batched generation pass, the
evaluation hook that adds its metrics to the same record, and the study's default objective."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from hftune.config.schema import TaskConfig
from hftune.data.tasks import resolve_task
from hftune.errors import ConfigError, LibraryInternalsError
from hftune.study.checkpoints import evaluate_model
from hftune.study.prepare import resolve_objective
from hftune.tasks._generation import GenerationScorer, perplexity, text_scores
from hftune.testing.configs import study_config

SOURCES = ["the cat sat on the mat", "a dog", "rain falls on the plain in spain today again",
           "one two three", "green ideas sleep furiously in the night", "hello"]
TARGETS = ["cat on mat", "a dog barks loudly at the postman every single morning", "rain",
           "three", "ideas sleep", "hi there my friend"]


def _seq2seq(generation: dict | None = None):
    return resolve_task(TaskConfig(name="s", type="seq2seq", max_target_length=24),
                        generation).type


def _split(kind, tokenizer):
    frames, _ = kind.normalise({"validation": pd.DataFrame(
        {"document": SOURCES, "summary": TARGETS})}, "train", {})
    return kind.tokenize(frames["validation"], tokenizer, 32, (), training=False)


def test_perplexity_weighs_every_target_token_alike_over_the_split(tiny_t5: Path) -> None:
    """Targets of 1 to 12 tokens, two per batch: the perplexity is exp(total NLL / total
    tokens), each row's NLL measured by the model's own loss on that row alone; transformers'
    loss (the mean of batch means) gives another number."""
    import torch
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_t5)
    model = AutoModelForSeq2SeqLM.from_pretrained(tiny_t5).eval()
    kind = _seq2seq()
    split = _split(kind, tokenizer)
    out = evaluate_model(model, split, tokenizer=tokenizer, task_type=kind, batch_size=2,
                         use_cpu=True)
    total, tokens = 0.0, 0
    with torch.no_grad():
        for row in split.features:
            labels = torch.tensor([row["labels"]])
            loss = model(input_ids=torch.tensor([row["input_ids"]]), labels=labels).loss
            total += float(loss) * labels.numel()
            tokens += labels.numel()
    assert out["perplexity"] == pytest.approx(math.exp(total / tokens), rel=1e-4)
    assert out["perplexity"] != pytest.approx(math.exp(out["loss"]), rel=1e-3)


def test_perplexity_of_sums_is_the_exponential_of_the_mean_token_loss() -> None:
    assert perplexity([[2.0, 1.0], [4.0, 3.0]]) == pytest.approx(math.exp(6.0 / 4.0))
    assert perplexity([[1.0, 0.0]]) == math.inf
    assert perplexity([[1e6, 1.0]]) == math.inf


def test_text_scores_are_in_percent_and_normalise_for_exact_match() -> None:
    from rouge_score import rouge_scorer

    preds = ["The  cat sat ", "a dog", "rain"]
    refs = ["the cat sat", "a cat", "snow"]
    scores = text_scores(preds, refs, ("exact_match", "rougeL", "bleu"))
    assert list(scores) == ["exact_match", "rougeL", "bleu"]
    assert scores["exact_match"] == pytest.approx(100 / 3)
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    expected = sum(scorer.score(r, p)["rougeL"].fmeasure
                   for p, r in zip(preds, refs, strict=True)) / 3
    assert scores["rougeL"] == pytest.approx(100 * expected)
    long = ["the cat sat on the mat today", "a dog barked at the postman again"]
    assert text_scores(long, long, ("bleu",))["bleu"] == pytest.approx(100.0)
    assert text_scores(long[::-1], long, ("bleu",))["bleu"] < 10.0
    with pytest.raises(ValueError, match="predictions"):
        text_scores(preds[:2], refs, ("rouge1",))


@pytest.mark.parametrize("model_fixture", ["tiny_t5", "tiny_llama"])
def test_batched_generation_gives_what_each_prompt_alone_gives(
        model_fixture: str, request: pytest.FixtureRequest) -> None:
    """Prompts of different lengths batched (left-padded for the decoder-only model) generate
    the text each generates alone; ``max_samples`` generates for the first rows only."""
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

    folder = request.getfixturevalue(model_fixture)
    auto = AutoModelForSeq2SeqLM if model_fixture == "tiny_t5" else AutoModelForCausalLM
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = auto.from_pretrained(folder)
    prompts = tokenizer(SOURCES, add_special_tokens=False)["input_ids"]
    settings = {"max_new_tokens": 6, "num_beams": 1, "max_samples": None}
    scorer = GenerationScorer(prompts, TARGETS, tokenizer, settings, ("rouge1",), None)
    together = scorer.generate(model, batch_size=4)
    alone = scorer.generate(model, batch_size=1)
    assert together == alone and len(together) == len(SOURCES)
    assert any(together)  # a random model still says something
    capped = GenerationScorer(prompts, TARGETS, tokenizer, {**settings, "max_samples": 2},
                              ("rouge1",), None)
    assert capped.generate(model, batch_size=4) == together[:2]
    assert capped.references == TARGETS[:2]


def test_each_evaluation_record_holds_the_generated_text_metrics(tiny_t5: Path) -> None:
    """Through the Trainer's evaluation (the hook on ``evaluation_loop``): the generation
    metrics, the loss and the perplexity come back from one evaluation."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_t5)
    kind = _seq2seq({"max_new_tokens": 4, "metrics": ["rougeL", "exact_match"]})
    assert kind.metrics == ("rougeL", "exact_match", "loss", "perplexity")
    out = evaluate_model(str(tiny_t5), _split(kind, tokenizer), tokenizer=tokenizer,
                         task_type=kind, use_cpu=True)
    assert set(out) == {"rougeL", "exact_match", "loss", "perplexity"}
    assert all(math.isfinite(v) for v in out.values())
    without = evaluate_model(str(tiny_t5), _split(_seq2seq(), tokenizer), tokenizer=tokenizer,
                             task_type=_seq2seq(), use_cpu=True)
    assert set(without) == {"loss", "perplexity"} and without["loss"] == out["loss"]


def test_the_generation_hook_fails_loudly_without_the_evaluation_loop() -> None:
    from hftune._compat.transformers import scored_evaluations_trainer

    with pytest.raises(LibraryInternalsError, match="evaluation_loop"):
        scored_evaluations_trainer(type("NoLoop", (), {}))


@pytest.mark.parametrize(("task", "generation", "metric", "expected"), [
    ({"type": "seq2seq"}, None, None, ("loss", "min")),
    ({"type": "seq2seq"}, {}, None, ("rouge1", "max")),
    ({"type": "seq2seq"}, {"metrics": ["bleu"]}, None, ("bleu", "max")),
    ({"type": "causal_lm", "text_field": "text"}, None, "perplexity", ("perplexity", "min")),
    ({"type": "causal_lm", "prompt_template": "{q}", "response_field": "a"}, {}, None,
     ("exact_match", "max")),
])
def test_the_default_objective_is_the_first_generation_metric_else_the_loss(
        task: dict, generation: dict | None, metric: str | None,
        expected: tuple[str, str]) -> None:
    extra = {"evaluation": {"generation": generation}} if generation is not None else {}
    cfg = study_config(task={"name": "g", **task}, strategy={"name": "grid", "metric": metric},
                       **extra)
    from hftune.study.prepare import study_task

    assert resolve_objective(cfg, study_task(cfg)) == expected


def test_generation_is_refused_for_a_type_that_does_not_generate() -> None:
    with pytest.raises(ConfigError, match="evaluation.generation: task type "
                                          "'sequence_classification'"):
        resolve_task(TaskConfig(name="rte"), {"max_new_tokens": 8})


def test_an_unknown_generation_metric_is_refused_naming_it() -> None:
    with pytest.raises(Exception, match="meteor"):
        study_config(task={"name": "g", "type": "seq2seq"},
                     evaluation={"generation": {"metrics": ["meteor"]}})


def test_a_decoder_only_models_perplexity_shifts_its_labels(tiny_llama: Path) -> None:
    """One row: the perplexity is exp of the model's own (shifted) loss on it."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama).eval()
    kind = resolve_task(TaskConfig(name="c", type="causal_lm", prompt_template="{q}",
                                   response_field="a")).type
    frames, _ = kind.normalise({"v": pd.DataFrame({"q": ["one two three"],
                                                   "a": ["four five six seven"]})}, "t", {})
    split = kind.tokenize(frames["v"], tokenizer, 32, (), training=False)
    out = evaluate_model(model, split, tokenizer=tokenizer, task_type=kind, use_cpu=True)
    assert out["perplexity"] == pytest.approx(math.exp(out["loss"]), rel=1e-4)


def test_a_trial_reports_the_generated_text_metrics_at_every_evaluation(
        tiny_t5: Path, shared_data: Path, tmp_path: Path) -> None:
    from hftune.study.prepare import prepare_study
    from hftune.study.runner import trial_setup
    from hftune.training.trainable import run_trial

    cfg = study_config(
        model=str(tiny_t5), max_length=48,
        task={"name": "summ", "type": "seq2seq", "data_dir": str(shared_data / "summ"),
              "max_target_length": 16, "max_train_samples": 16, "max_eval_samples": 6},
        evaluation={"generation": {"max_new_tokens": 4, "metrics": ["rougeL"]}},
        training={"num_train_epochs": 2, "per_device_train_batch_size": 8})
    reports: list[dict] = []
    run_trial({"learning_rate": 1e-3}, trial_setup(prepare_study(cfg)),
              lambda record, folder: reports.append(record), str(tmp_path))
    assert [r["epoch"] for r in reports] == [1.0, 2.0]
    for r in reports:
        assert {"rougeL", "loss", "perplexity"} <= set(r) and math.isfinite(r["rougeL"])


def test_a_generation_metric_whose_package_is_missing_is_refused_before_any_trial(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "sacrebleu" else real(name, *a))
    _seq2seq({"metrics": ["rougeL"]}).check_settings(64)
    with pytest.raises(ConfigError, match="bleu needs the package sacrebleu"):
        _seq2seq({"metrics": ["rougeL", "bleu"]}).check_settings(64)
