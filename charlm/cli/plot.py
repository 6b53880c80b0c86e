"""`charlm plot`: training curves of one or more runs, as an image or in the terminal."""

from __future__ import annotations

import shutil
import sys
import time
from typing import Annotated

import typer

from charlm.cli.common import QuietOpt, info, user_errors, write_data
from charlm.errors import InputError
from charlm.extras import require
from charlm.inspection.figures import check_output, curves_figure
from charlm.inspection.textplot import curves_text
from charlm.rundir.log import METRICS
from charlm.rundir.read import RunCurves, describe_lines, is_training, read_curves

CLEAR = "\x1b[H\x1b[2J"  # cursor home, clear screen: --follow redraws in place


def plot(
    runs: Annotated[
        list[str],
        typer.Argument(
            metavar="RUN...", help="Run directories (or their metrics.jsonl).", show_default=False
        ),
    ],
    *,
    x: Annotated[
        str, typer.Option("--x", metavar="AXIS", help="tokens (tokens seen) or time (seconds).")
    ] = ("tokens"),
    output: Annotated[
        str | None,
        typer.Option(
            "--output", "-o", metavar="PATH", help="Write an image (.png or .svg) instead."
        ),
    ] = None,
    width: Annotated[
        int, typer.Option(metavar="PIXELS", min=200, help="Image width in pixels.")
    ] = 1000,
    height: Annotated[
        int, typer.Option(metavar="PIXELS", min=150, help="Image height in pixels.")
    ] = 800,
    follow: Annotated[
        bool, typer.Option("--follow", help="Redraw every few seconds until the runs end.")
    ] = False,
    interval: Annotated[
        float,
        typer.Option(metavar="SECONDS", min=0.5, help="Seconds between redraws with --follow."),
    ] = 5.0,
    quiet: QuietOpt = False,
) -> None:
    """Validation bits/char and train loss against tokens seen (or time), with learning rate
    and gradient norm below; several runs overlaid. A run still training can be plotted."""
    with user_errors():
        if output is not None:
            require("matplotlib", "charlm plot -o")
            check_output(output)
        else:
            require("plotext", "charlm plot")
            if sys.stdout is None or not sys.stdout.isatty():
                raise InputError(
                    "stdout is not a terminal: write an image with -o plot.png (or plot.svg)"
                )
        warned = quiet  # once, not at every redraw of --follow
        while True:
            curves = [read_curves(run, x) for run in runs]
            warned = warned or _warn(curves)
            _draw(curves, output, width, height, follow, quiet)
            if not (follow and any(is_training(run) for run in runs)):
                break
            time.sleep(interval)


def _warn(curves: list[RunCurves]) -> bool:
    """Say which runs have nothing to draw yet and which lines could not be read."""
    for c in curves:
        if not any(s.x for s in c.series.values()):
            info(f"warning: {c.name} has no metrics yet (its first row comes after a few steps)")
        if c.unreadable:
            info(
                f"warning: skipped {len(c.unreadable)} unreadable line(s) of {c.name}'s "
                f"{METRICS}: {describe_lines(c.unreadable)}"
            )
    return True


def _draw(
    curves: list[RunCurves], output: str | None, width: int, height: int, follow: bool, quiet: bool
) -> None:
    if output is not None:
        curves_figure(curves, output, width, height)
        if not quiet:
            points = sum(len(c.series["val_bpc"].x) for c in curves)
            runs = f"{len(curves)} run" + ("s" if len(curves) > 1 else "")
            info(f"wrote {output} ({runs}, {points} evaluations)")
        return
    size = shutil.get_terminal_size()
    text = curves_text(curves, size.columns, max(20, size.lines - 2))
    write_data((CLEAR if follow else "") + text + "\n")
