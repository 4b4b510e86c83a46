"""Live progress of a running study, fed by the study recorder (each change of a record).

In a terminal (or Jupyter, where Rich renders too): a header with trials done / planned, the
best so far (value, trial, its searched values), elapsed time and an estimate of the time
left; below it one row per running trial and the last few ended ones (trial, searched values,
epochs done of planned as a bar, last and best value, state), shortened to the width.

Not a terminal (logs, CI): one plain line per event, so that a log reads as a history:
``trial T started: {config}``, ``trial T epoch E: metric V``, ``trial T finished: metric V``.

Each update looks at every record once (its state and number of reports) and recomputes only
the records that changed.

Time left: the mean seconds of the trials that ended (start to end), times the trials not yet
done (planned − ended − the fraction of its epochs each running trial has done), divided by
the trials running at once. Rough (trials differ in length; early stopping ends some early),
shown once a trial has ended and the number of planned trials is known.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from hftune.errors import HftuneInputError
from hftune.study.records import ENDED_STATES, TrialRecord, score_value
from hftune.study.store import StudyStore

if TYPE_CHECKING:
    from hftune.config.schema import StudyConfig

ENDED_ROWS = 3  # ended trials shown below the running ones


@dataclass
class TrialView:
    """What the display knows of one trial, recomputed only when its record changes."""

    trial_id: str
    state: str
    config: dict[str, Any]
    reports: int
    epoch: float
    planned_epochs: float | None
    last: float | None
    best: float | None
    seconds: float | None  # start to end, once ended
    changed_at: float


def shorten(value: Any, width: int = 10) -> str:
    """A searched value for a narrow cell (floats in 3 significant digits)."""
    text = f"{value:.3g}" if isinstance(value, float) else str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def plain_value(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


class LiveProgress:
    """The live view of a study (see the module docstring). ``planned``: a function giving
    the number of trials the study plans (``None``: unknown), asked at each update;
    ``search_keys``: the searched values to show (default: every key of a trial's config)."""

    def __init__(self, metric: str, mode: str, console: Console | None = None,
                 rule: str = "best", planned: Callable[[], int | None] | None = None,
                 search_keys: list[str] | None = None) -> None:
        self.metric = metric
        self.mode = mode
        self.rule = rule  # the study's score rule: a trial's best or last evaluation
        self.console = console or Console(stderr=True)
        self.started = time.perf_counter()
        self.planned = planned or (lambda: None)
        self._planned: int | None = None  # what ``planned`` said at the latest update
        self.search_keys = search_keys
        # a terminal or Jupyter (Rich renders there, ipywidgets updating it in place): the
        # table; anything else: one line per event
        self.interactive = self.console.is_terminal or self.console.is_jupyter
        self.views: dict[str, TrialView] = {}
        self._seen: dict[str, tuple[str, int]] = {}
        self._live: Live | None = None

    @classmethod
    def for_study(cls, cfg: StudyConfig) -> LiveProgress:
        """The view of a study about to run from ``cfg`` (``hftune run``, ``hftune.run``):
        its objective and searched keys, the planned trials read from its folder."""
        from hftune.study.prepare import study_objective

        metric, mode = study_objective(cfg)
        return cls(metric, mode, rule=cfg.strategy.score, planned=planned_trials(cfg.study_dir),
                   search_keys=list(cfg.search_space))

    def __enter__(self) -> LiveProgress:
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._live is not None:
            self._live.__exit__(*exc)
            if not self.console.is_terminal:  # Rich ends a terminal's table with a newline only
                self.console.line()

    # -- events ---------------------------------------------------------------------------
    def update(self, records: dict[str, TrialRecord]) -> None:
        """Take the records' changes; redraw (a terminal) or print one line per event."""
        self._planned = self.planned()  # once per update: it may read the study folder
        for trial_id, rec in records.items():
            key = (rec.state, len(rec.reports))
            before = self._seen.get(trial_id)
            if before == key:
                continue
            self._seen[trial_id] = key
            view = self._view(rec)
            self.views[trial_id] = view
            if not self.interactive:
                for line in self._events(view, before):
                    self.console.print(line, markup=False, highlight=False, soft_wrap=True)
        if self.interactive:
            if self._live is None:
                self._live = Live(self.render(), console=self.console, refresh_per_second=2)
                self._live.__enter__()
            self._live.update(self.render())

    def _view(self, rec: TrialRecord) -> TrialView:
        finite = [v for v in (score_value(r.get(self.metric)) for r in rec.reports)
                  if v is not None]
        epochs = rec.config.get("num_train_epochs")
        seconds = None
        if rec.state in ENDED_STATES and rec.ended_at is not None and rec.started_at is not None:
            seconds = max(0.0, float(rec.ended_at) - float(rec.started_at))
        keys = self.search_keys if self.search_keys is not None else list(rec.config)
        return TrialView(
            trial_id=rec.trial_id, state=rec.state,
            config={k: rec.config[k] for k in keys if k in rec.config},
            reports=len(rec.reports),
            epoch=float(rec.reports[-1].get("epoch") or 0.0) if rec.reports else 0.0,
            planned_epochs=float(epochs) if isinstance(epochs, int | float) else None,
            last=finite[-1] if finite else None,
            best=rec.score(self.metric, self.mode, self.rule), seconds=seconds,
            changed_at=time.perf_counter())

    def _events(self, view: TrialView, before: tuple[str, int] | None) -> list[str]:
        """The plain lines for what changed since ``before`` (state, reports)."""
        lines = []
        old_state, old_reports = before or ("pending", 0)
        if old_state != "running" and view.state == "running" and view.reports == 0:
            lines.append(f"trial {view.trial_id} started: {json.dumps(view.config)}")
        if view.reports > old_reports:
            lines.append(f"trial {view.trial_id} epoch {view.epoch:g}: {self.metric} "
                         f"{plain_value(view.last)}")
        if view.state in ENDED_STATES and old_state != view.state:
            lines.append(f"trial {view.trial_id} {view.state}: {self.metric} "
                         f"{plain_value(view.best)}")
        return lines

    # -- summary --------------------------------------------------------------------------
    def best(self) -> TrialView | None:
        scored = [v for v in self.views.values() if v.best is not None]
        if not scored:
            return None
        pick = max if self.mode == "max" else min
        return pick(scored, key=lambda v: v.best)  # type: ignore[arg-type, return-value]

    def seconds_left(self) -> float | None:
        """The rough estimate of the module docstring; ``None`` until it can be made."""
        planned = self._planned
        durations = [v.seconds for v in self.views.values() if v.seconds is not None]
        if planned is None or not durations:
            return None
        running = [v for v in self.views.values() if v.state == "running"]
        done = sum(v.state in ENDED_STATES for v in self.views.values())
        partly = sum(min(1.0, v.epoch / v.planned_epochs) for v in running
                     if v.planned_epochs)
        remaining = max(0.0, planned - done - partly)
        return remaining * (sum(durations) / len(durations)) / max(1, len(running))

    def header(self) -> str:
        planned = self._planned
        done = sum(v.state in ENDED_STATES for v in self.views.values())
        running = sum(v.state == "running" for v in self.views.values())
        parts = [f"trials {done} done / {planned if planned is not None else '?'} planned, "
                 f"{running} running"]
        best = self.best()
        if best is not None:
            searched = ", ".join(f"{k}={shorten(v)}" for k, v in best.config.items())
            parts.append(f"best {self.metric} {best.best:.4f} ({best.trial_id}"
                         + (f": {searched})" if searched else ")"))
        parts.append(f"elapsed {_duration(time.perf_counter() - self.started)}")
        left = self.seconds_left()
        parts.append(f"left ~{_duration(left)}" if left is not None else "left ?")
        return " · ".join(parts)

    def render(self) -> Group:
        """The header and the table of running and last ended trials."""
        running = [v for v in self.views.values() if v.state == "running"]
        ended = sorted((v for v in self.views.values() if v.state in ENDED_STATES),
                       key=lambda v: v.changed_at)[-ENDED_ROWS:]
        keys = list(dict.fromkeys(k for v in running + ended for k in v.config))
        table = Table(show_header=True, expand=False)
        table.add_column("trial", no_wrap=True)
        for key in keys:
            table.add_column(shorten(key, 14), overflow="ellipsis", max_width=12)
        table.add_column("epochs", no_wrap=True)
        table.add_column(f"last {self.metric}", justify="right")
        table.add_column(f"best {self.metric}", justify="right")
        table.add_column("state")
        for v in running + ended:
            table.add_row(v.trial_id, *(shorten(v.config.get(k, "")) for k in keys),
                          epoch_bar(v.epoch, v.planned_epochs), plain_value(v.last),
                          plain_value(v.best), v.state)
        return Group(Text(self.header()), table)


def epoch_bar(epoch: float, planned: float | None, width: int = 8) -> str:
    """``━━━━╌╌╌╌ 1/2``: epochs done of planned (of done so far when the plan is unknown)."""
    total = planned or max(epoch, 1.0)
    filled = round(width * min(epoch, total) / total)
    return "━" * filled + "╌" * (width - filled) + f" {epoch:g}/{total:g}"


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, sec = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{sec:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def planned_trials(study_dir: Path) -> Callable[[], int | None]:
    """What the live view asks for the trials planned: ``study.json``'s, read when asked
    (the runner writes it before the first trial, and again when a second step starts)."""
    store = StudyStore(study_dir)

    def planned() -> int | None:
        try:
            return store.read_study().planned_trials
        except (OSError, ValueError, HftuneInputError):  # not written yet: unknown for now
            return None
    return planned
