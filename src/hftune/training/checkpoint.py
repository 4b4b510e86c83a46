"""Trial checkpoints and what a restore (PBT's exploit) must do so that explore takes effect.

A checkpoint is the ``Trainer``'s own folder (model weights as safetensors, optimizer and
LR-scheduler state, RNG states, ``trainer_state.json``) plus ``hftune.json``: which trial wrote
it, at which epoch and step, with which config, and the evaluation record it was taken at.

**The restore rule (documented in the README).** A trial that continues from a checkpoint —
its own after a crash, or a stronger trial's after a PBT exploit — gets the checkpoint's
weights, optimizer moments, step and epoch counters and RNG states, and then *its own* config:

* the optimizer's learning rate and weight decay are set to the config's values (the saved
  optimizer state would otherwise silently bring back the old ones); so are Adam's betas and
  epsilon (``adam_beta1``, ``adam_beta2``, ``adam_epsilon``) where the trial's config sets them
  and its optimizer has them;
* the optimizer itself (``optim``) cannot change: a checkpoint's optimizer state only fits the
  kind of optimizer that saved it, and a restore into another kind fails with a clear error;
* the LR schedule is the one the config defines (warmup, decay over the config's total steps
  at the config's batch size), continued at the step the checkpoint had reached: the learning
  rate right after the restore is ``new_lr × schedule(step)``;
* a new batch size changes the DataLoader; the step counter is re-expressed in steps of the new
  batch size (``epochs_done × steps_per_epoch(new batch)``), so the remaining epochs are counted
  correctly;
* a trial whose checkpoint has already reached the config's ``num_train_epochs`` (or its
  ``max_steps``, when the config sets one) trains no more.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from hftune._compat.torch import move_lr_schedule

META_FILE = "hftune.json"
TRAINER_STATE = "trainer_state.json"


@dataclass(frozen=True)
class CheckpointMeta:
    """A checkpoint folder and what its ``hftune.json`` says about it."""

    path: Path
    trial_id: str
    epoch: float
    global_step: int
    config: dict[str, Any]
    record: dict[str, Any]

    def value(self, metric: str) -> float | None:
        """The recorded value of ``metric`` at this checkpoint (``None`` if absent, NaN or
        infinite: no score, as in the trial records)."""
        raw = self.record.get(metric)
        if raw is None:
            return None
        value = float(raw)
        return value if math.isfinite(value) else None


@dataclass(frozen=True)
class RestoredState:
    """What a restore brought in: the local checkpoint copy and where it came from."""

    meta: CheckpointMeta
    fallback: bool = False
    global_step: int = 0  # the checkpoint's step in optimizer steps of the restoring config
    source: str = ""  # the checkpoint folder's name (``checkpoint_000003``) it was copied from

    @property
    def folder(self) -> Path:
        return self.meta.path


def write_meta(folder: Path, *, trial_id: str, epoch: float, global_step: int,
               config: dict[str, Any], record: dict[str, Any]) -> None:
    """Write ``hftune.json`` into a checkpoint folder."""
    meta = {"trial_id": trial_id, "epoch": epoch, "global_step": global_step,
            "config": config, "record": record}
    (Path(folder) / META_FILE).write_text(json.dumps(meta, default=str), encoding="utf-8")


def read_meta(folder: Path) -> CheckpointMeta:
    """Read a checkpoint folder's ``hftune.json``."""
    meta = json.loads((Path(folder) / META_FILE).read_text(encoding="utf-8"))
    return CheckpointMeta(path=Path(folder), trial_id=str(meta["trial_id"]),
                          epoch=float(meta["epoch"]), global_step=int(meta["global_step"]),
                          config=dict(meta.get("config") or {}),
                          record=dict(meta.get("record") or {}))


def find_checkpoint(path: Path) -> tuple[Path, bool]:
    """The checkpoint folder to restore for ``path``: ``(folder, fallback_used)``.

    ``path`` itself when it holds a checkpoint. A link there is a resume's stand-in for a
    checkpoint that was gone (:func:`hftune.study.resume.stand_in_for_lost_checkpoints`): its
    target, as a fallback. A ``path`` that is gone: the newest checkpoint beside it (same
    trial) at or before it, as a fallback, never a later one (a later state would not match the
    history recorded up to ``path``). Raises :class:`FileNotFoundError` naming ``path`` when
    there is none.
    """
    path = Path(path)
    if path.is_symlink() and (path / META_FILE).is_file():
        return path.resolve(), True
    if (path / META_FILE).is_file():
        return path, False
    earlier = sorted(p for p in path.parent.glob("checkpoint_*")
                     if p.name <= path.name and not p.is_symlink() and (p / META_FILE).is_file())
    if not earlier:
        raise FileNotFoundError(f"checkpoint {path} is gone and no earlier checkpoint of its "
                                f"trial is kept")
    return earlier[-1], True


def local_checkpoint_path(checkpoint: Any) -> Path:
    """A Ray ``Checkpoint``'s folder on this machine, without copying local checkpoints.

    On local storage this is the checkpoint's own path, even if a checkpoint budget deleted it
    meanwhile (:func:`find_checkpoint` then falls back); remote checkpoints are downloaded.
    """
    import pyarrow.fs

    if isinstance(checkpoint.filesystem, pyarrow.fs.LocalFileSystem):
        return Path(checkpoint.path)
    return Path(checkpoint.to_directory())


def optimizer_steps_per_epoch(train_rows: int, batch_size: int, grad_accumulation: int = 1) -> int:
    """Optimizer steps in one epoch, counted as ``Trainer`` counts them: every batch of the
    epoch, the last one possibly short, and a last accumulation group possibly short."""
    batches = math.ceil(train_rows / batch_size)
    return max(math.ceil(batches / grad_accumulation), 1)


