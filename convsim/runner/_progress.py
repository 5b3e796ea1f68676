"""A progress bar that costs nothing per conversation.

Updates only bump counters; rich redraws from its own thread a few times a second. A
bar redrawn per conversation halves some peers' throughput on a terminal.
"""

from __future__ import annotations

import sys
from collections import Counter
from types import TracebackType
from typing import Any


class Progress:
    """Live counts, cost and ETA on stderr, shown only on a terminal."""

    def __init__(self, total: int, *, enabled: bool = True) -> None:
        self.total = total
        self.enabled = enabled and sys.stderr.isatty() and total > 0
        self.counts: Counter[str] = Counter()
        self.cost = 0.0
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> Progress:
        if self.enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(
                TextColumn("[bold]conversations"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[status]}"),
                TimeElapsedColumn(),
                TextColumn("eta"),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                refresh_per_second=4,
            )
            self._bar.__enter__()
            self._task = self._bar.add_task("run", total=self.total, status="")
        return self

    def advance(self, termination: str, cost_usd: float = 0.0) -> None:
        """Count one finished conversation."""
        self.counts[termination] += 1
        self.cost += cost_usd
        if self._bar is not None:
            status = " ".join(f"{k}={v}" for k, v in sorted(self.counts.items()))
            self._bar.update(self._task, advance=1, status=f"{status} ${self.cost:.4f}")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.__exit__(exc_type, exc, tb)
