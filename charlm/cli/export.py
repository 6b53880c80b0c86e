"""`charlm export`: a trained model as an ONNX file, one step a call."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from charlm.cli.common import (
    CheckpointArg,
    QuietOpt,
    ThreadsOpt,
    info,
    load_checkpoint,
    user_errors,
    write_data,
)
from charlm.config.runtime import set_threads
from charlm.errors import InputError
from charlm.extras import require

EPILOG = (
    "The graph takes ids (B,) and the state, and gives scores (B, V), log-probabilities, "
    "and the new state; the vocabulary and settings are in its metadata. "
    "examples/onnx_sample.py samples from it with numpy and onnxruntime alone."
)


def export(
    checkpoint: CheckpointArg = None,
    *,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", metavar="PATH", help="The ONNX file to write.")
    ] = None,
    cells: Annotated[
        bool,
        typer.Option(
            "--cells", help="Print the cells that cannot be exported, and why; then stop."
        ),
    ] = False,
    threads: ThreadsOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Write a model as ONNX: one step, token ids and state in, scores and state out.

    The graph is run with onnxruntime beside the model before it is written.
    """
    with user_errors():
        if cells:
            from charlm.generation.onnx_export import unexportable

            write_data(unexportable() + "\n")
            return
        if out is None:
            raise InputError("give the file to write: charlm export [CHECKPOINT] -o model.onnx")
        for package in ("onnx", "onnxruntime", "onnxscript"):
            require(package, "charlm export")
        from charlm.generation.onnx_export import export_onnx  # imports onnx: after the checks

        set_threads(threads)
        lm = load_checkpoint(checkpoint, "cpu", quiet)
        export_onnx(lm.model, lm.tokenizer, lm.config, out)
        if not quiet:
            info(
                f"wrote {out}: --model {lm.config.model.model}, {lm.tokenizer.vocab_size} tokens, "
                "its scores checked against the model with onnxruntime"
            )
