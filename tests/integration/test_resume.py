"""Resume after a real ``kill -9``, Ctrl-C, and one study per folder — across processes.

``hftune run`` runs as a subprocess with its own Ray (a fresh temp dir, no ``RAY_ADDRESS``); the
processes it started are killed by process tree and by that temp dir, never by name, so the test
session's own Ray instance is left alone. The resume runs in this process, on that instance.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml

from hftune.study.records import ENDED_STATES
from hftune.study.status import study_status
from hftune.study.store import StudyStore
from hftune.testing.cli import run_cli

pytestmark = pytest.mark.integration


# -- helpers shared with the other process-level tests ----------------------------------------
def study_yaml(path: Path, out: Path, model: Path, data: Path, **extra: Any) -> Path:
    """Write a tiny RTE study config (JSON is YAML) to ``path``."""
    cfg: dict[str, Any] = {
        "name": out.name, "output_dir": str(out), "model": str(model), "seed": 7,
        "task": {"name": "rte", "data_dir": str(data), "max_train_samples": 128,
                 "max_eval_samples": 64},
        "max_length": 48,
        "search_space": {"learning_rate": [3e-4, 1e-3], "num_train_epochs": [1]},
        "resources": {"cpus_per_trial": 1},
    }
    cfg.update(extra)
    path.write_text(json.dumps(cfg))
    return path


class HftuneProcess:
    """``python -m hftune ARGS`` in its own session, with its own Ray temp dir.

    :meth:`kill` sends SIGKILL to the process group, to every descendant seen, and to any
    process whose command line names this run's Ray temp dir (Ray workers leave the group).
    """

    def __init__(self, args: list[str], env: dict[str, str] | None = None) -> None:
        self.ray_tmp = tempfile.mkdtemp(prefix="hft", dir="/tmp")  # short: socket paths
        full_env = {**os.environ, "HF_HUB_OFFLINE": "1",
                    "RAY_USAGE_STATS_ENABLED": "0", "TOKENIZERS_PARALLELISM": "false",
                    "RAY_TMPDIR": self.ray_tmp, **(env or {})}
        full_env.pop("RAY_ADDRESS", None)
        self.log = Path(self.ray_tmp) / "hftune.log"
        self._log_fh = open(self.log, "w")  # noqa: SIM115 - closed in kill()/wait()
        self.proc = subprocess.Popen([sys.executable, "-m", "hftune", *args], env=full_env,
                                     stdout=self._log_fh, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self._seen: dict[int, psutil.Process] = {}

    def remember_tree(self) -> None:
        try:
            root = psutil.Process(self.proc.pid)
            for p in [root, *root.children(recursive=True)]:
                self._seen[p.pid] = p
        except psutil.NoSuchProcess:
            pass

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self.cleanup()

    def kill(self) -> None:
        self.remember_tree()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.cleanup()

    def cleanup(self) -> None:
        """Kill whatever this run left behind (descendants, processes using its Ray dir)."""
        self._log_fh.close()
        procs = [p for p in self._seen.values() if p.pid != self.proc.pid]
        for p in psutil.process_iter(["cmdline"]):
            if any(self.ray_tmp in part for part in (p.info["cmdline"] or [])):
                procs.append(p)
        for p in procs:
            with contextlib.suppress(psutil.Error):
                p.kill()
        psutil.wait_procs(procs, timeout=15)

    def left_behind(self) -> list[int]:
        return [p.pid for p in psutil.process_iter(["cmdline"])
                if any(self.ray_tmp in part for part in (p.info["cmdline"] or []))]


def wait_for(check: Callable[[], Any], what: str, proc: HftuneProcess,
             timeout: float = 150.0) -> Any:
    """Poll ``check`` until it returns something truthy; fail with the run's output."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        proc.remember_tree()
        value = check()
        if value:
            return value
        if proc.proc.poll() is not None:
            pytest.fail(f"hftune exited ({proc.proc.returncode}) before {what}:\n"
                        f"{proc.output()[-3000:]}")
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}:\n{proc.output()[-3000:]}")


def read_records(out: Path) -> dict[str, dict[str, Any]]:
    """The trial records as plain JSON (skipping one caught mid-rename)."""
    records = {}
    for path in sorted((out / "trials").glob("*.json")):
        try:
            records[path.stem] = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
    return records




def ray_trial_cpus(out: Path) -> dict[str, float]:
    """The CPUs each trial asks for in Ray's newest snapshot of the experiment."""
    from ray.tune.experiment.trial import Trial
    from ray.tune.utils.serialization import _loads_with_cloudpickle

    newest = max((out / "ray").glob("experiment_state-*.json"))  # named by the run's start
    state = _loads_with_cloudpickle(newest.read_text())  # Ray's own snapshot, written here
    trials = [Trial.from_json_state(trial_json, stub=True) for trial_json, _ in state["trial_data"]]
    return {t.trial_id: t.placement_group_factory.required_resources["CPU"] for t in trials}


