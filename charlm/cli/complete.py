"""`charlm complete`: the most probable next words of a text, by beam search."""

from __future__ import annotations

from typing import Annotated

import typer

from charlm.cli.beam import BeamOpt, LengthNormOpt, beam_config, escaped, search
from charlm.cli.common import (
    EncodingOpt,
    GenerationDeviceOpt,
    JsonOpt,
    PrimeFileAliasOpt,
    PrimeFileOpt,
    QuietOpt,
    ShowUnkOpt,
    ThreadsOpt,
    UnknownOpt,
    checkpoint_then,
    load_checkpoint,
    prime_file_of,
    split_checkpoint,
    user_errors,
    write_data,
    write_json,
)
from charlm.cli.generation import check_prime
from charlm.cli.prime import prime_text
from charlm.config.runtime import set_threads
from charlm.generation.beam import Hypothesis
from charlm.generation.load import GENERATION_DEVICE

# The next word: a hypothesis ends at the first space or line end after its first character.
WORD_STOPS = (" ", "\n")
DEFAULT_BEAM = 16  # widened to -k when more completions are asked for


def complete_command(
    args: Annotated[
        list[str] | None,
        checkpoint_then("[CHECKPOINT] TEXT|-", "the text to complete; - or piped stdin reads it"),
    ] = None,
    *,
    num: Annotated[
        int, typer.Option("--num", "-k", min=1, metavar="K", help="Completions to list.")
    ] = 5,
    stop: Annotated[
        list[str] | None,
        typer.Option(
            "--stop",
            metavar="TEXT",
            help="A completion ends where this appears after its first character (repeatable; "
            "\\n understood) [default: a space or a line end: the next word].",
        ),
    ] = None,
    length: Annotated[
        int,
        typer.Option("--length", "-n", min=1, metavar="N", help="Tokens at most per completion."),
    ] = 20,
    beam: BeamOpt = None,
    length_norm: LengthNormOpt = 0.0,
    prime_file: PrimeFileOpt = None,
    file_alias: PrimeFileAliasOpt = None,
    encoding: EncodingOpt = "utf-8",
    unknown: UnknownOpt = "error",
    show_unk: ShowUnkOpt = False,
    json_out: JsonOpt = False,
    device: GenerationDeviceOpt = GENERATION_DEVICE,
    threads: ThreadsOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """List the most probable continuations of a text, with their log-probabilities.

    One per line on stdout: the completion (tabs and line ends escaped), a tab, its natural
    log-probability (of the text and of its ending there). Deterministic: a beam search.
    """
    with user_errors():
        checkpoint, rest = split_checkpoint(args or [])
        text = prime_text(rest, prime_file_of(prime_file, file_alias), encoding, "complete")
        width = max(DEFAULT_BEAM, num) if beam is None else beam
        stops = list(WORD_STOPS) if stop is None else stop
        cfg = beam_config(width, num, length, stops, length_norm, show_unk)
        set_threads(threads)
        lm = load_checkpoint(checkpoint, device, quiet)
        text = check_prime(lm.tokenizer, text, unknown, quiet, "the text")
        found = search(lm, text, cfg)
        if json_out:
            write_json({"prime": text, "beam": cfg.beam, "completions": [_doc(h) for h in found]})
            return
        write_data("".join(f"{escaped(h.text)}\t{h.logprob:.4f}\n" for h in found))


def _doc(h: Hypothesis) -> dict[str, object]:
    return {"text": h.text, "logprob": round(h.logprob, 6), "tokens": h.tokens, "ended": h.ended}
