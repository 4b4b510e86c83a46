"""A local Ray started by hftune: trial actors take the workers Ray started when hftune connected.

Runs in a child process: it needs a Ray of its own (the test session's is already started).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.integration

SCRIPT = textwrap.dedent("""
    import json, os, time
    import psutil
    import ray
    from ray.tune.execution.class_cache import _ActorClassCache
    from hftune.study.ray_session import start_local_ray

    start_local_ray(2)
    # Ray starts its first workers when the driver connects: wait until two are idle (no fixed
    # sleep: on a busy machine they take longer)
    deadline = time.monotonic() + 240
    while sum("ray::IDLE" in " ".join(p.info["cmdline"] or ())
              for p in psutil.process_iter(["cmdline"])) < 2:
        if time.monotonic() > deadline:
            raise SystemExit("Ray started no idle workers")
        time.sleep(0.2)

    class Probe:
        def state(self):
            return {"process_started": psutil.Process().create_time(),
                    "tokenizers_parallelism": os.environ.get("TOKENIZERS_PARALLELISM"),
                    "pl_disable_fork": os.environ.get("PL_DISABLE_FORK")}

    asked = time.time()
    remote_probe = _ActorClassCache().get(Probe)  # as Ray Tune creates trial actors
    probes = [remote_probe.options(num_cpus=1).remote() for _ in range(2)]
    states = ray.get([p.state.remote() for p in probes])
    print(json.dumps({"asked": asked, "states": states,
                      "driver_env": os.environ.get("TOKENIZERS_PARALLELISM")}))
    ray.shutdown()
    """)


def test_trial_actors_take_the_started_workers(tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "TOKENIZERS_PARALLELISM"}
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                         timeout=300, cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    states = result["states"]
    assert len(states) == 2
    # both actors run in processes that existed before Ray Tune's actors were asked for
    assert all(s["process_started"] < result["asked"] for s in states)
    assert all(s["tokenizers_parallelism"] == "false" for s in states)  # the worker environment
    assert all(s["pl_disable_fork"] == "1" for s in states)  # Ray Tune's actor variable, moved
    assert result["driver_env"] is None  # the driver's own environment is as it was
