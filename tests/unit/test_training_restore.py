"""A restore (PBT exploit + explore) on the real Trainer path: what the optimizer really uses.

The explored hyperparameters must be the ones in force at every optimizer step after the
restore, not the donor's: learning rate (through the LR scheduler's base rates and the config's
schedule), weight decay, Adam's betas and epsilon. A clone of a trial that had finished reports
the step its checkpoint records.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch

from hftune.testing.records import KeptRun
from hftune.training.checkpoint import ApplyConfigOnRestore, read_meta
from hftune.training.trainable import TrialSetup, run_trial

DONOR = {
    "learning_rate": 1e-3,
    "weight_decay": 0.0,
    "num_train_epochs": 3,
    "per_device_train_batch_size": 16,
}  # 64 rows: 4 steps an epoch, 12 in all


@pytest.fixture(scope="module")
def setup(checkpointing_setup: TrialSetup) -> TrialSetup:
    """64 training rows of RTE on the tiny BERT, a full checkpoint at every evaluation."""
    return checkpointing_setup


@pytest.fixture(scope="module")
def donor_checkpoints(setup: TrialSetup, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """The donor's checkpoints after epochs 1, 2 and 3 (steps 4, 8, 12), kept as Ray keeps them."""
    base = tmp_path_factory.mktemp("donor")
    kept = KeptRun(base / "store")
    run_trial(DONOR, setup, kept, str(base / "donor"), trial_id="donor")
    assert [read_meta(k).global_step for k in kept.checkpoints] == [4, 8, 12]
    return kept.checkpoints


@pytest.fixture
def optimizer_steps():
    """What every optimizer steps with, read just before its ``step`` (all torch optimizers)."""
    from torch.optim.optimizer import register_optimizer_step_pre_hook

    seen: list[list[dict[str, Any]]] = []

    def hook(optimizer: Any, args: Any, kwargs: Any) -> None:
        seen.append([{k: v for k, v in g.items() if k != "params"} for g in optimizer.param_groups])

    handle = register_optimizer_step_pre_hook(hook)
    yield seen
    handle.remove()


def test_explored_values_are_what_every_later_step_uses(
    setup: TrialSetup, donor_checkpoints: list[Path], optimizer_steps: list, tmp_path: Path
) -> None:
    """Exploit at epoch 1, explore lr, weight decay, betas, epsilon and the batch size: the
    optimizer steps with the new values at every step after the restore, on the new linear
    schedule (6 steps of batch 32) continued at step 2 — not the donor's base rate, schedule
    length, betas or epsilon."""
    events: list[dict] = []
    new = {
        "learning_rate": 4e-4,
        "weight_decay": 0.2,
        "adam_beta1": 0.5,
        "adam_beta2": 0.9,
        "adam_epsilon": 1e-6,
        "num_train_epochs": 3,
        "per_device_train_batch_size": 32,
    }
    run_trial(
        new,
        setup,
        lambda r, f: events.append(r),
        str(tmp_path),
        trial_id="exploiter",
        restore_from=donor_checkpoints[0],
    )
    assert [e["step"] for e in events] == [4, 6]
    assert len(optimizer_steps) == 4  # steps 2, 3, 4, 5 (0-based) of 6
    decayed = [groups[0] for groups in optimizer_steps]
    assert [g["lr"] for g in decayed] == pytest.approx([4e-4 * (6 - s) / 6 for s in (2, 3, 4, 5)])
    assert all(g["weight_decay"] == 0.2 for g in decayed)
    for groups in optimizer_steps:
        assert [tuple(g["betas"]) for g in groups] == [(0.5, 0.9)] * len(groups)
        assert [g["eps"] for g in groups] == [1e-6] * len(groups)
    applied = events[0]["applied"]
    assert applied["adam_beta1"] == 0.5 and applied["adam_beta2"] == 0.9
    assert applied["adam_epsilon"] == 1e-6