# -- the tests --------------------------------------------------------------------------------
def test_kill9_mid_study_then_resume_finishes_it(ray_session, tiny_bert, shared_data,
                                                 tmp_path, monkeypatch, capsys) -> None:
    out = tmp_path / "killed"
    # one trial at a time: the grid runs its two 5-epoch trials first, so the second of them is
    # part-way for its whole run while the first has finished
    cfg = study_yaml(tmp_path / "study.yaml", out, tiny_bert, shared_data / "rte",
                     search_space={"learning_rate": [3e-4, 1e-3], "num_train_epochs": [1, 5]},
                     resources={"cpus_per_trial": 1, "max_concurrent": 1})
    run = HftuneProcess(["run", str(cfg), "--quiet"])
    try:
        def mid_study() -> dict[str, dict[str, Any]] | None:
            recs = read_records(out)
            done = [r for r in recs.values() if r["state"] == "finished"]
            mid = [r for r in recs.values() if r["state"] == "running" and r["reports"]
                   and not r["reports"][-1].get("trained_all")]
            return recs if done and mid else None

        wait_for(mid_study, "one trial finished and another part-way", run)
        # the running study holds its folder: a second run or a resume is refused
        code, _, err = run_cli(["run", str(cfg), "-q"], monkeypatch, capsys)
        assert code == 2 and "another hftune process is running this study" in err, err
        code, _, err = run_cli(["resume", str(out), "-q"], monkeypatch, capsys)
        assert code == 2 and "another hftune process is running this study" in err, err
        time.sleep(1.0)  # let Ray's snapshot take in the latest checkpoint
        before = wait_for(mid_study, "the study still part-way", run)
    finally:
        run.kill()
    assert run.proc.returncode == -signal.SIGKILL
    assert not run.left_behind()

    code, stdout, _ = run_cli(["status", str(out), "--json"], monkeypatch, capsys)
    assert code == 0 and json.loads(stdout)["status"] == "interrupted"
    finished_before = {k: r for k, r in before.items() if r["state"] == "finished"}
    partway = {k for k, r in before.items() if r["state"] == "running" and r["reports"]}

    # resumed "on another machine": 2 CPUs per trial where the killed run had 1
    stored = yaml.safe_load((out / "study.yaml").read_text())
    stored["resources"]["cpus_per_trial"] = 2
    (out / "study.yaml").write_text(yaml.safe_dump(stored))
    # the killed run never added its seconds; the resume charges them up to its last event
    killed_start = StudyStore(out).read_study().run_started_at
    assert killed_start is not None
    last_event = max(r["time"] for rec in before.values() for r in rec["reports"])
    code, stdout, err = run_cli(["resume", str(out), "-q"], monkeypatch, capsys)
    assert code == 0, err
    assert "finished" in stdout

    after = read_records(out)
    store = StudyStore(out)
    assert store.read_study().status == "finished"
    assert store.read_study().run_started_at is None
    assert store.read_study().wall_s >= last_event - killed_start > 0
    # the restored trials ran with the resumed run's resources, as the new trials did
    assert store.read_study().resources["cpus_per_trial"] == 2
    assert store.read_study().resources_before[0]["cpus_per_trial"] == 1
    assert {ray_trial_cpus(out)[t] for t in partway} == {2.0}
    # every planned config exactly once, every trial ended
    configs = sorted((r["config"]["learning_rate"], r["config"]["num_train_epochs"])
                     for r in after.values())
    assert configs == [(3e-4, 1), (3e-4, 5), (1e-3, 1), (1e-3, 5)]
    assert all(r["state"] in ENDED_STATES for r in after.values()), after
    # finished trials were not run again: same records (a new run would have reported), and
    # Ray's snapshot holds them as ended
    from hftune._compat.ray import newest_snapshot, read_snapshot

    statuses = {t.trial_id: t.status for t in read_snapshot(newest_snapshot(out / "ray"))}
    for trial_id, rec in finished_before.items():
        assert after[trial_id] == rec
        assert statuses[trial_id] == "TERMINATED"
    # part-way trials continued from their checkpoint; each epoch is recorded once
    for trial_id in partway:
        reports = after[trial_id]["reports"]
        assert [r["epoch"] for r in reports] == [1.0, 2.0, 3.0, 4.0, 5.0]
        resumed = [r for r in reports if r.get("restored_from") == trial_id]
        assert resumed, f"{trial_id} did not continue from its checkpoint: {reports}"
        assert after[trial_id]["state"] == "finished"

    # a finished study: a new run needs --overwrite, and there is nothing to resume
    code, _, err = run_cli(["run", str(cfg), "-q"], monkeypatch, capsys)
    assert code == 2 and "--overwrite" in err and "hftune resume" in err, err
    code, _, err = run_cli(["resume", str(out), "-q"], monkeypatch, capsys)
    assert code == 2 and "nothing to resume" in err, err


