"""`charlm sample`: text from a trained model, streamed to stdout."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from charlm.cli.common import (
    BiasOpt,
    CheckpointArg,
    DeviceOpt,
    GreedyOpt,
    LengthOpt,
    NumSamplesOpt,
    QuietOpt,
    SeedOpt,
    SeparatorOpt,
    ShowPrimeOpt,
    ShowUnkOpt,
    StopOpt,
    TemperatureOpt,
    ThreadsOpt,
    TopKOpt,
    TopPOpt,
    UnknownOpt,
    load_checkpoint,
    user_errors,
)
from charlm.cli.generation import Output, check_prime, generate_config, write_samples
from charlm.runtime import set_threads
from charlm.textio import InputError, read_text


def sample(
    checkpoint: CheckpointArg = None,
    *,
    length: LengthOpt = 500,
    num_samples: NumSamplesOpt = 1,
    separator: SeparatorOpt = "\\n\\n",
    temperature: TemperatureOpt = 1.0,
    greedy: GreedyOpt = False,
    top_k: TopKOpt = None,
    top_p: TopPOpt = None,
    bias: BiasOpt = 0.0,
    stop: StopOpt = None,
    prime: Annotated[
        str | None, typer.Option(help="Continue this text (as 'charlm prime' does).")
    ] = None,
    prime_file: Annotated[
        Path | None, typer.Option(help="Continue the text of this file, or - for stdin.")
    ] = None,
    show_prime: ShowPrimeOpt = True,
    unknown: UnknownOpt = "error",
    show_unk: ShowUnkOpt = False,
    seed: SeedOpt = None,
    device: DeviceOpt = "cpu",
    threads: ThreadsOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Generate text from a trained model, streamed to stdout as it is produced."""
    with user_errors():
        if prime is not None and prime_file is not None:
            raise InputError("give --prime or --prime-file, not both")
        text = read_text(prime_file) if prime_file is not None else prime or ""
        cfg = generate_config(
            length, num_samples, temperature, greedy, top_k, top_p, bias, stop, seed, show_unk
        )
        set_threads(threads)
        lm = load_checkpoint(checkpoint, device, quiet)
        text = check_prime(lm.tokenizer, text, unknown, quiet)
        write_samples(lm, text, cfg, Output(show_prime, separator, quiet, seed_chosen=seed is None))
