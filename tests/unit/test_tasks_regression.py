"""``task.type: regression``: numbers as labels, a one-output head, correlation metrics."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hftune.config.schema import TaskConfig
from hftune.data.loading import load_task_data
from hftune.data.tasks import resolve_task
from hftune.data.tokenize import tokenize_task
from hftune.errors import DataError
from hftune.tasks.regression import regression_scores


def _write(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_stsb_is_a_regression_task_with_its_scores_as_labels(shared_data: Path) -> None:
    task = resolve_task(TaskConfig(name="stsb"))
    assert task.type.name == "regression" and task.primary_metric == "pearson"
    data = load_task_data(task, shared_data / "stsb")
    raw = [json.loads(line) for line in (shared_data / "stsb" / "train.jsonl").open()]
    # exactly the file's numbers (pandas' fast JSON float parser rounds some: 0.6 → 0.6000…01)
    assert data.splits["train"]["label"].tolist() == [r["label"] for r in raw]
    assert data.splits["train"]["text_b"].tolist() == [r["sentence2"] for r in raw]
    assert data.label_names == ()


def test_numeric_text_labels_are_numbers_and_others_are_refused(tmp_path: Path) -> None:
    cfg = TaskConfig(name="scores", type="regression", text_fields=["t"], label_field="y")
    _write(tmp_path / "ok" / "train.jsonl", [{"t": "a", "y": "1.5"}, {"t": "b", "y": 2}])
    _write(tmp_path / "ok" / "validation.jsonl", [{"t": "c", "y": 0.25}])
    data = load_task_data(resolve_task(cfg), tmp_path / "ok")
    assert data.splits["train"]["label"].tolist() == [1.5, 2.0]
    for bad in ("high", float("nan"), True, None):
        _write(tmp_path / "bad" / "train.jsonl", [{"t": "a", "y": 1.0}, {"t": "b", "y": bad}])
        _write(tmp_path / "bad" / "validation.jsonl", [{"t": "c", "y": 0.0}])
        with pytest.raises(DataError, match="train.jsonl"):
            load_task_data(resolve_task(cfg), tmp_path / "bad")


def test_tokenized_labels_are_floats_and_the_head_has_one_output(shared_data: Path,
                                                                  tiny_bert: Path) -> None:
    from transformers import AutoTokenizer

    from hftune.training.model import build_model

    task = resolve_task(TaskConfig(name="stsb"))
    data = load_task_data(task, shared_data / "stsb")
    small = {k: v.head(8) for k, v in data.splits.items()}
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_bert))
    tokenized = tokenize_task(task.type, small, tokenizer, 32, (), "train")
    labels = tokenized.splits["train"].features["labels"]
    assert labels == pytest.approx(small["train"]["label"].tolist())
    model = build_model(str(tiny_bert), (), {}, seed=1, task_type=task.type)
    assert model.config.num_labels == 1 and model.config.problem_type == "regression"
    assert model.classifier.out_features == 1


def test_regression_scores_match_their_definitions() -> None:
    from scipy.stats import pearsonr, spearmanr

    rng = np.random.default_rng(0)
    targets = rng.uniform(0, 5, 50)
    preds = targets + rng.normal(0, 1, 50)
    scores = regression_scores(preds.reshape(-1, 1), targets, ("pearson", "spearman", "mse"))
    assert scores["pearson"] == pytest.approx(pearsonr(preds, targets)[0])
    assert scores["spearman"] == pytest.approx(spearmanr(preds, targets)[0])
    assert scores["mse"] == pytest.approx(float(np.mean((preds - targets) ** 2)))
    # a model that predicts one value for every row has no correlation, not NaN
    constant = regression_scores(np.full(50, 2.5), targets, ("pearson", "spearman"))
    assert constant == {"pearson": 0.0, "spearman": 0.0}
    # the ranking direction: a prediction that anti-correlates scores below one that correlates
    assert regression_scores(-preds, targets, ("pearson",))["pearson"] < 0


@pytest.mark.parametrize("metric, mode", [(None, "max"), ("pearson", "max"), ("mse", "min"),
                                          ("loss", "min")])
def test_a_study_minimises_the_squared_error_and_maximises_correlation(metric, mode) -> None:
    from hftune.study.prepare import study_objective
    from hftune.testing.configs import study_config

    strategy = {"name": "grid", **({"metric": metric} if metric else {})}
    cfg = study_config(task="stsb", strategy=strategy)
    assert study_objective(cfg) == (metric or "pearson", mode)
