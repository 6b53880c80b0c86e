"""Rendering training events on stderr: a Rich display on a terminal, plain lines otherwise."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from charlm.events import EvalEvent, InfoEvent, StepEvent


class TrainReporter:
    """Receives events from Trainer.run; use as a context manager around the run."""

    def __init__(self, console: Console, live: bool, quiet: bool, plain_every: float = 10.0):
        self.console, self.quiet = console, quiet
        self.live = live and not quiet
        self.plain_every = plain_every  # seconds between plain status lines
        self._last_line = 0.0
        self._val = "-"
        self._progress: Progress | None = None
        self._task: Any = None

    def __enter__(self) -> TrainReporter:
        if self.live:
            # redirect_stdout=False: generated text on stdout must never be diverted.
            self._progress = Progress(
                TextColumn("[bold]train[/]"),
                BarColumn(),
                TextColumn("{task.percentage:>5.1f}%"),
                TextColumn("{task.fields[status]}"),
                TimeRemainingColumn(),
                console=self.console,
                redirect_stdout=False,
                redirect_stderr=False,
                transient=False,
            )
            self._progress.start()
            self._task = self._progress.add_task("train", total=1.0, status="")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def __call__(self, event: Any) -> None:
        if self.quiet:
            return
        if isinstance(event, StepEvent):
            self._step(event)
        elif isinstance(event, EvalEvent):
            self._eval(event)
        elif isinstance(event, InfoEvent):
            self.console.print(event.message, markup=False)

    def _status(self, e: StepEvent) -> str:
        return (
            f"step {e.step} epoch {e.epoch + 1} loss {e.loss:.3f} val bpc {self._val} "
            f"{e.tokens_per_s / 1000:.1f}k tok/s lr {e.lr:.2e} |g| {e.grad_norm:.2f}"
        )

    def _step(self, e: StepEvent) -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=e.progress, status=self._status(e))
        elif time.monotonic() - self._last_line >= self.plain_every:
            self._last_line = time.monotonic()
            self.console.print(f"{100 * e.progress:5.1f}% {self._status(e)}", markup=False)

    def _eval(self, e: EvalEvent) -> None:
        self._val = f"{e.val_bpc:.3f}"
        mark = " (best)" if e.improved else ""
        self.console.print(
            f"step {e.step}: val loss {e.val_loss:.4f} nats/token, {e.val_bpc:.4f} bits/char{mark}",
            markup=False,
        )
