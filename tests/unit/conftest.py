"""Fixtures shared by the unit tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hftune.config.schema import TaskConfig
from hftune.data.loading import load_task_data
from hftune.data.tasks import resolve_task
from hftune.study.records import StudyRecord, TrialRecord
from hftune.study.store import StudyStore
from hftune.testing.fixtures import build_report_fixtures, build_running_study, tokenize_limited
from hftune.testing.records import checkpoint_meta
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
    tokenized = tokenize_limited(task, data, tok, 48, {"train": 64, "validation": 32})
    return TrialSetup(model_path=str(tiny_bert), tokenizer=tok, label_names=data.label_names,
                      train_dataset=tokenized.splits["train"].features,
                      eval_dataset=tokenized.splits["validation"].features, metrics=("accuracy",),
                      training={}, seed=3, cpus_per_trial=1, gpus_per_trial=0)


@pytest.fixture(scope="session")
def checkpointing_setup(rte_trial_setup: TrialSetup) -> TrialSetup:
    """:func:`rte_trial_setup` with a full checkpoint at every evaluation (scored on
    accuracy): what a PBT donor or an exported trial needs."""
    import dataclasses

    return dataclasses.replace(rte_trial_setup, checkpoints="every", metric="accuracy")


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


@pytest.fixture
def offline_tracking(monkeypatch: pytest.MonkeyPatch) -> None:
    """W&B offline, and no MLflow store named by the environment: tracking tests touch no
    server and write only into their own folders."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


@pytest.fixture
def study_dir(tmp_path: Path, tiny_bert: Path) -> Path:
    """A finished two-trial study (records written by hand) whose best trial b kept a
    tiny-BERT checkpoint at its scored evaluation (epoch 1, 0.75): for what export writes and
    refuses, not for the numbers (see test_export_rescores_the_recorded_value)."""
    from transformers import AutoModelForSequenceClassification

    root = tmp_path / "study"
    store = StudyStore(root)
    study = StudyRecord(name="toy", status="finished", strategy="grid", metric="accuracy",
                        mode="max", label_names=["yes", "no"], model=str(tiny_bert),
                        best_trial_id="b", best_value=0.75, best_holdout=0.625,
                        holdout={"rows": 8, "source": "validation[8:16]"},
                        data_source="/data/toy")
    store.write_study(study)
    store.write_config({"name": "toy", "task": {"name": "rte"}, "max_length": 32, "seed": 7,
                        "training": {"weight_decay": 0.01}})
    held = {"metrics": {"accuracy": 0.625}, "epoch": 1.0, "step": 10, "rows": 8,
            "source": "validation[8:16]", "checkpoint": "checkpoint_000000"}
    for trial_id, values in (("a", [0.5, 0.6]), ("b", [0.75, 0.7])):
        store.write_trial(TrialRecord(trial_id=trial_id, config={"learning_rate": 1e-3},
                                      state="finished", holdout=held if trial_id == "b" else None,
                                      reports=[{"epoch": float(i + 1), "step": 10 * (i + 1),
                                                "accuracy": v} for i, v in enumerate(values)]))
    ck = checkpoint_meta(root / "ray/t_b/checkpoint_000000", "b", 1.0, 0.75)
    model = AutoModelForSequenceClassification.from_pretrained(str(tiny_bert), num_labels=2)
    model.save_pretrained(str(ck))  # config with the default LABEL_0/LABEL_1 names
    return root


@pytest.fixture
def matplotlib_installed() -> None:
    """PNG plots need matplotlib (the ``report-png`` extra, which CI installs): without it the
    test fails with the install hint instead of skipping."""
    from hftune.report.png import have_matplotlib

    if not have_matplotlib():
        pytest.fail("matplotlib is not installed: pip install 'hftune[report-png]'")
