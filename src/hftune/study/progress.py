"""Live progress of a running study in the terminal (Rich), fed by the study recorder."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from hftune.study.records import TrialRecord


class LiveProgress:
    """A Rich table: trials running / finished / stopped / errored, best so far, elapsed."""

    def __init__(self, metric: str, mode: str, console: Console | None = None,
                 rule: str = "best") -> None:
        self.metric = metric
        self.mode = mode
        self.rule = rule  # the study's score rule: a trial's best or last evaluation
        self.console = console or Console(stderr=True)
        self.started = time.perf_counter()
        self._live: Live | None = None

    def __enter__(self) -> LiveProgress:
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._live is not None:
            self._live.__exit__(*exc)
            if not self.console.is_terminal:  # Rich ends a terminal's table with a newline only
                self.console.line()

    def update(self, records: dict[str, TrialRecord]) -> None:
        """Redraw; the table appears with the first trial event (not during preparation)."""
        if self._live is None:
            self._live = Live(self.render(records), console=self.console, refresh_per_second=2)
            self._live.__enter__()
        self._live.update(self.render(records))

    def render(self, records: dict[str, TrialRecord]) -> Table:
        counts = {s: 0 for s in ("running", "finished", "stopped", "errored")}
        best: tuple[float, str] | None = None
        for rec in records.values():
            counts[rec.state] = counts.get(rec.state, 0) + 1
            score = rec.score(self.metric, self.mode, self.rule)
            if score is not None and (best is None or (score > best[0]) == (self.mode == "max")):
                best = (score, rec.trial_id)
        table = Table(title="hftune study", show_header=True)
        for col in ("running", "finished", "stopped", "errored", f"best {self.metric}",
                    "elapsed"):
            table.add_column(col, justify="right")
        table.add_row(*(str(counts[s]) for s in ("running", "finished", "stopped", "errored")),
                      f"{best[0]:.4f} ({best[1]})" if best else "-",
                      f"{time.perf_counter() - self.started:.0f}s")
        return table
