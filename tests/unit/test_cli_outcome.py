"""What ``hftune run`` and ``resume`` print when a study ends: the counts, the selected trial,
the folder and, after a success, the next commands with the real folder; exit 1 when no trial
has a score."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
import typer

from hftune.cli.run import print_outcome
from hftune.study.records import StudyRecord
from hftune.study.runner import StudyResult
from hftune.testing.records import STUDY_DEFAULTS, trial_record


def _result(root: Path, trials: list) -> StudyResult:
    study = StudyRecord(name="s", **STUDY_DEFAULTS, best_trial_id="b", best_value=0.75,
                        best_epoch=1.0, wall_s=12.0)
    return StudyResult(study=study, trials=trials, root=root)


def test_a_success_names_the_selected_trial_and_the_next_commands(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "my study"
    print_outcome(_result(root, [trial_record("a", [0.5]), trial_record("b", [0.75])]))
    out = capsys.readouterr().out
    assert "0.7500" in out and "trial b" in out
    assert f"hftune report {shlex.quote(str(root))} -o report.html" in out
    assert f"hftune export {shlex.quote(str(root))} -o best-model" in out


def test_no_score_exits_1_without_next_commands(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(typer.Exit) as ended:
        print_outcome(_result(tmp_path, [trial_record("a", [], state="errored")]))
    assert ended.value.exit_code == 1
    assert "hftune export" not in capsys.readouterr().out
