"""`charlm prime`: continue a given text in its style, or show how the model reads it."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from charlm.cli.beam import (
    BeamOpt,
    LengthNormOpt,
    beam_config,
    beam_notes,
    search,
    write_hypotheses,
)
from charlm.cli.common import (
    BiasOpt,
    EncodingOpt,
    GenerationDeviceOpt,
    GreedyOpt,
    JsonOpt,
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
    checkpoint_then,
    given_options,
    info,
    load_checkpoint,
    prime_file_of,
    split_checkpoint,
    unescape,
    user_errors,
    warn,
    write_json,
)
from charlm.cli.generation import (
    Output,
    check_prime,
    generate_config,
    json_notes,
    sampling_notes,
    text_notes,
    write_samples,
)
from charlm.config.runtime import set_threads
from charlm.errors import InputError
from charlm.evaluation.scoring import token_report
from charlm.generation.load import GENERATION_DEVICE
from charlm.text.reading import read_text


def prime(
    ctx: typer.Context,
    args: Annotated[
        list[str] | None,
        checkpoint_then("[CHECKPOINT] TEXT|-", "the text to continue; - or piped stdin reads it"),
    ] = None,
    *,
    prime_file: PrimeFileOpt = None,
    file_alias: PrimeFileAliasOpt = None,
    encoding: EncodingOpt = "utf-8",
    length: LengthOpt = 500,
    num_samples: NumSamplesOpt = 1,
    separator: SeparatorOpt = "\\n\\n",
    temperature: TemperatureOpt = 1.0,
    greedy: GreedyOpt = False,
    top_k: TopKOpt = None,
    top_p: TopPOpt = None,
    bias: BiasOpt = 0.0,
    stop: StopOpt = None,
    show_prime: ShowPrimeOpt = True,
    unknown: UnknownOpt = "error",
    show_unk: ShowUnkOpt = False,
    json_out: JsonOpt = False,
    candidates: Annotated[
        int,
        typer.Option(
            min=1, metavar="N", help="--json: the top next-token candidates per position."
        ),
    ] = 5,
    beam: BeamOpt = None,
    length_norm: LengthNormOpt = 0.0,
    seed: SeedOpt = None,
    device: GenerationDeviceOpt = GENERATION_DEVICE,
    threads: ThreadsOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Run a text through the network, then sample its continuation with it in memory."""
    with user_errors():
        checkpoint, rest = split_checkpoint(args or [])
        text = prime_text(rest, prime_file_of(prime_file, file_alias), encoding)
        cfg = generate_config(
            length, num_samples, temperature, greedy, top_k, top_p, bias, stop, seed, show_unk
        )
        given = given_options(ctx)
        if json_out:
            warn(json_notes(given), quiet)
        elif beam is not None:
            warn(beam_notes(given, beam_on=True), quiet)
        else:
            notes = sampling_notes(cfg.sampling, given) + text_notes(given)
            warn(notes + beam_notes(given, beam_on=False), quiet)
        set_threads(threads)
        lm = load_checkpoint(checkpoint, device, quiet)
        text = check_prime(lm.tokenizer, text, unknown, quiet)
        if not text and json_out:
            raise InputError("the prime is empty: nothing to score")
        if not text and not quiet:
            edge = "end" if lm.model.cfg.reverse else "start"
            info(f"the prime is empty: sampling from the {edge} of a line")
        if json_out:
            report = token_report(lm.model, lm.tokenizer, text, candidates)
            write_json({"prime": text, **report})
            return
        if beam is not None:
            bcfg = beam_config(beam, num_samples, length, stop, length_norm, show_unk)
            head = text if show_prime else ""
            write_hypotheses(search(lm, text, bcfg), head, unescape(separator), quiet)
            return
        write_samples(lm, text, cfg, Output(show_prime, separator, quiet, seed_chosen=seed is None))


def prime_text(rest: list[str], file: str | None, encoding: str, command: str = "prime") -> str:
    """The text from the argument, --prime-file, or stdin ('-', or piped when nothing is given)."""
    if len(rest) > 1:
        raise InputError(
            f"expected one text after the checkpoint, got {len(rest)} arguments: quote the text"
        )
    if file is not None:
        if rest:
            raise InputError("give the text as an argument or with --prime-file, not both")
        return read_text(file, encoding)
    if rest:
        return read_text("-", encoding) if rest[0] == "-" else rest[0]
    if sys.stdin is not None and not sys.stdin.isatty():
        return read_text("-", encoding)
    raise InputError(
        f"give a text to continue: charlm {command} [CHECKPOINT] TEXT (or - for stdin)"
    )
