"""Per-trial resources larger than the machine, or than any node of a cluster, are refused
before Ray starts (``fit_to_cluster``; ``connect_ray`` raises :class:`Reached`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from hftune.errors import ConfigError
from hftune.testing.cli import Reached, one_line, reached, run_cli


@pytest.fixture
def fit_check(monkeypatch: pytest.MonkeyPatch):
    """``fit_to_cluster`` on a config with ``resources``, on a machine of 2 CPUs and 1 GPU
    (local, before Ray: ``connect_ray`` raises :class:`Reached`)."""
    import ray

    from hftune.study import preflight, runner
    from hftune.study.loading import validate_study
    from hftune.study.prepare import default_resources

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(runner, "connect_ray", reached)
    monkeypatch.setattr(preflight, "machine_shape", lambda: (2.0, 1))

    @dataclass
    class Prepared:  # the fields fit_to_cluster reads of a PreparedStudy
        config: Any
        resources: Any

    def fit(resources: dict, address: str | None = None) -> Any:
        cfg = validate_study({"name": "x", "model": "m", "task": "rte", "resources": resources})
        prepared = Prepared(cfg, default_resources(cfg, total_cpus=2.0, total_gpus=1))
        return runner.fit_to_cluster(prepared, address)

    return fit


def test_more_cpus_or_gpus_per_trial_than_the_machine_are_refused(fit_check) -> None:
    with pytest.raises(ConfigError, match=r"^resources\.cpus_per_trial: 64 CPUs per trial, "
                                          r"but this machine has 2;"):
        fit_check({"cpus_per_trial": 64})
    with pytest.raises(ConfigError, match=r"^resources\.gpus_per_trial: 8 GPUs per trial, "
                                          r"but this machine has 1;"):
        fit_check({"gpus_per_trial": 8})
    for fits in ({"cpus_per_trial": 2}, {"gpus_per_trial": 0.5}, {"gpus_per_trial": 1},
                 {}):
        with pytest.raises(Reached):  # checked, then on to Ray
            fit_check(fits)


def test_on_a_cluster_a_trial_must_fit_one_node(fit_check, monkeypatch) -> None:
    import ray

    from hftune.study import ray_session, runner

    nodes = [{"Alive": True, "Resources": {"CPU": 64.0}},
             {"Alive": True, "Resources": {"CPU": 16.0, "GPU": 2.0}},
             {"Alive": False, "Resources": {"CPU": 256.0, "GPU": 8.0}}]
    monkeypatch.setattr(runner, "connect_ray", lambda address: None)
    monkeypatch.setattr(ray, "nodes", lambda: nodes)
    monkeypatch.setattr(ray_session, "cluster_node_shape", lambda: (16.0, 2))
    fitted = fit_check({"cpus_per_trial": 32, "gpus_per_trial": 0}, "head:6379")
    assert fitted.resources.cpus_per_trial == 32  # the 64-CPU node takes it
    with pytest.raises(ConfigError, match=r"^resources\.cpus_per_trial: 128 CPUs per trial, "
                                          r"but the largest node of the Ray cluster at "
                                          r"head:6379 has 64;"):
        fit_check({"cpus_per_trial": 128}, "head:6379")
    with pytest.raises(ConfigError, match=r"no node of the Ray cluster at head:6379 has 32 "
                                          r"CPUs and 1 GPUs together"):
        fit_check({"cpus_per_trial": 32, "gpus_per_trial": 1}, "head:6379")


def test_resources_over_the_machine_through_the_cli(write_study, monkeypatch, capsys) -> None:
    import ray

    from hftune.study import runner

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(runner, "connect_ray", reached)
    path, out = write_study(resources={"cpus_per_trial": 100_000})
    code, _, err = run_cli(["run", str(path), "-q"], monkeypatch, capsys)
    one_line(code, err, "resources.cpus_per_trial: 100000 CPUs per trial, but this machine has")
    assert not out.exists()
    path, out = write_study(resources={"gpus_per_trial": 1.5})
    code, _, err = run_cli(["run", str(path), "-q"], monkeypatch, capsys)
    one_line(code, err, "resources.gpus_per_trial: a trial takes a share of one GPU")
