"""Where a study runs: a local Ray started here (the default), or the Ray cluster at ``--address``.

A local Ray listens on the loopback interface, and its worker processes get their environment
(:data:`WORKER_ENV`) from the driver's, which the raylet inherits. No runtime environment is used
locally, neither the job's nor Ray Tune's per-actor one (:func:`_move_tune_actor_env`): Ray
starts one worker process per CPU as soon as the driver connects, but never gives an actor with
a runtime environment a worker started without one, so with either the trial actors would wait
for fresh processes that start only once Ray Tune asks for them (and those Ray had started would
sit idle). Measured on the 4×1 benchmark grid: 5-8 s less per study (``benchmarks/RESULTS.md``).

On a cluster the environment travels as the job's ``runtime_env`` (the nodes' raylets were
started elsewhere).

Token authentication is always on for a local Ray and used on a cluster whenever a token is at
hand: :mod:`hftune.study.ray_auth`.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping, Sequence
from typing import Any

from hftune._compat.ray import (
    count_callbacks_without_imports,
    gcs_auth,
    move_tune_actor_env,
    refresh_auth_mode,
)
from hftune.environ import environ_set
from hftune.errors import HftuneInputError
from hftune.study import library_log, ray_auth

# Environment every trial process gets (on every node).
WORKER_ENV = {"TOKENIZERS_PARALLELISM": "false", "HF_HUB_DISABLE_TELEMETRY": "1",
              "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1"}
# The driver's values of these travel to a cluster's workers too.
PASSED_ENV = ("HFTUNE_TOKENIZE_LOG", "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "HF_HOME")
RAY_INIT_OPTIONS: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                    "configure_logging": False}


def worker_env() -> dict[str, str]:
    """:data:`WORKER_ENV` plus the driver's values of :data:`PASSED_ENV`."""
    env = dict(WORKER_ENV)
    env.update({k: os.environ[k] for k in PASSED_ENV if k in os.environ})
    return env


def check_address(address: str | None, timeout_s: float = 3.0) -> None:
    """Fail fast (within ``timeout_s``) when nothing listens at ``--address HOST:PORT``.

    ``ray.init`` retries an unreachable address for a long time; a TCP connect says at once.
    ``None`` and ``auto`` are not checked (a local Ray, or the one ``ray start`` recorded).
    """
    if not address or address == "auto":
        return
    target = address.split("://", 1)[-1]
    host, sep, port = target.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise HftuneInputError(f"--address: '{address}' is not HOST:PORT (e.g. 10.0.0.5:6379)")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise HftuneInputError(
            f"--address: no Ray cluster answers at {address} ({reason}); start one with "
            f"'ray start --head' or fix the address") from None


def connect_ray(address: str | None) -> None:
    """Connect to the cluster at ``address``, or start a local Ray with every CPU.

    Nothing happens when this process is already connected (tests, or a caller's own Ray).
    On a cluster, token mode is used when a token is at hand (:mod:`hftune.study.ray_auth`),
    and a cluster that answers clients without one gets a ``warning:`` line. Raises
    :class:`HftuneInputError` when Ray cannot start or connect (a cluster that asks for a
    token this process does not have, too).
    """
    import ray

    count_callbacks_without_imports()
    if ray.is_initialized():
        return
    if not address:
        _connect_failed(None, lambda: start_local_ray(os.cpu_count() or 1))
        return
    env = ray_auth.auth_env_for_cluster()
    asks_token = address != "auto" and gcs_auth(address) == "token"
    if asks_token and not ray_auth.has_token():
        raise HftuneInputError(f"--address: the Ray cluster at {address} asks for a token and "
                               f"this process has none; {ray_auth.TOKEN_HINT}")

    def join() -> None:
        with environ_set(env):
            refresh_auth_mode()
            ray.init(address=address, runtime_env={"env_vars": worker_env()},
                     **RAY_INIT_OPTIONS)

    _connect_failed(address, join, asks_token)
    library_log.reclaim()  # ray.init resets the handlers of Ray's logger
    ray_auth.warn_if_unprotected(ray.get_runtime_context().gcs_address)


def _connect_failed(address: str | None, connect: Any, asks_token: bool = False) -> None:
    """Run ``connect``; its failure to start or join Ray is one :class:`HftuneInputError`
    line (a wrong token named as such: ``asks_token``, the cluster refused a tokenless
    client, and joining it failed)."""
    from ray.exceptions import AuthenticationError

    where = f"the Ray cluster at {address}" if address else "a local Ray instance"
    try:
        connect()
    except AuthenticationError:
        raise HftuneInputError(f"--address: {where} refused this process's token; "
                               f"{ray_auth.TOKEN_HINT}") from None
    except ConnectionError as exc:
        if asks_token:
            raise HftuneInputError(f"--address: {where} asks for a token and refused this "
                                   f"process's; {ray_auth.TOKEN_HINT}") from None
        raise HftuneInputError(f"--address: cannot connect to {where} ({_first_line(exc)})"
                               ) from None
    except (RuntimeError, ValueError) as exc:
        raise HftuneInputError(f"--address: cannot connect to {where} ({_first_line(exc)})"
                               ) from None


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def largest_node(nodes: Sequence[Mapping[str, Any]]) -> tuple[float, int]:
    """``(CPUs, GPUs)`` of the largest alive node in ``ray.nodes()`` (most GPUs, then most
    CPUs): a trial runs on one node, so per-trial defaults are sized to one."""
    alive = [dict(n.get("Resources") or {}) for n in nodes if n.get("Alive", True)]
    if not alive:
        return 1.0, 0
    biggest = max(alive, key=lambda r: (r.get("GPU", 0), r.get("CPU", 0)))
    return float(biggest.get("CPU", 1)), int(biggest.get("GPU", 0))


def cluster_node_shape() -> tuple[float, int]:
    """:func:`largest_node` of the cluster this process is connected to."""
    import ray

    return largest_node(ray.nodes())


def start_local_ray(num_cpus: int, env: Mapping[str, str] | None = None) -> None:
    """Start Ray on this machine with ``num_cpus`` CPUs, in token-authentication mode
    (:func:`hftune.study.ray_auth.auth_env_for_local_ray`), whose workers get ``env``
    (default :func:`worker_env`) and Ray Tune's per-actor variables. The driver's environment
    is as it was afterwards."""
    import ray

    env = dict(worker_env() if env is None else env)
    env.update(move_tune_actor_env())
    env.update(ray_auth.auth_env_for_local_ray())
    with environ_set(env):  # the raylet, and with it every worker, inherits this environment
        refresh_auth_mode()
        ray.init(num_cpus=num_cpus, **RAY_INIT_OPTIONS)
    library_log.reclaim()  # ray.init resets the handlers of Ray's logger
