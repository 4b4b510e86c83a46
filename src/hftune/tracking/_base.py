"""What every tracking target shares: a Ray Tune ``Callback`` on the driver, one run per trial.

Like :class:`hftune.study.recorder.StudyRecorder`, it sees Ray Tune's trial events on the driver,
so trials never talk to a tracking service themselves. A target implements four methods: start
(once, in the background), open a run for a trial, log one evaluation, close a run; and may
implement a fifth, record the config a PBT exploit gave the trial.

What is logged, and only that:

* the trial's hyperparameters: its search-space keys (``search_keys``), as the records keep them;
  after each PBT exploit, the new config too (each target says how: :meth:`_log_exploit`);
* per evaluation, its metrics: the task's metrics, ``loss``, and ``epoch``, ``step``,
  ``learning_rate``, ``weight_decay``, ``eval_s``, ``elapsed_s``. Ray's own fields
  (``time_total_s``, ``pid``, ...) and hftune's bookkeeping (``worker_pid``, ``trained_all``,
  ...) are not.

Each evaluation is logged once, at the trial's *tracking step*, which strictly increases per
trial: the global step until the trial's first PBT exploit, then shifted past the last one
logged (:mod:`hftune.tracking._steps`, which also says how restarts, retries and ``hftune
resume`` are handled). The global ``step`` and the ``epoch`` are metrics of every evaluation.

Starting (importing the client, connecting, creating a store) runs in a background thread from
the experiment's start, so that it overlaps the trials' start-up instead of holding up Ray's
event loop at the first result, which waits for it.

A run is opened at a trial's first result (a trial that never reports gets no run) and closed
when the trial completes (``finished``), errors (``failed``) or is still open when the
experiment ends (``killed``, e.g. after Ctrl-C).

A tracking failure never fails the study. A failed call (start, open, log, close) prints one
line to stderr and is dropped (the evaluation it was logging is missing from the tracker; a
start is tried again at the next result, a run that failed to close is closed at the end); the
target goes on. :data:`MAX_FAILURES` failures in a row turn the target off for the rest of the
session: its open runs are closed as ``killed`` (best effort), and the study folder still holds
every result.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from pathlib import Path
from typing import Any, ClassVar

from ray.tune import Callback

from hftune.space import python_value
from hftune.tracking._steps import (
    STATE_FOLDER,
    TrackState,
    TrialTrack,
    plain_config,
    result_step,
)

__all__ = ["BASE_METRICS", "MAX_FAILURES", "TrackingCallback", "redact_userinfo", "result_step",
           "select_metrics"]

logger = logging.getLogger(__name__)

# Reported with every evaluation besides the task's own metrics (see hftune.training.callback).
BASE_METRICS = frozenset({"loss", "epoch", "step", "learning_rate", "weight_decay", "eval_s",
                          "elapsed_s"})

MAX_FAILURES = 3  # failed calls in a row that turn a target off


def select_metrics(result: dict[str, Any], keys: frozenset[str]) -> dict[str, float]:
    """The entries of ``result`` named in ``keys`` whose values are real numbers, as floats."""
    out: dict[str, float] = {}
    for key in sorted(keys & result.keys()):
        value = python_value(result[key])
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[key] = float(value)
    return out


# The user info of a URL, up to its last "@" before the path (a password may hold an "@").
_USERINFO = re.compile(r"(\w[\w+.-]*://)[^\s/]*@")
# A credential-looking query parameter's value.
_QUERY_SECRET = re.compile(
    r"([?&;](?:[\w.-]*token|password|passwd|pwd|[\w.-]*api[_-]?key|key|[\w.-]*secret|sig|"
    r"signature|x-amz-credential|x-amz-signature|auth)=)[^&#\s'\"]*", re.IGNORECASE)


def redact_userinfo(text: str) -> str:
    """``text`` with the user info of every URL in it (``user:password@``) replaced by
    ``***@`` and the values of credential-looking query parameters (``token=``,
    ``api_key=``, ...) by ``***``: a client's error message may quote the URI it was given."""
    return _QUERY_SECRET.sub(r"\1***", _USERINFO.sub(r"\1***@", text))


