"""Which config a trial was training with when it made a given evaluation (PBT exploits).

A PBT member's record keeps its *latest* config in ``config``; ``config_history`` (written by
:class:`~hftune.study.recorder.StudyRecorder`) says what was in effect from when:
``[{"epoch": 0.0, "config": first}, {"epoch": E, "config": new, "from_trial": donor}, ...]``,
where ``E`` is the epoch of the checkpoint the member continued from (``restored_epoch``). A
trial's score may come from an evaluation made before its last exploit, so tables that show a
score next to a config must show the config of that evaluation: :func:`scored_config`.

Part of the study layer: the record knows which config made its scored evaluation, so the
study's own tables (``trials.csv``, ``hftune status``) and the report (which reads the records)
ask this module.
"""

from __future__ import annotations

from typing import Any

from hftune.study.records import TrialRecord


def _history(trial: TrialRecord) -> list[dict[str, Any]]:
    """The well-formed entries of ``trial.config_history`` (each with a dict ``config``)."""
    return [h for h in trial.config_history or []
            if isinstance(h, dict) and isinstance(h.get("config"), dict)]


def _epoch(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def config_at_epoch(trial: TrialRecord, epoch: float | None) -> dict[str, Any]:
    """The config the trial trained with up to ``epoch`` (for an evaluation at that epoch).

    The config of the last ``config_history`` entry whose epoch is *below* ``epoch``: an entry
    at epoch ``E`` starts at a checkpoint of epoch ``E``, so it shapes the evaluations after
    ``E``, while the trial's own evaluation at ``E`` came before the switch. The first entry
    applies from the start whatever its epoch; entries without an epoch are skipped. Without a
    history (no exploit), or with ``epoch=None``, the trial's ``config``. Returns a copy.

    Epochs alone are ambiguous when a member continued from a checkpoint older than its own
    last evaluation (two evaluations at one epoch, under two configs) or cloned a finished
    trial (an evaluation at exactly ``E``, under the new config); :func:`config_of_report`
    resolves those from the order of the reports.
    """
    history = _history(trial)
    if not history or epoch is None:
        return dict(trial.config)
    config = history[0]["config"]
    for entry in history[1:]:
        at = _epoch(entry.get("epoch"))
        if at is not None and at < float(epoch) - 1e-9:
            config = entry["config"]
    return dict(config)


def _starts_entry(report: dict[str, Any], entry: dict[str, Any]) -> bool:
    """Whether ``report`` is the first one of the run that ``entry`` of the history records."""
    if report.get("restored_from") is None or report.get("restored_from") != entry.get(
            "from_trial"):
        return False
    a, b = _epoch(report.get("restored_epoch")), _epoch(entry.get("epoch"))
    return a == b if a is not None and b is not None else a is b


def config_of_report(trial: TrialRecord, report: dict[str, Any]) -> dict[str, Any]:
    """The config in effect when ``trial`` made ``report`` (one of ``trial.reports``).

    The recorder adds a history entry exactly when a run starts from a checkpoint with another
    trial's weights or another config, and that run's first report carries ``restored_from``
    and ``restored_epoch``. When every entry after the first is matched, in order, by such a
    report, the entry in effect is read from the report's position in ``trial.reports``;
    otherwise (reports a restart replaced, hand-written records) from its epoch, by
    :func:`config_at_epoch`. Returns a copy.
    """
    history = _history(trial)
    if len(history) < 2:
        return config_at_epoch(trial, _epoch(report.get("epoch")))
    position = next((i for i, r in enumerate(trial.reports) if r is report), None)
    if position is None:
        position = next((i for i, r in enumerate(trial.reports) if r == report), None)
    if position is not None:
        index, index_at_report = 0, None
        for i, r in enumerate(trial.reports):
            if index + 1 < len(history) and _starts_entry(r, history[index + 1]):
                index += 1
            if i == position:
                index_at_report = index
        if index == len(history) - 1 and index_at_report is not None:
            return dict(history[index_at_report]["config"])
    return config_at_epoch(trial, _epoch(report.get("epoch")))


def scored_config(trial: TrialRecord, metric: str, mode: str,
                  rule: str = "best") -> dict[str, Any]:
    """The config in effect at the evaluation that gives ``trial`` its score (see
    :meth:`~hftune.study.records.TrialRecord.scored_report`); the trial's ``config`` when it
    has no score yet. Returns a copy."""
    report = trial.scored_report(metric, mode, rule)
    return dict(trial.config) if report is None else config_of_report(trial, report)
