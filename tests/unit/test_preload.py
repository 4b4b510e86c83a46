"""Worker preload: slots held per live process, the hook's contract, the local Ray's settings."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hftune.study import ray_session
from hftune.study.prepare import Resources
from hftune.study.ray_session import _environ, local_concurrency
from hftune.training import preload
from hftune.training.preload import TRIAL_MODULES, claim_slot, preload_trial_imports

HOLD_SLOT = textwrap.dedent("""
    import sys, time
    from hftune.training.preload import claim_slot
    print(claim_slot(sys.argv[1]), flush=True)
    time.sleep(float(sys.argv[2]))
    """)


def _holder(spec: str, seconds: float) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLD_SLOT, spec, str(seconds)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "True"
    return proc


@pytest.fixture(autouse=True)
def _release_slots():
    yield
    while preload._held_slots:
        os.close(preload._held_slots.pop())


def test_no_limit_always_claims() -> None:
    assert claim_slot(None) and claim_slot("")


def test_slots_are_held_by_live_processes_only(tmp_path: Path) -> None:
    spec = f"{tmp_path}:2"
    first = _holder(spec, 60)
    second = _holder(spec, 60)
    try:
        assert not claim_slot(spec)  # both slots held by live processes
        second.kill()
        second.wait()
        assert claim_slot(spec)  # the system freed the ended process's slot
        assert not claim_slot(spec)  # and this process now holds it
    finally:
        for proc in (first, second):
            proc.kill()
            proc.wait()


def test_bad_spec_claims_nothing(tmp_path: Path) -> None:
    assert not claim_slot(f"{tmp_path}:two")
    assert not claim_slot(f"{tmp_path / 'missing'}:1")


def test_hook_imports_when_it_has_a_slot(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(preload, "_preloaded", False)
    monkeypatch.setenv(preload.SLOTS_ENV, f"{tmp_path}:1")
    assert preload_trial_imports(("json",), check_worker=False)
    assert preload.was_preloaded()
    monkeypatch.setattr(preload, "_preloaded", False)
    assert not preload_trial_imports(("json",), check_worker=False)  # the one slot is taken
    assert not preload.was_preloaded()


def test_hook_never_raises(monkeypatch) -> None:
    monkeypatch.setattr(preload, "_preloaded", False)
    monkeypatch.delenv(preload.SLOTS_ENV, raising=False)
    assert not preload_trial_imports(("hftune_no_such_module",), check_worker=False)
    assert not preload.was_preloaded()


def test_hook_outside_a_ray_worker_does_nothing(monkeypatch) -> None:
    monkeypatch.delenv(preload.SLOTS_ENV, raising=False)
    assert not preload_trial_imports(("json",))


def test_hook_names_ray_setting_and_itself() -> None:
    from ray._common.utils import load_class
    from ray._private import ray_constants

    assert preload.RAY_HOOK_ENV == ray_constants.WORKER_PROCESS_SETUP_HOOK_ENV_VAR
    assert load_class(preload.HOOK) is preload_trial_imports


# The preload runs before Ray gives a worker its GPUs (CUDA_VISIBLE_DEVICES is set when the
# trial's actor starts), so importing a trial's modules must not ask CUDA anything.
CUDA_SPY = textwrap.dedent("""
    import importlib, sys, torch
    calls = []
    for name in ("is_available", "device_count", "init", "_lazy_init", "current_device",
                 "get_device_properties", "get_device_capability", "is_bf16_supported"):
        original = getattr(torch.cuda, name)
        def spy(*a, _original=original, _name=name, **k):
            calls.append(_name)
            return _original(*a, **k)
        setattr(torch.cuda, name, spy)
    for module in sys.argv[1:]:
        importlib.import_module(module)
    print(",".join(calls) or "none")
    """)


def test_trial_modules_import_without_touching_cuda() -> None:
    out = subprocess.run([sys.executable, "-c", CUDA_SPY, *TRIAL_MODULES], capture_output=True,
                         text=True, check=True, timeout=300).stdout.split()
    assert out[-1] == "none"


@pytest.mark.parametrize(("resources", "cpus", "gpus", "expected"), [
    (Resources(1.0, 0.0, None), 2, 0, 2),
    (Resources(2.0, 0.0, None), 16, 0, 8),
    (Resources(16.0, 1.0, None), 16, 1, 1),  # one GPU trial on a 16-CPU machine
    (Resources(4.0, 0.25, None), 16, 1, 4),  # four packed trials on one GPU
    (Resources(1.0, 0.0, 3), 16, 0, 3),  # max_concurrent
    (Resources(4.0, 0.0, None), 2, 0, 1),  # more CPUs per trial than the machine: still one
])
def test_local_concurrency(resources: Resources, cpus: int, gpus: int, expected: int) -> None:
    assert local_concurrency(resources, cpus, gpus) == expected


def test_environ_is_restored(monkeypatch) -> None:
    monkeypatch.setenv("HFTUNE_TEST_KEPT", "driver")
    monkeypatch.delenv("HFTUNE_TEST_NEW", raising=False)
    with _environ({"HFTUNE_TEST_KEPT": "worker", "HFTUNE_TEST_NEW": "worker"}):
        assert os.environ["HFTUNE_TEST_KEPT"] == os.environ["HFTUNE_TEST_NEW"] == "worker"
    assert os.environ["HFTUNE_TEST_KEPT"] == "driver"
    assert "HFTUNE_TEST_NEW" not in os.environ


@pytest.mark.parametrize(("setting", "expected"), [(None, 2), ("1", 2), ("0", 0)])
def test_local_ray_preloads_one_worker_per_concurrent_trial(setting, expected,
                                                           monkeypatch) -> None:
    import ray

    started: list[tuple[int, int]] = []
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray_session, "start_local_ray",
                        lambda cpus, *, preload: started.append((cpus, preload)))
    monkeypatch.setattr(ray_session, "cuda_device_count", lambda: 0)
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    if setting is None:
        monkeypatch.delenv(ray_session.PRELOAD_ENV, raising=False)
    else:
        monkeypatch.setenv(ray_session.PRELOAD_ENV, setting)
    ray_session.connect_ray(None, Resources(2.0, 0.0, None))
    assert started == [(4, expected)]
