"""A local Ray started by hftune: trial actors get workers that imported a trial's modules.

Runs in a child process: it needs a Ray of its own (the test session's is already started).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.integration

SCRIPT = textwrap.dedent("""
    import json, os, sys, time
    import ray
    from hftune.study.ray_session import start_local_ray

    start_local_ray(2, preload=1)
    time.sleep(5)  # the prestarted workers have started (and import) while the driver waits

    class Probe:
        def state(self):
            from hftune.training.preload import was_preloaded
            return {"pid": os.getpid(), "preloaded": was_preloaded(),
                    "torch": "torch" in sys.modules,
                    "tokenizers_parallelism": os.environ.get("TOKENIZERS_PARALLELISM"),
                    "pl_disable_fork": os.environ.get("PL_DISABLE_FORK")}

    # created as Ray Tune creates trial actors
    from ray.tune.execution.class_cache import _ActorClassCache
    remote_probe = _ActorClassCache().get(Probe)
    probes = [remote_probe.options(num_cpus=1).remote() for _ in range(2)]
    states = ray.get([p.state.remote() for p in probes])
    print(json.dumps({"states": states,
                      "driver_env": os.environ.get("__RAY_WORKER_PROCESS_SETUP_HOOK_ENV_VAR")}))
    ray.shutdown()
    """)


def test_actors_start_in_preloaded_workers(tmp_path) -> None:
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                         timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    states = result["states"]
    # one slot: exactly one of the two prestarted workers imported torch before its actor
    assert sorted(s["preloaded"] for s in states) == [False, True]
    assert all(s["torch"] == s["preloaded"] for s in states)
    assert all(s["tokenizers_parallelism"] == "false" for s in states)  # the worker environment
    assert all(s["pl_disable_fork"] == "1" for s in states)  # Ray Tune's actor variable, moved
    assert result["driver_env"] is None  # the driver's own environment is as it was
