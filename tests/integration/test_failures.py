"""A trial that raises is recorded (traceback in the study folder), retried, and the study goes on;
secrets in the environment never reach the study folder.

One real ``hftune run`` subprocess (its own Ray, so its trials inherit its environment) serves
both tests: a 2-point grid where a model setting that config validation cannot judge
(``model.chunk_size_feed_forward: 1000``: the model builds, and its first forward pass raises,
as no batch is a multiple of 1000 tokens long) makes one trial raise in every attempt, with
``budget.max_failures: 1``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from test_resume import HftuneProcess, read_records, study_yaml

from hftune.study.records import TrialRecord
from hftune.testing.cli import run_cli

pytestmark = pytest.mark.integration

SECRETS = {"WANDB_API_KEY": "wandb-secret-4f1c9e2a7b", "HF_TOKEN": "hf_secretTOKEN8d3e51aa90",
           "HUGGING_FACE_HUB_TOKEN": "hf_otherSECRET77c2b1"}


@pytest.fixture(scope="module")
def failing_study(tiny_bert: Path, shared_data: Path,
                  tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("failures")
    out = root / "fails"
    cfg = study_yaml(root / "study.yaml", out, tiny_bert, shared_data / "rte",
                     search_space={"model.chunk_size_feed_forward": [0, 1000],
                                   "learning_rate": [1e-3], "num_train_epochs": [1]},
                     budget={"max_failures": 1})
    run = HftuneProcess(["run", str(cfg), "--quiet"], env=SECRETS)
    try:
        code = run.wait(timeout=240)
    finally:
        run.kill()
    return {"out": out, "code": code, "output": run.output()}


def test_raising_trial_is_recorded_retried_and_the_study_goes_on(
        failing_study: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    out = failing_study["out"]
    assert failing_study["code"] == 0, failing_study["output"][-3000:]
    assert json.loads((out / "study.json").read_text())["status"] == "finished"
    records = {r["config"]["model.chunk_size_feed_forward"]: r
               for r in read_records(out).values()}
    assert set(records) == {0, 1000}
    good, bad = records[0], records[1000]
    assert good["state"] == "finished" and good["reports"]
    assert bad["state"] == "errored" and not bad["reports"]
    # the traceback itself (Ray's error file, no terminal colours), once per attempt: the
    # first one and its one retry (max_failures: 1)
    error = bad["error"]
    assert 'trainable.py", line' in error and "in apply_chunking_to_forward" in error, error
    assert "has to be a multiple of the chunk size" in error, error
    assert error.count("Failure # ") == 2, error
    # it held a CPU until it failed: its compute counts those seconds
    assert TrialRecord.from_dict(bad).compute_s > 0
    assert "\x1b[" not in error

    code, stdout, _ = run_cli(["status", str(out), "--json"], monkeypatch, capsys)
    assert code == 0
    data = json.loads(stdout)
    assert data["counts"] == {"finished": 1, "errored": 1}
    row = next(r for r in data["trials"] if r["trial_id"] == bad["trial_id"])
    assert row["state"] == "errored" and "multiple of the chunk size" in row["error"]
    code, stdout, _ = run_cli(["status", str(out)], monkeypatch, capsys)
    assert code == 0 and "errored" in stdout


def test_secrets_in_the_environment_never_reach_the_study_folder(
        failing_study: dict[str, Any]) -> None:
    out = failing_study["out"]
    files = [p for p in out.rglob("*") if p.is_file()]
    assert len(files) > 10 and any(p.name.startswith("experiment_state-") for p in files)
    # the token of the Ray the study ran on (hftune makes the file; Ray's clients read it)
    secrets = {**SECRETS, "Ray's token": (Path.home() / ".ray" / "auth_token").read_text()}
    for path in files:
        data = path.read_bytes()
        for name, value in secrets.items():
            assert value.strip().encode() not in data, f"{name} written to {path}"
