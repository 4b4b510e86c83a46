"""One trial without Ray: the report callback's records, stopping, threads, seeded heads."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from hftune.config.schema import TaskConfig
from hftune.data.loading import load_task_data
from hftune.data.tasks import resolve_task
from hftune.data.tokenize import tokenize_task
from hftune.training.callback import StopTrial
from hftune.training.model import build_model
from hftune.training.trainable import TrialSetup, run_trial


@pytest.fixture(scope="module")
def setup(shared_data: Path, tiny_bert: Path) -> TrialSetup:
    from transformers import AutoTokenizer

    task = resolve_task(TaskConfig(name="rte"))
    data = load_task_data(task, shared_data / "rte")
    tok = AutoTokenizer.from_pretrained(tiny_bert)
    tokenized = tokenize_task(data, tok, 48, {"train": 64, "validation": 32})
    return TrialSetup(model_path=str(tiny_bert), tokenizer=tok, label_names=data.label_names,
                      train_dataset=tokenized.splits["train"],
                      eval_dataset=tokenized.splits["validation"], metrics=("accuracy",),
                      training={}, seed=3, cpus_per_trial=1, gpus_per_trial=0)


def test_reports_every_epoch(setup: TrialSetup, tmp_path: Path) -> None:
    events: list[dict] = []
    config = {"learning_rate": 1e-3, "weight_decay": 0.05, "num_train_epochs": 2,
              "per_device_train_batch_size": 16}
    run_trial(config, setup, events.append, str(tmp_path))
    assert [e["epoch"] for e in events] == [1.0, 2.0]
    assert [e["step"] for e in events] == [4, 8]
    assert [e["trained_all"] for e in events] == [False, True]
    assert all(0.0 <= e["accuracy"] <= 1.0 and e["loss"] > 0 for e in events)
    assert events[0]["weight_decay"] == 0.05
    assert 0 < events[0]["learning_rate"] < 1e-3  # linear decay, read from the optimizer
    assert events[0]["torch_threads"] == 1 and torch.get_num_threads() == 1
    assert events[1]["elapsed_s"] > events[0]["elapsed_s"] > 0


def test_stop_request_ends_training_at_once(setup: TrialSetup, tmp_path: Path) -> None:
    events: list[dict] = []

    def report(record: dict) -> None:
        events.append(record)
        raise StopTrial

    run_trial({"num_train_epochs": 3, "per_device_train_batch_size": 16}, setup, report,
              str(tmp_path))
    assert len(events) == 1 and events[0]["epoch"] == 1.0


def test_model_config_overrides_and_seeded_head(setup: TrialSetup) -> None:
    a = build_model(setup.model_path, setup.label_names, {"hidden_dropout_prob": 0.3}, seed=1)
    b = build_model(setup.model_path, setup.label_names, {}, seed=1)
    c = build_model(setup.model_path, setup.label_names, {}, seed=2)
    assert a.config.hidden_dropout_prob == 0.3 and a.config.num_labels == 2
    assert a.config.id2label == {0: "entailment", 1: "not_entailment"}
    head = [k for k in a.state_dict() if k.startswith("classifier")][0]
    assert torch.equal(a.state_dict()[head], b.state_dict()[head])
    assert not torch.equal(b.state_dict()[head], c.state_dict()[head])
    body = "bert.embeddings.word_embeddings.weight"
    assert torch.equal(b.state_dict()[body], c.state_dict()[body])  # pretrained, not re-drawn
