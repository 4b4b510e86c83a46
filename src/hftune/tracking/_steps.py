"""Per-trial tracking steps: strictly increasing through PBT exploits, restarts and resumes.

A trial's values are sent to a tracker at its *tracking step*, not at its global training step,
because the global step of a trial is not monotonic: a PBT exploit continues from another
trial's checkpoint, often behind this trial's own progress, and re-expresses the step in the
explored config's batches (a new ``per_device_train_batch_size`` puts every later step on
another scale). A trial's history is cut into *segments*: the first starts with the trial, and
each exploit starts a new one.

* In the first segment the tracking step is the global step.
* A segment that an exploit starts is shifted past the last tracking step logged: its first
  evaluation lands at ``last + (step - restored step)`` (the restored step estimated as
  ``step × restored_epoch / epoch``; at least ``last + 1``), and every later one at
  ``step + offset`` with that segment's constant offset.
* A restart that continues the same segment (from scratch, from the trial's own checkpoint, or
  a retry of the exploit that began the segment, from the same checkpoint) trains epochs again
  at the same steps: those whose tracking step is not past the last one logged were logged by
  the first run and are skipped (the tracker keeps the first run's values, the study folder the
  values of the run that continued). A restore from the trial's own checkpoint with another
  config (``trial_config`` differs) starts a new segment, like an exploit.

So per trial the tracking step strictly increases and each evaluation is logged once. The global
``step`` and ``epoch`` stay in every evaluation's metrics.

Each target keeps this state (:class:`TrialTrack`, one per trial) in
``<study folder>/tracking/<target>.json``, rewritten after each change, so that ``hftune
resume`` (fresh callbacks) continues each trial's count exactly where that target left it: what
a target logged can differ from the study folder's records (a target turned off, a replaced
report whose step is gone from the records). A study folder written before that file existed
falls back to the records' highest step per trial (``logged_steps``), with no offset. The file
is read and written only by a callback that Ray has set up (``Callback.setup``, at the start
of every experiment); one driven directly (tests) keeps its state in memory.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

STATE_FOLDER = "tracking"  # <study folder>/tracking/<target>.json


def result_step(result: dict[str, Any]) -> int:
    """The global training step of a result (Ray's iteration count when there is none)."""
    step = result.get("step")
    if isinstance(step, int | float) and not isinstance(step, bool) and math.isfinite(step):
        return int(step)
    return int(result.get("training_iteration") or 0)


def plain_config(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` as the state file keeps it (JSON types), so that it compares equal after a
    resume."""
    return json.loads(json.dumps(config, default=str, sort_keys=True))


def _number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


@dataclass
class TrialTrack:
    """What one target knows of one trial's tracked history (plain data: JSON and pickle)."""

    last: int = -1                  # the highest tracking step logged; -1: none yet
    offset: int = 0                 # tracking step − global step in the current segment
    segment: list[Any] | None = None  # [source trial, restored epoch] that began the segment
    exploits: int = 0               # segments after the first (PBT exploits seen)
    exploits_logged: int = 0        # of those, how many the tracker got the new config of
    opens: int = 0                  # runs opened for the trial so far (sessions, retries)
    config: dict[str, Any] | None = field(default=None)  # the config the trial runs with

    def tracking_step(self, result: dict[str, Any]) -> int | None:
        """The step to log ``result`` at, or None when that step was logged already."""
        step = result_step(result) + self.offset
        return step if step > self.last else None

    def begin_run(self, trial_id: str, result: dict[str, Any],
                  config: dict[str, Any]) -> bool:
        """Account for a (re)started run's first report; True when it begins a new segment.

        ``config``: the search-space values the run trains with (its ``trial_config``).
        """
        config = plain_config(config)
        source = result.get("restored_from")
        restored_epoch = _number(result.get("restored_epoch"))
        same_config = self.config is None or self.config == config
        if source is None or (source == trial_id and same_config):
            self.config = config if self.config is None else self.config
            return False  # from scratch or from its own checkpoint: the same segment again
        key = [source, restored_epoch]
        if key == self.segment and same_config:
            return False  # the exploit that began this segment, retried from its checkpoint
        step = result_step(result)
        if self.last >= 0:
            epoch = _number(result.get("epoch"))
            restored = (round(step * restored_epoch / epoch)
                        if epoch and restored_epoch is not None and epoch > 0 else step - 1)
            self.offset = self.last + max(step - restored, 1) - step
        self.segment, self.config = key, config
        self.exploits += 1
        return True


class TrackState:
    """The :class:`TrialTrack` of every trial one target has seen, kept in a JSON file."""

    def __init__(self, path: Path, fallback: dict[str, int] | None = None) -> None:
        self.path = path
        self.fallback = dict(fallback or {})  # trial id → highest step logged (older folders)
        self.trials: dict[str, TrialTrack] = {}
        self.loaded = False
        self.persist = False  # read and write the file (set by the callback's setup)

    def attach(self) -> None:
        """Keep the state in the file from now on: read it (once), then write it."""
        self.persist = True
        if not self.trials:
            self.loaded = False
        self.load()
        self.save()

    def load(self) -> None:
        """Read the file once; without one, start from ``fallback`` (see the module doc)."""
        if self.loaded:
            return
        self.loaded = True
        try:
            if not self.persist:
                raise FileNotFoundError(self.path)
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            self.trials = {tid: TrialTrack(last=int(step), opens=1)
                           for tid, step in self.fallback.items() if step is not None}
            return
        except (OSError, ValueError):
            logger.warning("unreadable tracking state %s: starting afresh", self.path)
            return
        fields = TrialTrack.__dataclass_fields__
        self.trials = {tid: TrialTrack(**{k: v for k, v in entry.items() if k in fields})
                       for tid, entry in data.get("trials", {}).items()}

    def get(self, trial_id: str) -> TrialTrack:
        self.load()
        return self.trials.setdefault(trial_id, TrialTrack())

    def save(self) -> None:
        """Rewrite the file atomically; a failure to write is logged, never raised."""
        if not self.persist:
            return
        self.load()
        tmp = self.path.with_suffix(".json.tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps({"trials": {k: asdict(v) for k, v in self.trials.items()}},
                                      sort_keys=True), encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError:
            logger.warning("could not write the tracking state %s", self.path, exc_info=True)
            with contextlib.suppress(OSError):
                tmp.unlink()
