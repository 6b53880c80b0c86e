"""The live training display: readable from 70 columns, drawn once, never printed twice."""

from __future__ import annotations

import io
import re

import pyte
import pytest
from rich.console import Console

from charlm.cli.progress import StatusLines, TrainReporter, time_left
from charlm.training.events import EvalEvent, InfoEvent, StepEvent


def step(n: int, progress: float, elapsed: float = 60.0) -> StepEvent:
    return StepEvent(
        step=n, epoch=1, loss=1.8234, lr=1.2e-2, grad_norm=0.8412, tokens_seen=n * 1600,
        tokens_per_s=41_234.0, progress=progress, elapsed=elapsed,
    )  # fmt: skip


def terminal(width: int, record: bool = False) -> Console:
    return Console(
        file=io.StringIO(), width=width, force_terminal=True, color_system=None, record=record
    )


@pytest.mark.parametrize("width", [70, 80, 120])
def test_the_status_keeps_bar_percentage_time_left_and_step(width: int) -> None:
    console = terminal(width, record=True)
    status = StatusLines()
    status.step = step(600, 0.25, elapsed=45.0)
    console.print(status)
    lines = [line.rstrip() for line in console.export_text().splitlines()]
    head = next(line for line in lines if line.startswith("train "))
    assert re.search(r"━{3,}─{3,}", head)  # the bar, done and to do, readable without colour
    assert " 25.0%" in head
    assert "2:15 left" in head  # 45 s for a quarter: 135 s to go, labelled
    assert head.endswith("step 600")
    assert "…" not in head
    assert all(len(line) <= width - 2 for line in lines)  # room for the echo of ^C
    assert len(lines) == 2
    figures = lines[1]
    assert figures.startswith("loss 1.823  val bpc -  epoch 2")
    if width >= 80:
        assert figures.endswith("|g| 0.84")  # cut only where the terminal is narrower


def replay(output: str, width: int) -> list[str]:
    """What a terminal of this width shows after the output: the lines of its screen."""
    screen = pyte.Screen(width, 40)
    stream = pyte.Stream(screen)
    stream.feed(output.replace("\n", "\r\n"))  # the tty's ONLCR
    return [line.rstrip() for line in screen.display if line.strip()]


@pytest.mark.parametrize("width", [70, 80])
def test_nothing_shows_twice_after_an_interrupt(width: int) -> None:
    console = terminal(width)
    with TrainReporter(console, live=True, quiet=False, refresh_every=0) as reporter:
        for n in range(1, 40):
            reporter(step(n, n / 1000, elapsed=n * 0.1))
        console.file.write("^C")  # the terminal echoes Ctrl-C where the cursor is
        reporter(step(40, 0.04, elapsed=4.0))  # the step that was running finishes
        reporter(EvalEvent(40, 1.9, 2.74, 1.9, True, "sample"))
        reporter(InfoEvent("saving"))
    shown = replay(console.file.getvalue(), width)
    heads = [line for line in shown if "step 40" in line and line.startswith("train")]
    assert len(heads) == 1, shown
    assert sum(line.startswith("loss ") for line in shown) == 1, shown
    assert not any(line.startswith("train") and "step 39" in line for line in shown), shown
    assert shown.index("saving") < shown.index(heads[0])  # messages above, the status last


def test_time_left_is_labelled_and_waits_for_a_pace() -> None:
    assert time_left(step(1, 0.0, elapsed=0.0)) == "-:-- left"
    assert time_left(step(1, 0.5, elapsed=30.0)) == "0:30 left"
    assert time_left(step(1, 0.1, elapsed=1000.0)) == "2:30:00 left"


def test_without_a_terminal_a_plain_line_carries_the_same_figures() -> None:
    console = Console(file=io.StringIO(), width=200, color_system=None)
    with TrainReporter(console, live=False, quiet=False) as reporter:
        reporter(step(600, 0.25, elapsed=45.0))
    line = console.file.getvalue().rstrip("\n")
    assert line.startswith(" 25.0% 2:15 left  step 600  loss 1.823")
    assert "\x1b" not in line


def test_quiet_prints_nothing() -> None:
    console = terminal(80)
    with TrainReporter(console, live=True, quiet=True) as reporter:
        reporter(step(1, 0.5))
        reporter(InfoEvent("x"))
    assert console.file.getvalue() == ""


def test_validation_lines_come_when_the_best_improves_or_a_minute_has_passed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """200 evaluations a few seconds apart (the tiny preset's pace) do not pile up 200 lines."""
    clock = [1000.0]
    monkeypatch.setattr("charlm.cli.progress.time.monotonic", lambda: clock[0])
    console = Console(file=io.StringIO(), width=200, color_system=None)
    with TrainReporter(console, live=False, quiet=False, plain_every=1e9) as reporter:
        for n in range(200):
            clock[0] += 0.9  # 180 s in all
            improved = n < 5 or n == 150
            reporter(EvalEvent(100 * n, 2.0, 2.9, 1.9, improved, "sample"))
    lines = console.file.getvalue().splitlines()
    assert sum("(best)" in line for line in lines) == 6  # every improvement is shown
    assert 6 < len(lines) <= 6 + 3  # and otherwise one a minute at most
