"""``hftune.training.checkpoint`` without a model: what a checkpoint's ``hftune.json`` keeps,
which checkpoint a restore falls back to, how the step counter is re-expressed, and what
``ApplyConfigOnRestore`` sets and records for optimizers and schedulers of every shape."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch

from hftune.training.checkpoint import (
    TRAINER_STATE,
    ApplyConfigOnRestore,
    find_checkpoint,
    optimizer_steps_per_epoch,
    prepare_restore,
    read_meta,
    write_meta,
)


def _checkpoint(folder: Path, epoch: float = 2.0, step: int = 8, **record: Any) -> Path:
    folder.mkdir(parents=True)
    write_meta(folder, trial_id="t1", epoch=epoch, global_step=step, config={"seed": 1},
               record=record)
    (folder / TRAINER_STATE).write_text(json.dumps({"global_step": step, "epoch": epoch}))
    return folder


def test_the_meta_keeps_values_json_cannot_hold_as_text(tmp_path: Path) -> None:
    folder = _checkpoint(tmp_path / "checkpoint_000001", where=tmp_path, accuracy=0.5)
    meta = read_meta(folder)
    assert meta.record["where"] == str(tmp_path) and meta.record["accuracy"] == 0.5
    assert (meta.trial_id, meta.epoch, meta.global_step, meta.config) == ("t1", 2.0, 8,
                                                                          {"seed": 1})


def test_a_value_that_is_not_finite_is_no_score(tmp_path: Path) -> None:
    meta = read_meta(_checkpoint(tmp_path / "c", loss=math.nan, f1=math.inf, accuracy=0.25))
    assert meta.value("loss") is None and meta.value("f1") is None
    assert meta.value("accuracy") == 0.25 and meta.value("absent") is None


def test_a_gone_checkpoint_falls_back_to_the_newest_earlier_one(tmp_path: Path) -> None:
    for n in (1, 2, 3, 5):
        _checkpoint(tmp_path / f"checkpoint_00000{n}")
    assert find_checkpoint(tmp_path / "checkpoint_000004") == (
        tmp_path / "checkpoint_000003", True)
    assert find_checkpoint(tmp_path / "checkpoint_000005") == (
        tmp_path / "checkpoint_000005", False)
    with pytest.raises(FileNotFoundError, match="checkpoint_000000"):
        find_checkpoint(tmp_path / "checkpoint_000000")


def test_steps_per_epoch_count_a_short_last_batch_and_accumulation() -> None:
    assert optimizer_steps_per_epoch(100, 10) == 10
    assert optimizer_steps_per_epoch(101, 10) == 11
    assert optimizer_steps_per_epoch(100, 10, 3) == 4
    assert optimizer_steps_per_epoch(1, 64, 8) == 1


def test_a_restore_copies_the_checkpoint_and_counts_its_steps_in_the_new_batches(
        tmp_path: Path) -> None:
    source = _checkpoint(tmp_path / "trial" / "checkpoint_000002", epoch=2.0, step=8)
    local = tmp_path / "local"
    local.mkdir()
    (local / "stale.txt").write_text("from an earlier restore")
    restored = prepare_restore(source, local, train_rows=100, batch_size=10, grad_accumulation=2)
    assert not (local / "stale.txt").exists()
    state = json.loads((local / TRAINER_STATE).read_text())
    assert state == {"global_step": 10, "epoch": 2.0}  # 2 epochs of 5 steps
    assert restored.global_step == 10 and restored.fallback is False
    assert restored.source == "checkpoint_000002" and restored.folder == local
    again = prepare_restore(source, local, train_rows=100, batch_size=10)
    assert again.global_step == 20  # no accumulation by default


def _optimizer(groups: int = 2, **kwargs: Any) -> torch.optim.Optimizer:
    params = [[torch.nn.Parameter(torch.zeros(2))], [torch.nn.Parameter(torch.zeros(1))]]
    return torch.optim.AdamW([{"params": p} for p in params[:groups]], lr=1e-3, **kwargs)


def _begin(apply: ApplyConfigOnRestore, optimizer: Any, scheduler: Any = None,
           step: int = 4, **arguments: Any) -> None:
    from transformers import TrainerControl, TrainerState, TrainingArguments

    args = TrainingArguments(output_dir="unused", report_to=[], use_cpu=True, **arguments)
    apply.on_train_begin(args, TrainerState(global_step=step), TrainerControl(),
                         optimizer=optimizer, lr_scheduler=scheduler)


def test_nothing_is_applied_before_a_restore() -> None:
    assert ApplyConfigOnRestore().applied is None


def test_what_is_applied_is_recorded_under_its_names() -> None:
    optimizer = _optimizer()
    apply = ApplyConfigOnRestore()
    _begin(apply, optimizer, learning_rate=2e-4, weight_decay=0.1)
    assert apply.applied == {"learning_rate": 2e-4, "base_learning_rate": 2e-4,
                             "weight_decay": 0.1, "global_step": 4}
    for group in optimizer.param_groups:
        assert group["lr"] == 2e-4 and group["initial_lr"] == 2e-4


def test_a_scheduler_without_lambdas_keeps_the_new_rate_flat() -> None:
    """A scheduler with base rates but no per-group lambdas (``StepLR``, not a ``LambdaLR``):
    the new rate in every group, the schedule moved to the restored step."""
    optimizer = _optimizer()
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=100)
    apply = ApplyConfigOnRestore()
    _begin(apply, optimizer, scheduler, learning_rate=3e-4)
    assert [g["lr"] for g in optimizer.param_groups] == [3e-4, 3e-4]
    assert scheduler.base_lrs == [3e-4, 3e-4] and scheduler.last_epoch == 4
    assert scheduler.get_last_lr() == [3e-4, 3e-4]


def test_a_scheduler_without_base_rates_is_left_alone() -> None:
    optimizer = _optimizer()
    scheduler = object()
    _begin(ApplyConfigOnRestore(), optimizer, scheduler, learning_rate=5e-4)
    assert [g["lr"] for g in optimizer.param_groups] == [5e-4, 5e-4]


def test_adams_epsilon_and_betas_are_recorded_only_where_the_config_sets_them() -> None:
    """One param group; the optimizer built from the new arguments (eps 1e-6), its group
    restored from the donor (eps 1e-8, betas 0.8/0.99): the config sets adam_epsilon only."""
    one_group = _optimizer(groups=1, eps=1e-6, betas=(0.9, 0.999))
    one_group.param_groups[0].update(eps=1e-8, betas=(0.8, 0.99))
    apply = ApplyConfigOnRestore(config_keys={"adam_epsilon"})
    _begin(apply, one_group, learning_rate=1e-4, adam_epsilon=1e-6)
    assert apply.applied is not None and apply.applied["adam_epsilon"] == 1e-6
    assert one_group.param_groups[0]["eps"] == 1e-6
    assert "adam_beta1" not in apply.applied and "adam_beta2" not in apply.applied
    assert one_group.param_groups[0]["betas"] == (0.8, 0.99)


def test_the_refusal_names_every_key_the_restored_groups_lack() -> None:
    optimizer = _optimizer()
    for group in optimizer.param_groups:
        del group["betas"], group["eps"]
    with pytest.raises(ValueError, match=r"lack betas, eps\)"):
        _begin(ApplyConfigOnRestore(), optimizer, learning_rate=1e-4)
