"""Refusals for new studies (``PolicyError``), searched values checked in pairs, and reopening a
study whose ``study.yaml`` an earlier hftune accepted."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest

from hftune.errors import ConfigError, HftuneWarning, PolicyError, waiving_policy
from hftune.study.loading import validate_study
from hftune.study.records import StudyRecord
from hftune.study.reopen import study_config
from hftune.study.store import StudyStore


def _config(**changes: Any) -> dict[str, Any]:
    return {"name": "t", "model": "m", "task": "rte",
            "search_space": {"learning_rate": [2e-5, 3e-5]}, **changes}


def test_two_searched_values_that_fail_together_are_refused() -> None:
    space = {"learning_rate": [2e-5, 3e-5], "fp16": [True, False], "bf16": [True, False]}
    with pytest.raises(PolicyError) as info:
        validate_study(_config(search_space=space))
    text = str(info.value)
    assert "\n" not in text
    assert "refuses fp16=True together with bf16=True" in text
    # each alone is fine: the pair is the problem
    validate_study(_config(search_space={"fp16": [True, False], "learning_rate": [2e-5]}))
    validate_study(_config(search_space={"bf16": [True, False], "learning_rate": [2e-5]}))
    # and a space where no trial can draw both is accepted
    validate_study(_config(search_space={"fp16": [True, False], "bf16": [False]}))


def test_pairs_of_choice_and_range_values_are_checked() -> None:
    space = {"fp16": {"choice": [True, False]}, "bf16": {"choice": [False, True]},
             "weight_decay": {"uniform": [0.0, 0.3]}}
    with pytest.raises(ConfigError, match="fp16=True together with bf16=True"):
        validate_study(_config(search_space=space))


def test_a_fixed_value_that_needs_a_searched_one_lets_other_searched_values_pass() -> None:
    # every trial gets dataloader_num_workers from the space; learning_rate is checked with it
    validate_study(_config(training={"dataloader_prefetch_factor": 2},
                           search_space={"dataloader_num_workers": [2, 4],
                                         "learning_rate": [1e-5, 2e-5]}))
    with pytest.raises(ConfigError, match="dataloader_prefetch_factor"):
        validate_study(_config(training={"dataloader_prefetch_factor": 2},
                               search_space={"learning_rate": [1e-5, 2e-5]}))


@pytest.mark.parametrize("changes", [
    {"training": {"dataloader_drop_last": True}},
    {"search_space": {"learning_rate": [2e-5], "dataloader_drop_last": [True, False]}},
    {"strategy": {"name": "pbt", "population": 2},
     "search_space": {"learning_rate": {"loguniform": [1e-5, 5e-5]},
                      "optim": {"choice": ["adamw_torch", "sgd"]}}},
    {"strategy": {"name": "pbt", "population": 2}, "training": {"lr_scheduler_type": "greedy"},
     "search_space": {"learning_rate": {"loguniform": [1e-5, 5e-5]}}},
])
def test_policy_refusals_are_waived_only_on_request(changes: dict[str, Any]) -> None:
    with pytest.raises(PolicyError):
        validate_study(_config(**changes))
    with waiving_policy() as waived:
        cfg = validate_study(_config(**changes))
    assert len(waived) >= 1 and all("\n" not in m for m in waived)
    assert cfg.name == "t"
    with pytest.raises(PolicyError):  # the waiver ends with the block
        validate_study(_config(**changes))


def test_other_config_errors_are_never_waived() -> None:
    with waiving_policy(), pytest.raises(ConfigError) as info:
        validate_study(_config(training={"optim": "adamw"}))
    assert not isinstance(info.value, PolicyError)


def test_a_study_run_with_a_now_refused_setting_reopens_with_a_warning(tmp_path: Path) -> None:
    store = StudyStore(tmp_path / "study")
    store.root.mkdir()
    store.write_config(_config(training={"dataloader_drop_last": True}))
    study = StudyRecord(name="t", status="finished", strategy="grid", metric="accuracy",
                        mode="max")
    store.write_study(study)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cfg = study_config(store, study)
    assert cfg.training["dataloader_drop_last"] is True
    ours = [w for w in caught if issubclass(w.category, HftuneWarning)]
    assert len(ours) == 1
    text = str(ours[0].message)
    assert "study.yaml: training.dataloader_drop_last: not supported" in text
    assert "already ran with it" in text


def test_the_cli_prints_hftune_warnings_as_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    from hftune.cli.main import _show_warning

    _show_warning(HftuneWarning("study.yaml: x"), HftuneWarning, "f.py", 1)
    assert capsys.readouterr().err == "warning: study.yaml: x\n"
