"""`charlm fill`: a text's gaps filled from both directions, by a forward and a backward run."""

from __future__ import annotations

from typing import Annotated

import typer

from charlm.cli.common import (
    GenerationDeviceOpt,
    QuietOpt,
    ThreadsOpt,
    info,
    load_checkpoint,
    user_errors,
    write_data,
)
from charlm.config.runtime import set_threads
from charlm.generation.fill import MARKER, check_pair, fill
from charlm.generation.load import GENERATION_DEVICE


def fill_command(
    forward: Annotated[str, typer.Argument(metavar="RUN_FORWARD", help="A left-to-right run.")],
    backward: Annotated[
        str, typer.Argument(metavar="RUN_BACKWARD", help="A run trained with --reverse.")
    ],
    text: Annotated[str, typer.Argument(metavar="TEXT", help="The text, its gaps marked.")],
    *,
    marker: Annotated[
        str, typer.Option("--marker", metavar="CHAR", help="The character marking a gap.")
    ] = MARKER,
    rule: Annotated[
        str,
        typer.Option(
            "--rule",
            metavar="RULE",
            help="both (the product of the two distributions), forward or backward.",
        ),
    ] = "both",
    device: GenerationDeviceOpt = GENERATION_DEVICE,
    threads: ThreadsOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Fill each gap of TEXT with the character both models find likeliest; the filled text
    goes to stdout, each choice and its probability to stderr."""
    with user_errors():
        set_threads(threads)
        fwd = load_checkpoint(forward, device, quiet)
        bwd = load_checkpoint(backward, device, quiet)
        check_pair(fwd.model, bwd.model, fwd.tokenizer, bwd.tokenizer)
        filled = fill(fwd.model, bwd.model, fwd.tokenizer, text, marker, rule)  # type: ignore[arg-type]
        if not quiet:
            for g, c, p in zip(filled.gaps, filled.chosen, filled.confidence, strict=True):
                info(f"at {g}: {c!r} (p = {p:.3f})")
        write_data(filled.text + "\n")
