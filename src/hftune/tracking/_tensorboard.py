"""TensorBoard: one event folder per trial, ``<study folder>/tensorboard/<trial id>/``.

Written with ``torch.utils.tensorboard.SummaryWriter`` (which needs the ``tensorboard``
package, the same one that shows the folder: ``tensorboard --logdir <study>/tensorboard``) and
not with Ray's ``TBXLoggerCallback``, which writes into Ray's own trial folders under ``ray/``
and logs every numeric result field (``ray/tune/time_total_s``, ``ray/tune/pid``, ...). Ray's
default loggers still write those there; this folder holds only the trial's own values.

Each metric is a scalar under its own name (``accuracy``, ``loss``, ...) at the trial's
tracking step (the global training step until a PBT exploit: :mod:`hftune.tracking._steps`);
the hyperparameters are written for the HParams dashboard when the run opens. After the n-th
PBT exploit of a trial, the new config is a text summary ``hftune/config_after_exploit`` (JSON)
at the tracking step from which it applies (TensorBoard's Text tab); the HParams dashboard keeps
the initial values.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hftune.tracking._base import BASE_METRICS, TrackingCallback


class TensorboardTracking(TrackingCallback):
    """Writes each trial's hyperparameters and evaluations as TensorBoard events."""

    target = "tensorboard"

    @property
    def log_root(self) -> Path:
        """``<study folder>/tensorboard``: one subfolder per trial."""
        return self.study_dir / "tensorboard"

    def _start(self) -> None:
        import torch.utils.tensorboard  # noqa: F401 - imported ahead, off Ray's event loop

    def _open(self, trial_id: str, params: dict[str, Any]) -> Any:
        from torch.utils.tensorboard import SummaryWriter
        from torch.utils.tensorboard.summary import hparams

        writer = SummaryWriter(log_dir=str(self.log_root / trial_id))
        values = {k: v if isinstance(v, int | float | str | bool) else str(v)
                  for k, v in params.items()}
        # The HParams dashboard pairs these with the scalars of the same names.
        objectives = dict.fromkeys(sorted(self.metric_keys - BASE_METRICS | {"loss"}), 0.0)
        for summary in hparams(values, objectives):
            writer.file_writer.add_summary(summary)
        writer.flush()
        return writer

    def _log(self, run: Any, metrics: dict[str, float], step: int) -> None:
        for key, value in metrics.items():
            run.add_scalar(key, value, global_step=step)
        run.flush()

    def _log_exploit(self, run: Any, number: int, info: dict[str, Any]) -> None:
        text = json.dumps({**info, "exploit": number}, sort_keys=True, default=str)
        run.add_text("hftune/config_after_exploit", text, global_step=info["step"])
        run.flush()

    def _close(self, run: Any, status: str) -> None:
        run.close()