def test_ctrl_c_saves_marks_interrupted_and_says_how_to_resume(tiny_bert, shared_data,
                                                               tmp_path) -> None:
    out = tmp_path / "ctrl-c"
    cfg = study_yaml(tmp_path / "study.yaml", out, tiny_bert, shared_data / "rte",
                     search_space={"learning_rate": [3e-4, 1e-3], "num_train_epochs": [6]})
    run = HftuneProcess(["run", str(cfg), "--quiet"])
    try:
        def reported() -> bool:
            return any(r["reports"] for r in read_records(out).values())

        wait_for(reported, "a first evaluation", run)
        time.sleep(1.0)
        os.kill(run.proc.pid, signal.SIGINT)
        code = run.wait(timeout=60)
    finally:
        run.kill()
    output = run.output()
    assert code == 130, output[-3000:]
    assert f"hftune resume {out}" in output
    study = json.loads((out / "study.json").read_text())
    assert study["status"] == "interrupted"
    assert f"hftune resume {out}" in study["message"]
    # the experiment was saved: Ray can restore it, with the running trials' checkpoints
    from ray import tune

    assert tune.Tuner.can_restore(str(out / "ray"))
    for trial_id, rec in read_records(out).items():
        assert rec["state"] not in ENDED_STATES
        if rec["reports"]:
            assert list((out / "ray").glob(f"*{trial_id}*/checkpoint_*")), trial_id
    assert not run.left_behind()


def test_seeds_then_pbt_killed_in_step_2_resumes_step_2(ray_session, tiny_bert, shared_data,
                                                        tmp_path, monkeypatch, capsys) -> None:
    out = tmp_path / "two-step"
    cfg = study_yaml(tmp_path / "study.yaml", out, tiny_bert, shared_data / "rte",
                     search_space={"learning_rate": {"loguniform": [3e-4, 3e-3]},
                                   "num_train_epochs": [8]},
                     strategy={"name": "seeds-then-pbt", "metric": "loss", "mode": "min",
                               "seeds": 3, "top_k": 2, "population": 2, "grace_period": 1})
    run = HftuneProcess(["run", str(cfg), "--quiet"])

    def snapshot_time() -> float:
        states = list((out / "ray-pbt").glob("experiment_state-*.json"))
        return max((p.stat().st_mtime for p in states), default=0.0)

    try:
        def saved_part_way() -> tuple[dict[str, dict[str, Any]], list[str]] | None:
            """Step-2 trials part-way whose first checkpoint Ray's last snapshot has."""
            recs = read_records(out)
            saved = snapshot_time()
            ids = [k for k, r in recs.items() if r.get("phase") == "pbt"
                   and r["state"] == "running" and r["reports"]
                   and not r["reports"][-1].get("trained_all")
                   and r["reports"][0]["time"] + 0.5 < saved]
            return (recs, ids) if ids else None

        before, saved_ids = wait_for(saved_part_way, "a saved step-2 trial part-way", run,
                                     timeout=300)
    finally:
        run.kill()
    screen_before = {k: r for k, r in before.items() if r.get("phase") == "screen"}
    assert len(screen_before) == 3
    assert all(r["state"] in ENDED_STATES for r in screen_before.values())
    assert study_status(out)["status"] == "interrupted"  # not "finished" after step 1

    code, stdout, err = run_cli(["resume", str(out), "-q"], monkeypatch, capsys)
    assert code == 0, err

    after = read_records(out)
    assert StudyStore(out).read_study().status == "finished"
    # step 1 was not run again; step 2 went on in its own experiment and ended
    assert {k: r for k, r in after.items() if r.get("phase") == "screen"} == screen_before
    pbt = [r for r in after.values() if r.get("phase") == "pbt"]
    assert len(pbt) == 2 and all(r["state"] in ENDED_STATES for r in pbt), pbt
    assert all(rec["reports"][-1]["epoch"] == 8.0 for rec in pbt), pbt
    # members with a saved checkpoint continued from it rather than starting over: a run that
    # starts over replaces all the trial's reports; one that continues keeps those up to its
    # checkpoint (at least the first: the snapshot may be an epoch or two behind the records)
    for trial_id in saved_ids:
        assert after[trial_id]["reports"][0] == before[trial_id]["reports"][0]
        assert any(r.get("restored_from") for r in after[trial_id]["reports"])
    assert StudyStore(out).read_study().best_trial_id in after
