"""`charlm sample`: text from a trained model, streamed to stdout."""

from __future__ import annotations

from typing import Annotated

import typer

from charlm.cli.common import (
    BiasOpt,
    CheckpointArg,
    EncodingOpt,
    GenerationDeviceOpt,
    GreedyOpt,
    LengthOpt,
    NumSamplesOpt,
    PrimeFileAliasOpt,
    PrimeFileOpt,
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
    given_options,
    load_checkpoint,
    prime_file_of,
    user_errors,
    warn,
)
from charlm.cli.generation import (
    Output,
    check_prime,
    generate_config,
    sampling_notes,
    write_samples,
)
from charlm.config.runtime import set_threads
from charlm.errors import InputError
from charlm.generation.load import GENERATION_DEVICE
from charlm.text.reading import read_text


def sample(
    ctx: typer.Context,
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
        str | None,
        typer.Option(metavar="TEXT", help="Continue this text (as 'charlm prime' does)."),
    ] = None,
    prime_file: PrimeFileOpt = None,
    file_alias: PrimeFileAliasOpt = None,
    encoding: EncodingOpt = "utf-8",
    show_prime: ShowPrimeOpt = True,
    unknown: UnknownOpt = "error",
    show_unk: ShowUnkOpt = False,
    seed: SeedOpt = None,
    device: GenerationDeviceOpt = GENERATION_DEVICE,
    threads: ThreadsOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Generate text from a trained model, streamed to stdout as it is produced."""
    with user_errors():
        prime_file = prime_file_of(prime_file, file_alias)
        if prime is not None and prime_file is not None:
            raise InputError("give --prime or --prime-file, not both")
        text = read_text(prime_file, encoding) if prime_file is not None else prime or ""
        cfg = generate_config(
            length, num_samples, temperature, greedy, top_k, top_p, bias, stop, seed, show_unk
        )
        warn(sampling_notes(cfg.sampling, given_options(ctx)), quiet)
        set_threads(threads)
        lm = load_checkpoint(checkpoint, device, quiet)
        text = check_prime(lm.tokenizer, text, unknown, quiet)
        write_samples(lm, text, cfg, Output(show_prime, separator, quiet, seed_chosen=seed is None))
