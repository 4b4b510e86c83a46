"""``hftune run --address``: a real 2-node Ray cluster on loopback runs the study's trials.

The cluster is two ``ray start`` nodes (1 CPU each) with their own Ray temp dir, started as the
README's recipe says: a token generated first, ``RAY_AUTH_MODE=token`` and the token's file
(``RAY_AUTH_TOKEN_PATH``) on every node and on the driver. The study runs through the real
command in a subprocess. At the end every process whose command line names that temp dir is
killed (by pid): ``ray stop`` would stop the test session's Ray too.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from test_resume import HftuneProcess, read_records, study_yaml

pytestmark = pytest.mark.integration

RAY = str(Path(sys.executable).with_name("ray"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _kill_marked(marker: str) -> None:
    procs = [p for p in psutil.process_iter(["cmdline"])
             if any(marker in part for part in (p.info["cmdline"] or []))]
    for p in procs:
        try:
            p.kill()
        except psutil.Error:
            continue
    psutil.wait_procs(procs, timeout=15)


@pytest.fixture
def cluster_token(tmp_path: Path) -> dict[str, str]:
    """The environment of the README's recipe: a fresh private token file, token mode."""
    token = tmp_path / "ray-token"
    token.write_text(secrets.token_hex(32))
    token.chmod(0o600)
    return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)}


@pytest.fixture
def two_node_cluster(cluster_token: dict[str, str]) -> Iterator[str]:
    """``127.0.0.1:PORT`` of a head node plus one worker node, 1 CPU each, token mode."""
    tmp = tempfile.mkdtemp(prefix="hftc", dir="/tmp")
    env = {**os.environ, "RAY_TMPDIR": tmp, "RAY_USAGE_STATS_ENABLED": "0", **cluster_token}
    env.pop("RAY_ADDRESS", None)
    env.pop("RAY_AUTH_TOKEN", None)
    port = _free_port()
    common = ["--num-cpus", "1", "--node-ip-address", "127.0.0.1", "--disable-usage-stats",
              "--dashboard-agent-listen-port", "0"]
    try:
        for args in (["--head", "--port", str(port), "--include-dashboard", "false"],
                     ["--address", f"127.0.0.1:{port}"]):
            done = subprocess.run([RAY, "start", *args, *common], env=env, capture_output=True,
                                  text=True, timeout=120)
            assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        yield f"127.0.0.1:{port}"
    finally:
        _kill_marked(tmp)
    assert not [p for p in psutil.process_iter(["cmdline"])
                if any(tmp in part for part in (p.info["cmdline"] or []))]


def test_study_on_a_two_node_cluster_uses_both_nodes(two_node_cluster: str, tiny_bert: Path,
                                                     shared_data: Path, tmp_path: Path,
                                                     cluster_token: dict[str, str]) -> None:
    from hftune._compat.ray import gcs_auth

    assert gcs_auth(two_node_cluster) == "token"  # the recipe's cluster asks for the token
    out = tmp_path / "on-cluster"
    cfg = study_yaml(tmp_path / "study.yaml", out, tiny_bert, shared_data / "rte",
                     search_space={"learning_rate": [3e-4, 1e-3, 3e-3, 1e-2],
                                   "num_train_epochs": [1]})
    # the driver has the token through RAY_AUTH_TOKEN_PATH (hftune turns token mode on)
    run = HftuneProcess(["run", str(cfg), "--quiet", "--address", two_node_cluster],
                        env={"RAY_AUTH_TOKEN_PATH": cluster_token["RAY_AUTH_TOKEN_PATH"]})
    try:
        code = run.wait(timeout=240)
    finally:
        run.kill()
    assert code == 0, run.output()[-3000:]
    assert "warning:" not in run.output()
    study = json.loads((out / "study.json").read_text())
    assert study["status"] == "finished"
    records = read_records(out)
    assert len(records) == 4
    assert {r["state"] for r in records.values()} == {"finished"}
    nodes = {r["node_id"] for r in records.values()}
    assert len(nodes) == 2, nodes  # the Ray node ids: both nodes ran trials
    assert all(isinstance(n, str) and len(n) == 56 for n in nodes), nodes
    # the recorded node is the one each trial reported from
    for rec in records.values():
        assert rec["reports"][0]["ray_node_id"] == rec["node_id"]