def prepare_restore(source: Path, local: Path, *, train_rows: int, batch_size: int,
                    grad_accumulation: int = 1) -> RestoredState:
    """Copy a checkpoint to ``local`` and re-express its step counter for ``batch_size``."""
    folder, fallback = find_checkpoint(source)
    if local.exists():
        shutil.rmtree(local)
    shutil.copytree(folder, local)
    meta = read_meta(local)
    steps_per_epoch = optimizer_steps_per_epoch(train_rows, batch_size, grad_accumulation)
    state_path = local / TRAINER_STATE
    state = json.loads(state_path.read_text(encoding="utf-8"))
    state["global_step"] = int(round(meta.epoch * steps_per_epoch))
    state["epoch"] = meta.epoch
    state_path.write_text(json.dumps(state), encoding="utf-8")
    return RestoredState(meta, fallback, state["global_step"], folder.name)


# Param-group keys of the optimizer Trainer builds that a trial's config sets through
# TrainingArguments fields (AdamW and other Adam-like optimizers: betas, eps).
ADAM_GROUP_KEYS: dict[str, tuple[str, ...]] = {
    "betas": ("adam_beta1", "adam_beta2"),
    "eps": ("adam_epsilon",),
}


class ApplyConfigOnRestore(TrainerCallback):
    """After the Trainer has loaded a checkpoint's optimizer and scheduler, apply the config.

    ``on_train_begin`` runs after ``Trainer`` restored the optimizer and LR-scheduler states
    (which bring back the saved param-group values: the checkpoint's trial's hyperparameters):

    * the learning rate and weight decay in the optimizer's param groups, and the scheduler's
      base rates and step, are set from the trial's ``TrainingArguments``; the scheduler's
      ``base_lrs`` is what a ``LambdaLR`` multiplies at every later step, so the config's learning
      rate stays in force after the first step. The schedule's lambdas are the ones ``Trainer``
      built from this trial's arguments (the saved scheduler state does not replace
      transformers' schedule functions);
    * Adam's ``betas`` and ``eps`` are set in every param group that has them, for those of
      ``adam_beta1``, ``adam_beta2``, ``adam_epsilon`` that ``config_keys`` (the trial's config)
      names. The values are the optimizer's own ``defaults``: what ``Trainer`` built it with from
      this trial's arguments (so an optimizer that does not take ``adam_epsilon`` keeps its own
      ``eps``);
    * a restored optimizer whose param groups lack keys this trial's optimizer has (the
      checkpoint was saved by another ``optim``) raises :class:`ValueError`.

    ``applied`` records what the optimizer held right after (read back from the optimizer, for
    the trial's first report).
    """

    def __init__(self, config_keys: Iterable[str] = ()) -> None:
        self.config_keys = frozenset(config_keys)
        self.applied: dict[str, float] | None = None

    def on_train_begin(self, args: TrainingArguments, state: TrainerState,
                       control: TrainerControl, **kwargs: Any) -> None:
        optimizer, scheduler = kwargs.get("optimizer"), kwargs.get("lr_scheduler")
        if optimizer is None:
            return
        defaults = dict(getattr(optimizer, "defaults", None) or {})
        groups = optimizer.param_groups
        check_same_optimizer(groups, defaults)
        # Trainer.create_optimizer builds [decayed params, no-decay params], in that order.
        groups[0]["weight_decay"] = args.weight_decay
        adam = self._adam_keys(defaults)
        for key in adam:
            for group in groups:
                if key in group:
                    group[key] = defaults[key]
        step = state.global_step
        if scheduler is not None and hasattr(scheduler, "base_lrs"):
            lambdas = getattr(scheduler, "lr_lambdas", None) or [lambda _s: 1.0] * len(groups)
            new_lrs = [args.learning_rate * lam(step) for lam in lambdas]
            move_lr_schedule(scheduler, [args.learning_rate] * len(groups), step, new_lrs)
        else:
            new_lrs = [args.learning_rate] * len(groups)
        for group, lr in zip(groups, new_lrs, strict=True):
            group["lr"] = lr
            group["initial_lr"] = args.learning_rate
        applied = {"learning_rate": float(groups[0]["lr"]),
                   "base_learning_rate": float(args.learning_rate),
                   "weight_decay": float(groups[0]["weight_decay"]),
                   "global_step": int(step)}
        if "betas" in adam and "betas" in groups[0]:
            applied.update(adam_beta1=float(groups[0]["betas"][0]),
                           adam_beta2=float(groups[0]["betas"][1]))
        if "eps" in adam and "eps" in groups[0]:
            applied["adam_epsilon"] = float(groups[0]["eps"])
        self.applied = applied

    def _adam_keys(self, defaults: dict[str, Any]) -> list[str]:
        """The Adam param-group keys to set: those the config sets and the optimizer takes."""
        return [key for key, fields in ADAM_GROUP_KEYS.items()
                if key in defaults and self.config_keys.intersection(fields)]


def check_same_optimizer(groups: list[dict[str, Any]], defaults: dict[str, Any]) -> None:
    """Raise :class:`ValueError` if restored ``groups`` lack keys of the optimizer's ``defaults``.

    torch's ``Optimizer.load_state_dict`` replaces each param group's values with the saved
    ones; a checkpoint saved by another kind of optimizer (another ``optim``) leaves groups the
    optimizer cannot step with (its first step would fail on a missing key).
    """
    missing = sorted({key for key in defaults for group in groups if key not in group})
    if missing:
        raise ValueError(
            f"the checkpoint's optimizer state is not this trial's optimizer's (its param groups "
            f"lack {', '.join(missing)}): a restore cannot change `optim`")