def test_clone_of_a_finished_trial_reports_its_checkpoints_step(
    setup: TrialSetup, donor_checkpoints: list[Path], tmp_path: Path
) -> None:
    """The donor's epoch-1 checkpoint (step 4 at batch 16) ends a 1-epoch config at batch 32:
    its step there is 2, in the report as in the checkpoint's meta, so export and the held-out
    estimate (which match checkpoints to reports by step) find the clone's checkpoint. The
    donor's first report's start-up timings are not the clone's."""
    from hftune.study.checkpoints import recorded_checkpoint

    sent: list[tuple[dict, Any]] = []

    def report(record: dict, folder: Path | None) -> None:
        sent.append((record, read_meta(folder) if folder is not None else None))

    donor = read_meta(donor_checkpoints[0])
    assert donor.global_step == 4 and "setup_s" in donor.record
    clone = {"num_train_epochs": 1, "per_device_train_batch_size": 32}
    run_trial(
        clone, setup, report, str(tmp_path), trial_id="clone", restore_from=donor_checkpoints[0]
    )
    assert len(sent) == 1
    record, meta = sent[0]
    assert not record["trained"] and record["trained_all"] and record["epoch"] == 1.0
    assert meta is not None and meta.trial_id == "clone"
    assert record["step"] == meta.global_step == 2
    assert record["accuracy"] == donor.record["accuracy"]
    assert not {"applied", "setup_s", "first_step_s", "learning_rate"} & record.keys()
    trial = SimpleNamespace(trial_id="clone", reports=[record])
    assert recorded_checkpoint([meta], trial, "accuracy", "max") == meta


# The callback on its own, with plain torch optimizers ------------------------------------------


def _restored(receiver: torch.optim.Optimizer, donor: torch.optim.Optimizer) -> Any:
    """``receiver`` with ``donor``'s state loaded, as ``Trainer`` loads a checkpoint's."""
    receiver.load_state_dict(donor.state_dict())
    return receiver


def _params() -> list[torch.nn.Parameter]:
    return [torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(1))]


def _begin(apply: ApplyConfigOnRestore, optimizer: Any, **arguments: Any) -> None:
    from transformers import TrainerControl, TrainerState, TrainingArguments

    args = TrainingArguments(output_dir="unused", report_to=[], use_cpu=True, **arguments)
    apply.on_train_begin(
        args, TrainerState(global_step=2), TrainerControl(), optimizer=optimizer, lr_scheduler=None
    )


def test_only_the_adam_keys_the_config_sets_are_applied() -> None:
    params = _params()
    donor = torch.optim.AdamW(params, lr=1e-3, betas=(0.8, 0.99), eps=1e-7)
    receiver = _restored(torch.optim.AdamW(params, lr=4e-4, betas=(0.5, 0.9), eps=1e-6), donor)
    apply = ApplyConfigOnRestore(config_keys={"learning_rate", "adam_beta2"})
    _begin(apply, receiver, learning_rate=4e-4, adam_beta1=0.5, adam_beta2=0.9, adam_epsilon=1e-6)
    group = receiver.param_groups[0]
    assert group["lr"] == 4e-4 and tuple(group["betas"]) == (0.5, 0.9)
    assert group["eps"] == 1e-7  # adam_epsilon is not in the trial's config
    assert apply.applied is not None and apply.applied["adam_beta2"] == 0.9
    assert "adam_epsilon" not in apply.applied


def test_an_optimizer_without_betas_is_left_without_them() -> None:
    """``adam_*`` in the config, an optimizer that takes no betas (SGD): nothing to apply."""
    params = _params()
    receiver = _restored(
        torch.optim.SGD(params, lr=4e-4, momentum=0.9),
        torch.optim.SGD(params, lr=1e-3, momentum=0.9),
    )
    _begin(
        ApplyConfigOnRestore(config_keys={"adam_beta1", "adam_epsilon"}),
        receiver,
        learning_rate=4e-4,
        adam_beta1=0.5,
        adam_epsilon=1e-6,
    )
    assert all("betas" not in g and "eps" not in g for g in receiver.param_groups)
    assert receiver.param_groups[0]["lr"] == 4e-4


def test_a_checkpoint_of_another_optimizer_is_refused() -> None:
    """An exploit whose config changed ``optim``: the restored param groups are AdamW's, which
    SGD cannot step with; the restore says so instead of failing at the first step."""
    params = _params()
    receiver = _restored(
        torch.optim.SGD(params, lr=4e-4, momentum=0.9), torch.optim.AdamW(params, lr=1e-3)
    )
    with pytest.raises(ValueError, match="cannot change `optim`"):
        _begin(ApplyConfigOnRestore(), receiver, learning_rate=4e-4)