class TrackingCallback(Callback):
    """Base of the tracking targets: trial events → ``_open`` / ``_log`` / ``_close``.

    Subclasses set ``target`` and implement ``_open``, ``_log``, ``_close`` and, when they have
    something slow to do once, ``_start``. Live handles (clients, writers, runs) live in
    ``_runs`` and in the attributes named by ``_transient``; they are dropped when Ray pickles
    the callback with its experiment, so a pickled callback holds only its plain settings
    (never a secret). Once Ray has set it up, each trial's tracking steps are kept in
    ``<study>/tracking/<target>.json`` (:mod:`hftune.tracking._steps`).
    """

    target: ClassVar[str] = ""
    _transient: ClassVar[tuple[str, ...]] = ()

    def __init__(self, study_name: str, study_dir: Path, search_keys: list[str],
                 metrics: frozenset[str], logged_steps: dict[str, int] | None = None) -> None:
        self.study_name = study_name
        self.study_dir = Path(study_dir).resolve()
        self.search_keys = list(search_keys)
        self.metric_keys = frozenset(metrics) | BASE_METRICS
        # per trial: tracking steps (from the target's state file once Ray has set it up;
        # `logged_steps`, the records' highest step per trial, for a folder without one)
        self._state = TrackState(self.study_dir / STATE_FOLDER / f"{self.target}.json",
                                 logged_steps)
        self._runs: dict[str, Any] = {}
        self._started = False
        self._starter: threading.Thread | None = None
        self._start_error: Exception | None = None
        self._failures = 0  # failed calls in a row
        self._off = False

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_runs"] = {}
        state["_started"] = False
        state["_starter"] = state["_start_error"] = None
        state["_state"] = TrackState(self._state.path, self._state.fallback)  # see setup()
        for name in self._transient:
            state[name] = None
        return state

    # -- what a target implements -------------------------------------------------------------

    def _start(self) -> None:
        """Import and connect, once, in a background thread; the first run waits for it."""

    def _open(self, trial_id: str, params: dict[str, Any]) -> Any:
        """Open (or, after a resume, reopen) the run of ``trial_id``; return its handle."""
        raise NotImplementedError

    def _log(self, run: Any, metrics: dict[str, float], step: int) -> None:
        """Log one evaluation's ``metrics`` at tracking step ``step``."""
        raise NotImplementedError

    def _close(self, run: Any, status: str) -> None:
        """End a run; ``status`` is ``finished``, ``failed`` or ``killed``."""
        raise NotImplementedError

    def _abandon(self, run: Any, status: str) -> None:
        """:meth:`_close`, with the shortest limits the client has (the target is off)."""
        self._close(run, status)

    def _log_exploit(self, run: Any, number: int, info: dict[str, Any]) -> None:
        """Record the config the trial's ``number``-th PBT exploit gave it. ``info``:
        ``config`` (search-space values), ``from_trial``, ``epoch`` (of the checkpoint it
        continued from) and ``step`` (the tracking step of its first evaluation)."""

    # -- Ray Tune events ----------------------------------------------------------------------

    def setup(self, **info: Any) -> None:
        """Start in the background (see the module doc); the first result waits for it."""
        self._state.attach()  # from now on the file says what this target logged
        self._starter = threading.Thread(target=self._run_start, daemon=True,
                                         name=f"hftune-{self.target}-start")
        self._starter.start()

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict,
                        **info: Any) -> None:
        if not self._off:
            self._guard("logging a result", self._on_result, trial, result)
            return
        try:  # off: nothing is sent, but the segments stay right for a later resume
            self._account(trial, result)
        except Exception:
            logger.debug("%s: accounting a result failed", self.target, exc_info=True)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._guard("closing a run", self._end, trial.trial_id, "finished")

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._guard("closing a run", self._end, trial.trial_id, "failed")

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        for trial_id in list(self._runs):
            self._guard("closing a run", self._end, trial_id, "killed")
        self._state.save()

    # -- plumbing ------------------------------------------------------------------------------

    def _run_start(self) -> None:
        try:
            self._start()
        except Exception as exc:  # raised again where the first result waits for it
            self._start_error = exc

    def _ensure_started(self) -> None:
        """Wait for the start; a start that failed is tried again at the next result."""
        if self._started:
            return
        if self._starter is None:  # driven without Ray's setup(), or a retry
            self._run_start()
        else:
            self._starter.join()
            self._starter = None
        error, self._start_error = self._start_error, None
        if error is not None:
            raise error
        self._started = True

    def _run_config(self, trial: Any, result: dict[str, Any]) -> dict[str, Any]:
        """The search-space values the trial runs with: its run's reported ``trial_config``
        (a scheduler may already have changed ``trial.config``), else ``trial.config``."""
        config = result.get("trial_config") or trial.config or {}
        return {k: python_value(config[k]) for k in self.search_keys if k in config}

    def _account(self, trial: Any, result: dict[str, Any]) -> TrialTrack:
        """Update the trial's segment before anything is sent (a failed call must not lose
        an exploit: the steps that follow depend on it)."""
        track = self._state.get(trial.trial_id)
        config = self._run_config(trial, result)
        if "worker_pid" in result and track.begin_run(trial.trial_id, result, config):
            self._state.save()
        if track.config is None:
            track.config = plain_config(config)
        return track

    def _on_result(self, trial: Any, result: dict[str, Any]) -> None:
        track = self._account(trial, result)
        self._ensure_started()
        try:
            self._send(trial, result, track)
        finally:
            self._state.save()  # what was sent, also when a later call failed

    def _send(self, trial: Any, result: dict[str, Any], track: TrialTrack) -> None:
        trial_id = trial.trial_id
        run = self._runs.get(trial_id)
        if run is None:
            config = trial.config or {}
            params = {k: python_value(config[k]) for k in self.search_keys if k in config}
            run = self._runs[trial_id] = self._open(trial_id, params)
            track.opens += 1
        step = track.tracking_step(result)
        if step is None:
            return  # an epoch trained again after a restart: logged by the first run
        metrics = select_metrics(result, self.metric_keys)
        if metrics:
            self._log(run, metrics, step)
            track.last = step
        if track.exploits > track.exploits_logged:
            source, epoch = track.segment or [None, None]
            self._log_exploit(run, track.exploits, {"config": dict(track.config or {}),
                                                    "from_trial": source, "epoch": epoch,
                                                    "step": step})
            track.exploits_logged = track.exploits

    def _end(self, trial_id: str, status: str) -> None:
        run = self._runs.pop(trial_id, None)
        if run is None:
            return
        try:
            self._close(run, status)
        except Exception:
            self._runs[trial_id] = run  # still open: closed at the experiment's end
            raise

    def _close_open_runs(self, status: str) -> None:
        """Best effort, the target being off: close the open runs (:meth:`_abandon`), up to
        the first that fails (the service is most likely gone)."""
        runs, self._runs = self._runs, {}
        for run in runs.values():
            try:
                self._abandon(run, status)
            except Exception:
                logger.debug("%s: closing a run failed", self.target, exc_info=True)
                return

    def _guard(self, action: str, fn: Any, *args: Any) -> None:
        if self._off:
            return
        try:
            fn(*args)
        except Exception as exc:  # a tracking service must never fail the study
            self._failures += 1
            first = redact_userinfo(str(exc).splitlines()[0]) if str(exc) else ""
            what = f"{action}: {type(exc).__name__}: {first}"
            logger.debug("%s tracking failed", self.target, exc_info=True)
            if self._failures < MAX_FAILURES:
                sys.stderr.write(f"hftune: {self.target} tracking: {what}; skipped "
                                 f"({self._failures} of {MAX_FAILURES} failures in a row turn "
                                 f"it off)\n")
                return
            self._off = True
            sys.stderr.write(f"hftune: {self.target} tracking stopped after {MAX_FAILURES} "
                             f"failures in a row ({what}); its open runs are closed as "
                             f"killed; the study goes on, its folder keeps every result\n")
            self._close_open_runs("killed")
            self._state.save()
        else:
            self._failures = 0
