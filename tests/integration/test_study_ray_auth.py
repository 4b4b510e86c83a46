"""A running study's Ray refuses a client without the token, and the study finishes normally.

``hftune run`` runs as a subprocess with its own Ray (token mode, as hftune always starts it);
while its trials train, a second process joins that Ray with ``ray.init(address=...)`` from an
empty home folder and no token in its environment: Ray refuses it.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from test_resume import HftuneProcess, read_records, study_yaml, wait_for

from hftune.study.ray_auth import token_file

pytestmark = pytest.mark.integration


def gcs_address(run: HftuneProcess) -> str | None:
    """``127.0.0.1:PORT`` of the GCS server of ``run``'s Ray (found by its temp dir)."""
    for proc in psutil.process_iter(["name", "cmdline"]):
        if proc.info["name"] == "gcs_server" and any(
                run.ray_tmp in part for part in (proc.info["cmdline"] or [])):
            ports = [c.laddr.port for c in proc.net_connections(kind="tcp")
                     if c.status == psutil.CONN_LISTEN]
            return f"127.0.0.1:{min(ports)}" if ports else None
    return None


def test_a_client_without_the_token_is_refused_while_a_study_runs(tiny_bert, shared_data,
                                                                  tmp_path) -> None:
    out = tmp_path / "guarded"
    # long enough (two trials of 30 epochs) for Ray's client to give up while it runs (~20 s)
    cfg = study_yaml(tmp_path / "study.yaml", out, tiny_bert, shared_data / "rte",
                     search_space={"learning_rate": [3e-4, 1e-3], "num_train_epochs": [30]},
                     task={"name": "rte", "data_dir": str(shared_data / "rte"),
                           "max_train_samples": 400, "max_eval_samples": 32})
    run = HftuneProcess(["run", str(cfg), "--quiet"])
    try:
        wait_for(lambda: any(r["reports"] for r in read_records(out).values()),
                 "a first evaluation", run)
        address = wait_for(lambda: gcs_address(run), "the study's GCS", run)
        stranger_home = tmp_path / "stranger"
        stranger_home.mkdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
        env["HOME"] = str(stranger_home)
        stranger = subprocess.run(
            [sys.executable, "-c", f"import ray; ray.init(address='{address}'); print('IN')"],
            env=env, capture_output=True, text=True, timeout=120)
        running = run.proc.poll() is None  # refused by the study's Ray, not by its absence
        code = run.wait(timeout=300)
    finally:
        run.kill()
    assert running and stranger.returncode != 0 and "IN" not in stranger.stdout
    assert "InvalidAuthToken" in stranger.stderr, stranger.stderr[-2000:]
    assert code == 0, run.output()[-3000:]
    assert json.loads((out / "study.json").read_text())["status"] == "finished"
    assert {r["state"] for r in read_records(out).values()} == {"finished"}
    assert stat.S_IMODE(Path(token_file()).stat().st_mode) == 0o600
    # the study printed hftune's lines only; the libraries' went to its log file
    lines = [line for line in run.output().splitlines() if line.strip()]
    assert lines and all(line.startswith(("study '", "best validation", "study folder:", "next: "))
                         for line in lines), lines
    assert (out / "libraries.log").is_file()
