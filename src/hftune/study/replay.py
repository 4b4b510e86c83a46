"""``hftune replay``: train one model from scratch along the best trial's PBT schedule.

A PBT trial's final weights were shaped by every trial it cloned: after an exploit at epoch
``E`` from trial ``D``, the weights are ``D``'s at ``E``, which were in turn shaped by ``D``'s
own history. :func:`pbt_schedule` walks the lineage back and returns that history as segments
(from epoch, config); :func:`train_schedule` trains them one after another in one process, each
segment continuing from the previous one's checkpoint with the same restore rule as PBT
(:mod:`hftune.training.checkpoint`). :func:`replay_study` does that once and records every
evaluation in ``replay.json``; ``hftune rerun`` does it once per seed
(:mod:`hftune.study.rerun`).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from hftune.errors import StudyFolderError
from hftune.study.records import TrialRecord
from hftune.study.store import StudyStore


@dataclass(frozen=True)
class Segment:
    """Epochs ``(start, end]`` trained with ``config`` (``end`` None: to the config's end)."""

    start: float
    end: float | None
    config: dict[str, Any]
    trial_id: str


# What every exploit event of ``lineage.jsonl`` must hold to be walked, and what one that a
# schedule follows must hold besides.
EVENT_KEYS = ("time", "from_trial", "to_trial")
FOLLOWED_KEYS = ("epoch", "new_config")


def pbt_schedule(trials: list[TrialRecord], lineage: list[dict[str, Any]],
                 trial_id: str) -> list[Segment]:
    """The hyperparameter schedule that produced ``trial_id``'s final weights.

    Raises :class:`StudyFolderError` (one line) for an unknown trial, for an exploit event
    without ``time`` (a number), ``from_trial`` or ``to_trial``, for an event the schedule
    follows without ``epoch`` (a number) or ``new_config`` (a mapping), and for an exploit
    from a trial the study has no record of. Such an event is refused, not skipped: the
    schedule would silently leave that exploit out.
    """
    by_id = {t.trial_id: t for t in trials}
    if trial_id not in by_id:
        raise StudyFolderError(f"replay: no trial '{trial_id}' in the study")
    for event in lineage:
        check_event(event, EVENT_KEYS)

    def initial(tid: str) -> dict[str, Any]:
        if tid not in by_id:
            raise StudyFolderError(f"lineage.jsonl: an exploit copies trial '{tid}', which "
                                   f"has no record in the study; its schedule cannot be "
                                   f"followed")
        return by_id[tid].initial_config

    def walk(tid: str, before: float) -> list[tuple[float, dict[str, Any], str]]:
        into = [e for e in lineage if e["to_trial"] == tid and e["time"] < before]
        if not into:
            return [(0.0, initial(tid), tid)]
        last = max(into, key=lambda e: e["time"])
        check_event(last, FOLLOWED_KEYS)
        epoch = float(last["epoch"])
        upstream = [s for s in walk(last["from_trial"], last["time"]) if s[0] < epoch]
        return [*upstream, (epoch, dict(last["new_config"]), tid)]

    starts = walk(trial_id, float("inf"))
    return [Segment(start, starts[i + 1][0] if i + 1 < len(starts) else None, config, tid)
            for i, (start, config, tid) in enumerate(starts)]


def check_event(event: Any, keys: tuple[str, ...]) -> None:
    """Raise :class:`StudyFolderError` (one line, showing the event) unless ``event`` is a
    mapping with ``keys``, ``time`` and ``epoch`` among them numbers and ``new_config`` a
    mapping."""
    shown = repr(event)
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    if not isinstance(event, dict):
        raise StudyFolderError(f"lineage.jsonl: an exploit event is not an object ({shown})")
    missing = [key for key in keys if event.get(key) is None]
    if missing:
        raise StudyFolderError(f"lineage.jsonl: an exploit event lacks {', '.join(missing)} "
                               f"({shown}); the PBT schedule cannot be followed")
    for key in ("time", "epoch"):
        value = event[key] if key in keys else 0
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise StudyFolderError(f"lineage.jsonl: an exploit event's {key} is not a number "
                                   f"({shown}); the PBT schedule cannot be followed")
    if "new_config" in keys and not isinstance(event["new_config"], dict):
        raise StudyFolderError(f"lineage.jsonl: an exploit event's new_config is not a "
                               f"mapping ({shown}); the PBT schedule cannot be followed")


def check_epoch_schedule(root: Path, evaluation: Any) -> None:
    """Raise :class:`StudyFolderError` unless the study evaluated every epoch: a schedule's
    segments end at epoch boundaries."""
    if evaluation.every != "epoch":
        raise StudyFolderError(
            f"{root}: a PBT schedule is followed from epoch to epoch, and this study evaluated "
            f"(and exploited) every {evaluation.eval_steps} steps; replay and reruns of a "
            f"schedule work for studies with evaluation.every: epoch")


def train_schedule(segments: list[Segment], setup: Any, report: Callable[[dict[str, Any]], None],
                   scratch: Path, *, trial_id: str = "replay", seed: int | None = None) -> None:
    """Train ``segments`` one after another in this process, from scratch.

    Each segment continues from the previous one's checkpoint at its end epoch (copied to
    ``scratch``), with the same restore rule as PBT; ``report(record)`` gets every evaluation,
    with ``segment`` (its index). ``seed``, when given, is every segment's TrainingArguments
    seed. Only segments that end before the last save checkpoints (``setup.checkpoints`` is
    ignored). Raises :class:`StudyFolderError` when a segment ends before its end epoch.
    """
    from hftune.training.trainable import run_trial

    previous: Path | None = None
    for i, seg in enumerate(segments):
        kept: dict[float, Path] = {}

        def keep(record: dict[str, Any], folder: Path | None, i: int = i, seg: Segment = seg,
                 kept: dict[float, Path] = kept) -> None:
            report({**record, "segment": i})
            epoch = float(record["epoch"])
            if folder is not None and seg.end is not None and abs(epoch - seg.end) < 1e-9:
                dest = scratch / f"segment-{i}-epoch-{epoch:g}"
                shutil.copytree(folder, dest)
                kept[seg.end] = dest

        config = dict(seg.config) if seed is None else {**seg.config, "seed": seed}
        segment_setup = replace(setup, checkpoints="every" if seg.end is not None else "none")
        run_trial(config, segment_setup, keep, str(scratch / f"run-{i}"), trial_id=trial_id,
                  restore_from=previous, stop_at_epoch=seg.end)
        if seg.end is not None:
            if seg.end not in kept:
                raise StudyFolderError(
                    f"segment {i} of the schedule did not reach epoch {seg.end:g}; its config "
                    f"trains {seg.config.get('num_train_epochs')} epochs")
            previous = kept[seg.end]


def replay_study(root: Path, trial_id: str | None = None) -> dict[str, Any]:
    """Replay the best trial's (or ``trial_id``'s) schedule; writes and returns ``replay.json``.

    Only for studies that evaluate every epoch (segments end at epoch boundaries); raises
    :class:`StudyFolderError` for others, and while another process runs the study (holds its
    lock).
    """
    from hftune.study.reopen import prepare_again, study_config
    from hftune.study.runner import trial_setup

    store = StudyStore(root)
    study = store.read_study()
    if store.is_locked():
        raise StudyFolderError(f"{store.root}: another hftune process is running this study")
    target = trial_id or study.best_trial_id
    if target is None:
        raise StudyFolderError(f"{root}: the study has no best trial to replay")
    segments = pbt_schedule(store.read_trials(), store.read_lineage(), target)
    check_epoch_schedule(root, study_config(store, study).evaluation)
    prepared = prepare_again(store, study, tracking=False)
    reports: list[dict[str, Any]] = []
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="hftune-replay-") as scratch:
        train_schedule(segments, trial_setup(prepared), reports.append, Path(scratch))
    result = {"trial_id": target, "started_at": started, "seconds": time.time() - started,
              "schedule": [asdict(s) for s in segments],
              "reports": [{k: v for k, v in r.items() if k != "trial_config"} for r in reports],
              "metric": study.metric,
              "final": reports[-1].get(study.metric) if reports else None}
    (store.root / "replay.json").write_text(json.dumps(result, indent=1, default=str),
                                            encoding="utf-8")
    return result
