"""A two-evaluation Ray Tune trainable that raises for one config: the recorder, the study's end
and a resume through real Ray Tune, in seconds (no model). Importable on Ray's workers."""

from __future__ import annotations

from typing import Any

FAILING_X = 2


def two_evaluations_or_raise(config: dict[str, Any]) -> None:
    """Reports two evaluations (``accuracy`` grows with ``config["x"]``), the first with
    ``worker_pid`` as a real trial's first report has it; raises :class:`ValueError` when
    ``config["x"] == FAILING_X``."""
    from ray import tune

    if config["x"] == FAILING_X:
        raise ValueError(f"boom at x={config['x']}")
    for i in range(2):
        report = {"accuracy": 0.5 + config["x"] / 10 + i / 100, "epoch": i + 1.0,
                  "step": i + 1, "trained_all": i == 1, "elapsed_s": 0.1 * (i + 1)}
        if i == 0:
            report["worker_pid"] = 1
        tune.report(report)
