"""Fixtures shared by the unit tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hftune.config.schema import TaskConfig
from hftune.data.loading import load_task_data
from hftune.data.tasks import resolve_task
from hftune.data.tokenize import tokenize_task
from hftune.testing.fixtures import build_report_fixtures, build_running_study
from hftune.training.trainable import TrialSetup


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Study folders for report tests: grid, ASHA, PBT (fixtures) and a running study."""
    base = tmp_path_factory.mktemp("studies")
    paths = build_report_fixtures(base)
    paths["running"] = build_running_study(base / "running")
    return paths


@pytest.fixture(scope="session")
def rte_trial_setup(shared_data: Path, tiny_bert: Path) -> TrialSetup:
    """One trial's setup without Ray: 64 training and 32 validation rows of RTE (48 tokens) on
    the tiny BERT, seed 3, one CPU, no checkpoints (``dataclasses.replace`` for others)."""
    from transformers import AutoTokenizer

    task = resolve_task(TaskConfig(name="rte"))
    data = load_task_data(task, shared_data / "rte")
    tok = AutoTokenizer.from_pretrained(tiny_bert)
    tokenized = tokenize_task(data, tok, 48, {"train": 64, "validation": 32})
    return TrialSetup(model_path=str(tiny_bert), tokenizer=tok, label_names=data.label_names,
                      train_dataset=tokenized.splits["train"],
                      eval_dataset=tokenized.splits["validation"], metrics=("accuracy",),
                      training={}, seed=3, cpus_per_trial=1, gpus_per_trial=0)


@pytest.fixture
def write_study(tmp_path: Path, tiny_bert: Path, shared_data: Path):
    """Write a valid study config (16 RTE rows, tiny BERT) to ``tmp_path/study.yaml``:
    ``write(text="", **top)`` replaces top-level keys (or writes ``text`` as it is) and returns
    the config's path and its ``output_dir``."""
    def write(text: str = "", **top: object) -> tuple[Path, Path]:
        base = {"name": "study", "output_dir": str(tmp_path / "study-out"),
                "model": str(tiny_bert),
                "task": {"name": "rte", "data_dir": str(shared_data / "rte"),
                         "max_train_samples": 16, "max_eval_samples": 16},
                "search_space": {"learning_rate": [1e-4]}}
        base.update(top)
        path = tmp_path / "study.yaml"
        path.write_text(text or json.dumps(base))
        return path, Path(str(base["output_dir"]))
    return write
