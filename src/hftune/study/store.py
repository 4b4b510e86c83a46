"""The study folder: layout, atomic JSON/CSV writes, the run lock, and reading it back.

Layout of ``<output_dir>/``::

    study.yaml          the resolved config the study ran with
    study.json          StudyRecord: status, metric, timing, best trial
    trials/<id>.json    TrialRecord per trial: config, state, every report, error
    trials.csv          one row per trial (config, state, score, best epoch, seconds)
    reports.csv         one row per evaluation (trial_id, epoch, step, metrics)
    .lock               held (flock) while a process runs the study
    lineage.jsonl       PBT/PB2 exploits: time, from/to trial, epoch, old and new config
    ray/                Ray Tune's own experiment state and the trials' checkpoints
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import MISSING
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from hftune.errors import StudyFolderError
from hftune.study.effective_config import scored_config
from hftune.study.records import StudyRecord, TrialRecord


class StudyStore:
    """Reads and writes one study folder. Writes are atomic (temp file + rename)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._lock_fh: Any = None

    # -- layout -------------------------------------------------------------------------------
    @property
    def trials_dir(self) -> Path:
        return self.root / "trials"

    @property
    def ray_dir(self) -> Path:
        """Ray's experiment folder of the study (of its first step, for a two-step strategy)."""
        return self.root / "ray"

    def experiment_dirs(self) -> list[Path]:
        """Every Ray experiment folder of the study: ``ray``, then a later step's ``ray-<phase>``
        (seeds-then-pbt runs its PBT step as an experiment of its own); those that exist."""
        later = sorted(p for p in self.root.glob(f"{self.ray_dir.name}-*") if p.is_dir())
        return [p for p in (self.ray_dir, *later) if p.is_dir()]

    def exists(self) -> bool:
        return (self.root / "study.json").is_file()

    # -- lock ---------------------------------------------------------------------------------
    def acquire_lock(self) -> None:
        """Hold the study's lock for this process; refuse if another process holds it. From
        then on the libraries' log lines go to the study's ``libraries.log``
        (:func:`hftune.study.library_log.attach_study_folder`)."""
        self.root.mkdir(parents=True, exist_ok=True)
        fh = open(self.root / ".lock", "a+")  # noqa: SIM115 - held until release_lock
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            raise StudyFolderError(
                f"{self.root}: another hftune process is running this study; wait for it "
                f"or choose another output_dir") from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        from hftune.study.library_log import attach_study_folder

        attach_study_folder(self.root)
        self._lock_fh = fh

    def is_locked(self) -> bool:
        """Whether some process holds the lock now."""
        path = self.root / ".lock"
        if not path.exists():
            return False
        with open(path) as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(fh, fcntl.LOCK_UN)
            return False

    def release_lock(self) -> None:
        if self._lock_fh is not None:
            fcntl.flock(self._lock_fh, fcntl.LOCK_UN)
            self._lock_fh.close()
            self._lock_fh = None

    # -- writes -------------------------------------------------------------------------------
    def write_config(self, config: dict[str, Any]) -> None:
        self._atomic_write(self.root / "study.yaml",
                           yaml.safe_dump(config, sort_keys=False, allow_unicode=True))

    def write_study(self, record: StudyRecord) -> None:
        self._write_json(self.root / "study.json", record.to_dict())

    def write_trial(self, record: TrialRecord) -> None:
        self._write_json(self.trials_dir / f"{record.trial_id}.json", record.to_dict())

    def write_tables(self, study: StudyRecord) -> None:
        """Write ``trials.csv`` and ``reports.csv`` from the trial records.

        A trial's ``config.*`` columns are the config in effect at the evaluation that gives
        it its score (for a PBT member scored before its last exploit, not its final config;
        see :func:`hftune.study.effective_config.scored_config`).
        """
        trials = self.read_trials()
        rows, reports = [], []
        for t in trials:
            config = scored_config(t, study.metric, study.mode, study.score)
            rows.append({
                "trial_id": t.trial_id, "state": t.state,
                **{f"config.{k}": v for k, v in config.items()},
                **t.summary(study.metric, study.mode, study.score), "node_id": t.node_id,
            })
            reports.extend({"trial_id": t.trial_id, **r} for r in t.reports)
        pd.DataFrame(rows).to_csv(self.root / "trials.csv.tmp", index=False)
        os.replace(self.root / "trials.csv.tmp", self.root / "trials.csv")
        pd.DataFrame(reports).to_csv(self.root / "reports.csv.tmp", index=False)
        os.replace(self.root / "reports.csv.tmp", self.root / "reports.csv")

    def append_lineage(self, event: dict[str, Any]) -> None:
        """Append one exploit event to ``lineage.jsonl``."""
        with open(self.root / "lineage.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps(event, default=_json_default) + "\n")

    def forget_trials(self, trial_ids: set[str]) -> None:
        """Delete these trials' records and the exploit events that involve them."""
        for trial_id in trial_ids:
            (self.trials_dir / f"{trial_id}.json").unlink(missing_ok=True)
        self.drop_lineage(lambda e: str(e.get("to_trial")) in trial_ids
                          or str(e.get("from_trial")) in trial_ids)

    def drop_lineage(self, drop: Callable[[dict[str, Any]], bool]) -> int:
        """Rewrite ``lineage.jsonl`` (atomically) without the events ``drop`` selects; returns
        how many were dropped."""
        if not (self.root / "lineage.jsonl").is_file():
            return 0
        events = self.read_lineage()
        kept = [e for e in events if not drop(e)]
        if len(kept) != len(events):
            self._atomic_write(self.root / "lineage.jsonl",
                               "".join(json.dumps(e, default=_json_default) + "\n"
                                       for e in kept))
        return len(events) - len(kept)

    # -- reads --------------------------------------------------------------------------------
    def read_study(self) -> StudyRecord:
        """The study record in ``study.json``. Raises :class:`StudyFolderError` (one line that
        names the file) when there is none, or when it is not JSON or not a study record
        (not an object, or a required key missing)."""
        path = self.root / "study.json"
        if not path.is_file():
            raise StudyFolderError(f"{self.root}: not a study folder (no study.json)")
        data = _read_json(path)
        if not isinstance(data, dict):
            raise StudyFolderError(f"{path}: not a study record (a JSON "
                                   f"{type(data).__name__}, not an object)")
        missing = [name for name, f in StudyRecord.__dataclass_fields__.items()
                   if f.default is MISSING and f.default_factory is MISSING
                   and name not in data]
        if missing:
            raise StudyFolderError(f"{path}: not a study record (missing "
                                   f"{', '.join(missing)})")
        try:
            return StudyRecord.from_dict(data)
        except (TypeError, ValueError) as exc:
            raise StudyFolderError(f"{path}: not a study record ({exc})") from None

    def read_config(self) -> dict[str, Any]:
        """The config in ``study.yaml``. Raises :class:`StudyFolderError` (one line that names
        the file) when it is missing or unreadable, not YAML, or not a mapping."""
        path = self.root / "study.yaml"
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise StudyFolderError(f"{path}: cannot be read as YAML ({reason})") from None
        if not isinstance(data, dict):
            raise StudyFolderError(f"{path}: not a study config (a YAML "
                                   f"{type(data).__name__}, not a mapping)")
        return data

    def read_trials(self) -> list[TrialRecord]:
        """All trial records, in trial-id order."""
        if not self.trials_dir.is_dir():
            return []
        records = []
        for path in sorted(self.trials_dir.glob("*.json")):
            data = _read_json(path)
            try:
                if not isinstance(data, dict):
                    raise TypeError(f"a JSON {type(data).__name__}, not an object")
                records.append(TrialRecord.from_dict(data))
            except (TypeError, ValueError) as exc:
                raise StudyFolderError(f"{path}: not a trial record ({exc})") from None
        return records

    def read_lineage(self) -> list[dict[str, Any]]:
        """Every exploit, in the order they happened (empty for strategies that never clone).

        A last line that is not a JSON object is skipped (being written, or cut short by a
        killed run), as :func:`hftune.report.data.read_lineage` does; any other such line is a
        :class:`StudyFolderError` naming the file and line (an exploit would be missing).
        """
        path = self.root / "lineage.jsonl"
        if not path.is_file():
            return []
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise StudyFolderError(f"{path}: cannot be read ({exc})") from None
        numbered = [(n, line) for n, line in enumerate(lines, 1) if line.strip()]
        events = []
        for n, line in numbered:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                event = None
            if isinstance(event, dict):
                events.append(event)
            elif n != numbered[-1][0]:
                raise StudyFolderError(f"{path}: line {n} is not a JSON object (an exploit "
                                       f"event)")
        return events

    def disk_bytes(self) -> int:
        """Bytes the study folder takes (checkpoints included)."""
        return sum(p.stat().st_size for p in self.root.rglob("*") if p.is_file())

    # -- helpers ------------------------------------------------------------------------------
    def _write_json(self, path: Path, data: Any) -> None:
        self._atomic_write(path, json.dumps(data, indent=1, default=_json_default))

    @staticmethod
    def _atomic_write(path: Path, text: str) -> None:
        """Write ``text`` to a temporary file next to ``path``, then rename it over ``path``.
        The file gets the mode a plainly created one would (``0o666`` less the umask), not
        ``mkstemp``'s owner-only ``0o600``."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                os.fchmod(fh.fileno(), 0o666 & ~current_umask())
                fh.write(text)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def current_umask() -> int:
    """The process umask: from ``/proc/self/status`` (Linux), else by setting it (briefly to
    the strictest mask, so that nothing made meanwhile is too open) and setting it back."""
    try:
        for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError, UnicodeDecodeError):
        pass
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


def _read_json(path: Path) -> Any:
    """The JSON in ``path``; :class:`StudyFolderError` naming the file when it is unreadable
    or not JSON."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise StudyFolderError(f"{path}: cannot be read as JSON ({reason})") from None


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
