"""A local Ray's environment: the driver's own is left as it was; Ray Tune's actors get none."""

from __future__ import annotations

import os

from hftune.environ import environ_set
from hftune.study import ray_session
from hftune.study.ray_session import WORKER_ENV, worker_env


def test_environ_is_restored(monkeypatch) -> None:
    monkeypatch.setenv("HFTUNE_TEST_KEPT", "driver")
    monkeypatch.delenv("HFTUNE_TEST_NEW", raising=False)
    with environ_set({"HFTUNE_TEST_KEPT": "worker", "HFTUNE_TEST_NEW": "worker"}):
        assert os.environ["HFTUNE_TEST_KEPT"] == os.environ["HFTUNE_TEST_NEW"] == "worker"
    assert os.environ["HFTUNE_TEST_KEPT"] == "driver"
    assert "HFTUNE_TEST_NEW" not in os.environ


def test_worker_env_passes_the_drivers_hub_settings(monkeypatch) -> None:
    monkeypatch.setenv("HF_HOME", "/data/hf")
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    env = worker_env()
    assert env["HF_HOME"] == "/data/hf" and "HF_DATASETS_OFFLINE" not in env
    assert WORKER_ENV.items() <= env.items()


def test_local_ray_gets_every_cpu(monkeypatch) -> None:
    import ray

    started: list[int] = []
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray_session, "start_local_ray", started.append)
    monkeypatch.setattr(os, "cpu_count", lambda: 6)
    ray_session.connect_ray(None)
    assert started == [6]


def test_trials_on_a_cluster_are_sized_to_its_largest_node() -> None:
    """--address: a driver without GPUs, or with more CPUs than any node, must not decide the
    per-trial defaults; the largest alive node (GPUs first) does."""
    from hftune.study.ray_session import largest_node

    nodes = [{"Alive": True, "Resources": {"CPU": 64.0}},                  # the driver's node
             {"Alive": True, "Resources": {"CPU": 8.0, "GPU": 1.0}},
             {"Alive": True, "Resources": {"CPU": 16.0, "GPU": 2.0}},
             {"Alive": False, "Resources": {"CPU": 96.0, "GPU": 8.0}}]    # gone
    assert largest_node(nodes) == (16.0, 2)
    assert largest_node(nodes[:1]) == (64.0, 0)
    assert largest_node([]) == (1.0, 0)


def test_cluster_sizing_keeps_the_measured_auto_fraction(monkeypatch) -> None:
    """--address: resources are sized to the largest node; a gpus_per_trial: auto fraction
    measured while preparing is reused, not probed a second time."""
    from dataclasses import dataclass

    from hftune.study import gpu_packing, runner
    from hftune.study import ray_session as session
    from hftune.study.loading import validate_study
    from hftune.study.prepare import Resources

    @dataclass
    class Prepared:  # the two fields fit_to_cluster reads of a PreparedStudy
        config: object
        resources: Resources

    probes: list[int] = []
    monkeypatch.setattr(runner, "connect_ray", lambda address: None)
    monkeypatch.setattr(session, "cluster_node_shape", lambda: (16.0, 2))
    monkeypatch.setattr(gpu_packing, "resolve_auto", lambda cfg, gpus: probes.append(gpus) or 1.0)
    base = {"name": "x", "model": "m", "task": "rte"}
    auto = validate_study({**base, "resources": {"gpus_per_trial": "auto"}})
    fitted = runner.fit_to_cluster(Prepared(auto, Resources(8.0, 0.25, None)), "head:6379")
    assert (fitted.resources.cpus_per_trial, fitted.resources.gpus_per_trial) == (2.0, 0.25)
    assert probes == []
    plain = validate_study(base)
    fitted = runner.fit_to_cluster(Prepared(plain, Resources(64.0, 0.0, None)), "head:6379")
    assert (fitted.resources.cpus_per_trial, fitted.resources.gpus_per_trial) == (8.0, 1.0)
    local = runner.fit_to_cluster(Prepared(plain, Resources(64.0, 0.0, None)), None)
    assert local.resources == Resources(64.0, 0.0, None)
