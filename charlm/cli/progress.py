"""Rendering training events on stderr: a live display on a terminal, plain lines otherwise.

The live display is two lines, laid out by hand so that it reads from 70 columns up:

    train ━━━━━━━━━━━━━━━━━────────────  37.2%  2:31 left  step 600
    loss 1.823  val bpc 2.411  epoch 2  41.2k tok/s  lr 1.20e-02  |g| 0.84

The first line never loses the bar, the percentage, the time left or the step (only the bar
shrinks); the second is cut at its right end, where the least needed figures are.
"""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.live import Live
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from charlm.evaluation.scoring import Progress as OnProgress
from charlm.training.events import EvalEvent, InfoEvent, StepEvent

# Columns left free at the right of each live line. A line that fills the terminal leaves the
# cursor in the last column, where the terminal's echo of ^C wraps onto a new line; the
# display then redraws below the old line instead of over it, and the line shows twice.
ECHO_MARGIN = 2
BAR_MAX = 50  # a wider bar says nothing more
BAR_MIN = 10


def time_left(e: StepEvent) -> str:
    """Seconds still to go at the pace so far, as 'M:SS left' or 'H:MM:SS left'."""
    if e.progress <= 0.001 or e.elapsed <= 0:
        return "-:-- left"  # no pace yet
    seconds = round(e.elapsed * (1 - e.progress) / e.progress)
    h, rest = divmod(max(seconds, 0), 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d} left" if h else f"{m}:{s:02d} left"


def headline(e: StepEvent, width: int) -> Text:
    """'train <bar> 37.2%  2:31 left  step 600', the bar taking what the rest leaves."""
    tail = f" {100 * e.progress:5.1f}%  {time_left(e)}  step {e.step}"
    bar_width = max(BAR_MIN, min(BAR_MAX, width - len("train ") - len(tail)))
    done = round(bar_width * min(max(e.progress, 0.0), 1.0))
    line = Text("train ", style="bold")
    line.append("━" * done, style="bar.complete")
    line.append("─" * (bar_width - done), style="bar.back")  # visible without colour
    line.append(tail)
    return line


def figures(e: StepEvent, val_bpc: str) -> Text:
    """The step's figures, most wanted first: a narrow terminal cuts the end."""
    return Text(
        f"loss {e.loss:.3f}  val bpc {val_bpc}  epoch {e.epoch + 1}  "
        f"{e.tokens_per_s / 1000:.1f}k tok/s  lr {e.lr:.2e}  |g| {e.grad_norm:.2f}"
    )


class StatusLines:
    """The live display's renderable: the last step's two lines, fitted to the width."""

    def __init__(self) -> None:
        self.step: StepEvent | None = None
        self.val_bpc = "-"

    def lines(self, width: int) -> list[Text]:
        if self.step is None:
            return [Text("train: starting")]
        lines = [headline(self.step, width), figures(self.step, self.val_bpc)]
        for line in lines:
            line.truncate(width, overflow="ellipsis")
            line.no_wrap = True
        return lines

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield Group(*self.lines(max(options.max_width - ECHO_MARGIN, 20)))


class TrainReporter:
    """Receives events from Trainer.run; use as a context manager around the run.

    The live display is transient: when the run ends (or is interrupted) it is erased and
    its last state printed once, as ordinary lines.
    """

    def __init__(
        self,
        console: Console,
        live: bool,
        quiet: bool,
        plain_every: float = 10.0,
        refresh_every: float = 0.25,
        eval_every: float = 60.0,
    ):
        self.console, self.quiet = console, quiet
        self.live = live and not quiet
        self.plain_every = plain_every  # seconds between plain status lines
        self.refresh_every = refresh_every  # seconds between redraws of the live display
        # A validation line when the best improves, else at most this often: a preset that
        # evaluates every few seconds would pile lines up above the live display.
        self.eval_every = eval_every
        self._last_line = self._last_draw = 0.0
        self._last_eval: float | None = None
        self._status = StatusLines()
        self._live: Live | None = None

    def __enter__(self) -> TrainReporter:
        if self.live:
            # redirect_stdout=False: generated text on stdout must never be diverted.
            # Redrawn by the steps, not by a thread: a redraw between two steps shows nothing new.
            self._live = Live(
                self._status,
                console=self.console,
                auto_refresh=False,
                redirect_stdout=False,
                redirect_stderr=False,
                transient=True,
            )
            self._live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is None:
            return
        self._live.stop()
        if self._status.step is not None:  # the last state, once, where the display was
            for line in self._status.lines(max(self.console.width - ECHO_MARGIN, 20)):
                self.console.print(line)

    def __call__(self, event: Any) -> None:
        if self.quiet:
            return
        if isinstance(event, StepEvent):
            self._step(event)
        elif isinstance(event, EvalEvent):
            self._eval(event)
        elif isinstance(event, InfoEvent):
            self.console.print(event.message, markup=False)

    def _step(self, e: StepEvent) -> None:
        self._status.step = e
        now = time.monotonic()
        if self._live is not None:
            if now - self._last_draw >= self.refresh_every:
                self._last_draw = now
                self._live.refresh()
        elif now - self._last_line >= self.plain_every:
            self._last_line = now
            line = f"{100 * e.progress:5.1f}% {time_left(e)}  step {e.step}  "
            self.console.print(line + figures(e, self._status.val_bpc).plain, markup=False)

    def _eval(self, e: EvalEvent) -> None:
        self._status.val_bpc = f"{e.val_bpc:.3f}"  # the live display shows every evaluation
        now = time.monotonic()
        due = self._last_eval is None or now - self._last_eval >= self.eval_every
        if not (e.improved or due):
            return
        self._last_eval = now
        mark = " (best)" if e.improved else ""
        self.console.print(
            f"step {e.step}: val loss {e.val_loss:.4f} nats/token, {e.val_bpc:.4f} bits/char{mark}",
            markup=False,
        )


def erased_bar(label: str, console: Console) -> Progress:
    """A bar with its share and time left, erased when done. It never redirects stdout: the
    data (JSON, a prepared corpus) may be going there."""
    return Progress(
        TextColumn(label),
        BarColumn(bar_width=30),
        TaskProgressColumn(),
        TimeRemainingColumn(),
        console=console,
        redirect_stdout=False,
        redirect_stderr=False,
        transient=True,
    )


class ScoringProgress:
    """evaluate's bar on stderr (a terminal only), one file at a time; erased at the end."""

    def __init__(self, console: Console, live: bool) -> None:
        self._progress: Progress | None = None
        if live:
            self._progress = erased_bar("scoring {task.description}", console)

    def __enter__(self) -> ScoringProgress:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def file(self, name: str) -> OnProgress | None:
        """The callback for scoring ``name``; None when there is no display."""
        progress = self._progress
        if progress is None:
            return None
        for task in progress.task_ids:  # one bar at a time: the file being scored
            progress.remove_task(task)
        task = progress.add_task(_short(name), total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        return advance


def _short(name: str, most: int = 30) -> str:
    """A long path keeps its end, where the file's name is."""
    return name if len(name) <= most else "…" + name[-(most - 1) :]


class CountProgress:
    """A bar on stderr for work counted in items (prepare's transposed tunes); erased at the end."""

    def __init__(self, label: str, console: Console, live: bool) -> None:
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        if live:
            self._progress = erased_bar(label, console)

    def __enter__(self) -> CountProgress:
        if self._progress is not None:
            self._progress.start()
            self._task = self._progress.add_task("", total=None)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def advance(self, done: int, total: int) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=done, total=total)
