"""The live table of ``hftune run``/``resume``: best score under the study's rule, clean end."""

from __future__ import annotations

import io

from rich.console import Console

from hftune.study.progress import LiveProgress
from hftune.study.records import TrialRecord


def _records() -> dict[str, TrialRecord]:
    peaked = TrialRecord("peaked", {}, state="finished",
                         reports=[{"epoch": 1.0, "accuracy": 0.9}, {"epoch": 2.0, "accuracy": 0.6}])
    steady = TrialRecord("steady", {}, state="running",
                         reports=[{"epoch": 1.0, "accuracy": 0.7}, {"epoch": 2.0, "accuracy": 0.8}])
    return {"peaked": peaked, "steady": steady}


def _shown(rule: str) -> str:
    out = io.StringIO()
    with LiveProgress("accuracy", "max", Console(file=out, force_terminal=False, width=120),
                      rule=rule) as progress:
        progress.update(_records())
    return out.getvalue()


def test_best_follows_the_score_rule_and_output_ends_with_a_newline() -> None:
    best, last = _shown("best"), _shown("last")
    assert "0.9000 (peaked)" in best
    assert "0.8000 (steady)" in last and "(peaked)" not in last
    assert best.endswith("\n") and last.endswith("\n")  # what is printed next starts a line
