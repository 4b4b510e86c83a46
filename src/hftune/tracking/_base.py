"""What every tracking target shares: a Ray Tune ``Callback`` on the driver, one run per trial.

Like :class:`hftune.study.recorder.StudyRecorder`, it sees Ray Tune's trial events on the driver,
so trials never talk to a tracking service themselves. A target implements four methods: start
(once, in the background), open a run for a trial, log one evaluation, close a run.

What is logged, and only that:

* the trial's hyperparameters: its search-space keys (``search_keys``), as the records keep them;
* per evaluation, its metrics: the task's metrics, ``loss``, and ``epoch``, ``step``,
  ``learning_rate``, ``weight_decay``, ``eval_s``, ``elapsed_s``; the global ``step`` is the
  step of every logged value. Ray's own fields (``time_total_s``, ``pid``, ...) and hftune's
  bookkeeping (``worker_pid``, ``trained_all``, ...) are not.

Starting (importing the client, connecting, creating a store) runs in a background thread from
the experiment's start, so that it overlaps the trials' start-up instead of holding up Ray's
event loop at the first result, which waits for it.

A run is opened at a trial's first result (a trial that never reports gets no run) and closed
when the trial completes (``finished``), errors (``failed``) or is still open when the
experiment ends (``killed``, e.g. after Ctrl-C).

Each (trial, step) is logged once: a trial that starts over from scratch or from its own
checkpoint (a resume, a retry after a failure) trains again epochs whose values were already
logged; those are not logged again, so a run's curve has no second point at the same step. The
study folder keeps the values of the run that continued (:mod:`hftune.study.recorder`); the
tracked values of those epochs are the first run's. A PBT exploit continues from another
trial's checkpoint and is logged in full. ``logged_steps`` (trial id → highest step logged,
from the study's records) carries this across a resume.

A tracking failure never fails the study: the first one prints one line to stderr and turns
that target off; the study folder still holds every result.
"""

from __future__ import annotations

import logging
import math
import re
import sys
import threading
from pathlib import Path
from typing import Any, ClassVar

from ray.tune import Callback

from hftune.space import python_value

logger = logging.getLogger(__name__)

# Reported with every evaluation besides the task's own metrics (see hftune.training.callback).
BASE_METRICS = frozenset({"loss", "epoch", "step", "learning_rate", "weight_decay", "eval_s",
                          "elapsed_s"})


def select_metrics(result: dict[str, Any], keys: frozenset[str]) -> dict[str, float]:
    """The entries of ``result`` named in ``keys`` whose values are real numbers, as floats."""
    out: dict[str, float] = {}
    for key in sorted(keys & result.keys()):
        value = python_value(result[key])
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[key] = float(value)
    return out


_USERINFO = re.compile(r"(\w[\w+.-]*://)[^/\s@]+@")


def redact_userinfo(text: str) -> str:
    """``text`` with the user info of every URL in it (``user:password@``) replaced by
    ``***@``: a client's error message may quote the URI it was given."""
    return _USERINFO.sub(r"\1***@", text)


def result_step(result: dict[str, Any]) -> int:
    """The global training step of a result (Ray's iteration count when there is none)."""
    step = result.get("step")
    if isinstance(step, int | float) and not isinstance(step, bool) and math.isfinite(step):
        return int(step)
    return int(result.get("training_iteration") or 0)


class TrackingCallback(Callback):
    """Base of the tracking targets: trial events → ``_open`` / ``_log`` / ``_close``.

    Subclasses set ``target`` and implement ``_open``, ``_log``, ``_close`` and, when they have
    something slow to do once, ``_start``. Live handles (clients, writers, runs) live in
    ``_runs`` and in the attributes named by ``_transient``; they are dropped when Ray pickles
    the callback with its experiment, so a pickled callback holds only its plain settings
    (never a secret).
    """

    target: ClassVar[str] = ""
    _transient: ClassVar[tuple[str, ...]] = ()

    def __init__(self, study_name: str, study_dir: Path, search_keys: list[str],
                 metrics: frozenset[str], logged_steps: dict[str, int] | None = None) -> None:
        self.study_name = study_name
        self.study_dir = Path(study_dir).resolve()
        self.search_keys = list(search_keys)
        self.metric_keys = frozenset(metrics) | BASE_METRICS
        # trial id → highest step logged; → steps a restarted run trains again (not logged)
        self._logged_step: dict[str, int] = dict(logged_steps or {})
        self._replay_until: dict[str, int] = {}
        self._runs: dict[str, Any] = {}
        self._started = False
        self._starter: threading.Thread | None = None
        self._start_error: Exception | None = None
        self._off = False

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_runs"] = {}
        state["_started"] = False
        state["_starter"] = state["_start_error"] = None
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
        """Log one evaluation's ``metrics`` at global step ``step``."""
        raise NotImplementedError

    def _close(self, run: Any, status: str) -> None:
        """End a run; ``status`` is ``finished``, ``failed`` or ``killed``."""
        raise NotImplementedError

    # -- Ray Tune events ----------------------------------------------------------------------

    def setup(self, **info: Any) -> None:
        """Start in the background (see the module doc); the first result waits for it."""
        self._starter = threading.Thread(target=self._run_start, daemon=True,
                                         name=f"hftune-{self.target}-start")
        self._starter.start()

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict,
                        **info: Any) -> None:
        self._guard("logging a result", self._on_result, trial, result)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._guard("closing a run", self._end, trial.trial_id, "finished")

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._guard("closing a run", self._end, trial.trial_id, "failed")

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        for trial_id in list(self._runs):
            self._guard("closing a run", self._end, trial_id, "killed")

    # -- plumbing ------------------------------------------------------------------------------

    def _run_start(self) -> None:
        try:
            self._start()
        except Exception as exc:  # raised again where the first result waits for it
            self._start_error = exc

    def _ensure_started(self) -> None:
        if self._started:
            return
        if self._starter is None:  # driven without Ray's setup()
            self._run_start()
        else:
            self._starter.join()
        self._started = True
        if self._start_error is not None:
            raise self._start_error

    def _on_result(self, trial: Any, result: dict[str, Any]) -> None:
        self._ensure_started()
        trial_id = trial.trial_id
        run = self._runs.get(trial_id)
        if run is None:
            config = trial.config or {}
            params = {k: python_value(config[k]) for k in self.search_keys if k in config}
            run = self._runs[trial_id] = self._open(trial_id, params)
        if "worker_pid" in result:  # the first report of a (re)started run
            replays = result.get("restored_from") in (None, trial_id)
            self._replay_until[trial_id] = self._logged_step.get(trial_id, -1) if replays else -1
        step = result_step(result)
        if step <= self._replay_until.get(trial_id, -1):
            return  # an epoch trained again after a restart: logged by the first run
        metrics = select_metrics(result, self.metric_keys)
        if metrics:
            self._log(run, metrics, step)
            self._logged_step[trial_id] = max(step, self._logged_step.get(trial_id, -1))

    def _end(self, trial_id: str, status: str) -> None:
        run = self._runs.pop(trial_id, None)
        if run is not None:
            self._close(run, status)

    def _guard(self, action: str, fn: Any, *args: Any) -> None:
        if self._off:
            return
        try:
            fn(*args)
        except Exception as exc:  # a tracking service must never fail the study
            self._off = True
            first = redact_userinfo(str(exc).splitlines()[0]) if str(exc) else ""
            sys.stderr.write(f"hftune: {self.target} tracking stopped ({action}: "
                             f"{type(exc).__name__}: {first}); the study goes on, its folder "
                             f"keeps every result\n")
            logger.debug("%s tracking failed", self.target, exc_info=True)
