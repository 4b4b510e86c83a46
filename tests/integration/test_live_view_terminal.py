"""The live view as a person sees it: ``hftune run`` in a pseudo-terminal, a study of two
configs run one at a time. What the terminal receives shows the header counting trials done of
planned as they end, an estimate of the time left once one has ended, and a row per trial with
its searched value, its epochs bar and its state, updating from running to finished."""

from __future__ import annotations

import contextlib
import os
import pty
import re
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import psutil
import pytest
from test_resume import study_yaml

pytestmark = pytest.mark.integration

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")


def run_in_terminal(args: list[str], timeout: float = 600) -> tuple[int, str]:
    """``python -m hftune ARGS`` with a pseudo-terminal as its stdin, stdout and stderr (160
    columns); its exit code and everything it wrote, escape sequences removed."""
    master, slave = pty.openpty()
    ray_tmp = tempfile.mkdtemp(prefix="hft", dir="/tmp")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "RAY_USAGE_STATS_ENABLED": "0",
           "TOKENIZERS_PARALLELISM": "false", "RAY_TMPDIR": ray_tmp, "COLUMNS": "160",
           "LINES": "50", "TERM": "xterm-256color"}
    for key in ("RAY_ADDRESS", "NO_COLOR", "CI"):
        env.pop(key, None)
    proc = subprocess.Popen([sys.executable, "-m", "hftune", *args], stdin=slave, stdout=slave,
                            stderr=slave, env=env, start_new_session=True)
    os.close(slave)
    chunks: list[bytes] = []

    def read() -> None:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # the child closed the terminal
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        code = proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            for child in psutil.Process(proc.pid).children(recursive=True):
                with contextlib.suppress(psutil.NoSuchProcess):
                    child.kill()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        reader.join(timeout=10)
        os.close(master)
    return code, ANSI.sub("", b"".join(chunks).decode("utf-8", errors="replace"))


def test_hftune_run_in_a_terminal_shows_the_trials_progress_and_time_left(
        tiny_bert: Path, shared_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "live"
    cfg = study_yaml(tmp_path / "study.yaml", out, tiny_bert, shared_data / "rte",
                     search_space={"learning_rate": [3e-4, 1e-3],
                                   "num_train_epochs": [2]},
                     resources={"cpus_per_trial": 1, "max_concurrent": 1})
    code, shown = run_in_terminal(["run", str(cfg)])
    assert code == 0, shown[-3000:]
    first = shown.find("trials 0 done / 2 planned")
    one = shown.find("trials 1 done / 2 planned")
    two = shown.find("trials 2 done / 2 planned")
    assert 0 <= first < one < two, shown[-3000:]
    assert "left ?" in shown[:one]  # no estimate before a trial has ended
    assert re.search(r"left ~\d+[ms]", shown[one:]), shown[one:one + 2000]
    assert "best accuracy" in shown[one:]
    rows = shown[first:]
    for value in ("0.0003", "0.001"):
        assert value in rows
    assert "1/2" in rows and "2/2" in rows
    running, finished = rows.find("running"), rows.rfind("finished")
    assert 0 <= running < finished
