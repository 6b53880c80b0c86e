"""What `charlm sample` and `charlm prime` share: checking the prime, writing the samples."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from charlm.cli.common import (
    DataOut,
    closed_pipe_ok,
    err,
    info,
    shares_terminal,
    stderr_is_terminal,
    unescape,
)
from charlm.config.options import flag
from charlm.config.runtime import new_seed
from charlm.data.tokenizers import Tokenizer, drop_unknown
from charlm.errors import ConfigError, InputError, describe_unknown
from charlm.generation.generate import GenerateConfig, generate
from charlm.generation.load import LoadedModel
from charlm.generation.sampling import SamplingConfig

UNKNOWN_MODES = ("error", "skip")
PROGRESS_EVERY = 64  # steps between progress updates: cheap next to a step


@dataclass
class Output:
    """How the samples are laid out on stdout."""

    show_prime: bool = True
    separator: str = "\n\n"
    quiet: bool = False
    seed_chosen: bool = False  # no --seed given: name the chosen one, so it can be repeated


# Options that shape the distribution a token is drawn from: --greedy takes its top token anyway.
DRAWING = ("temperature", "top_k", "top_p", "bias")


def generate_config(
    length: int,
    num_samples: int,
    temperature: float,
    greedy: bool,
    top_k: int | None,
    top_p: float | None,
    bias: float,
    stop: list[str] | None,
    seed: int | None,
    show_unk: bool = False,
) -> GenerateConfig:
    """The sampling options of both commands, mapped onto the library's configs in one place.

    Without --seed one is chosen here (and named by write_samples), so any sample can be repeated.
    """
    sampling = SamplingConfig(temperature, bias, top_k, top_p, greedy)
    seed = new_seed() if seed is None else seed
    stops = tuple(unescape(s) for s in stop or ())
    return GenerateConfig(length, num_samples, stops, seed, sampling, show_unk=show_unk)


def sampling_notes(cfg: SamplingConfig, given: set[str]) -> list[str]:
    """Warnings for options that do nothing, or not what they seem, beside the others.

    Warned rather than refused: each combination has one clear meaning (greedy ignores the
    rest; bias and temperature multiply), and a script switching modes by adding a flag
    should keep working.
    """
    notes = []
    if cfg.greedy:
        unused = [flag(o) for o in (*DRAWING, "seed") if o in given]
        if unused:
            notes.append(
                f"{', '.join(unused)} {'does' if len(unused) == 1 else 'do'} nothing with "
                "--greedy: the most likely token is always taken"
            )
    elif {"bias", "temperature"} <= given and cfg.bias > 0:
        notes.append(
            f"--bias {cfg.bias:g} and --temperature {cfg.temperature:g} both scale the logits: "
            f"together they act as --temperature {1 / cfg.scale:.4g}; give one of them"
        )
    return notes


# --show-prime too: the JSON always holds the prime, token by token.
_JSON_UNUSED = (
    "length", "num_samples", "seed", "separator", "stop", "show_prime", "greedy", *DRAWING
)  # fmt: skip


def json_notes(given: set[str]) -> list[str]:
    """prime --json scores the prime and lists the next candidates; it samples nothing."""
    unused = [flag(o) for o in _JSON_UNUSED if o in given]
    if not unused:
        return []
    verb = "shapes" if len(unused) == 1 else "shape"
    return [
        f"{', '.join(unused)} only {verb} the samples, and --json samples nothing (it scores "
        "the prime and lists the next candidates): ignored"
    ]


def text_notes(given: set[str]) -> list[str]:
    """prime without --json samples text: the options of the JSON report do nothing."""
    if "candidates" not in given:
        return []
    return ["--candidates only shapes the --json report, and no --json was given: ignored"]


def check_prime(
    tokenizer: Tokenizer, text: str, mode: str, quiet: bool, what: str = "the prime"
) -> str:
    """The text the model can read: unknown characters are an error, or dropped with a note.

    ``what`` names the text in the messages (prime, sample and inspect share the rule)."""
    if mode not in UNKNOWN_MODES:
        raise ConfigError(f"unknown --unknown '{mode}': choose error or skip")
    unknown = tokenizer.unknown(text)
    if not unknown:
        return text
    if mode == "error":
        raise InputError(
            f"{what} has {describe_unknown(unknown)}: pass --unknown skip to drop them"
        )
    if not quiet:
        info(f"warning: {what} has {describe_unknown(unknown)}; they are skipped")
    return drop_unknown(text, unknown)


def write_samples(lm: LoadedModel, prime: str, cfg: GenerateConfig, out: Output) -> None:
    """Stream the samples to stdout: the first as it is produced, the others after it.

    All K streams advance together; the first is written token by token, the rest are
    held until it ends (the terminal can only show one stream at a time). A backward model
    (trained with --reverse) writes what precedes the prime, so the prime comes after it.
    """
    ids = lm.tokenizer.encode(prime) if prime else []
    separator = unescape(out.separator)
    data = DataOut()
    if out.seed_chosen and not out.quiet and not cfg.sampling.greedy:  # greedy draws nothing
        info(f"seed {cfg.seed} (repeat this sample with --seed {cfg.seed})")
    head = prime if out.show_prime else ""
    streams = not lm.model.cfg.reverse  # a backward model's text comes whole at the end
    before, after = (head, "") if streams else ("", head)
    held: list[list[str]] = [[] for _ in range(cfg.num_samples)]
    first = data.write if streams else held[0].append
    with closed_pipe_ok(), _line_after_interrupt(data):
        data.write(before)
        # The bar is gone before held text is written: on one terminal they would mix.
        with _progress(cfg, data, out.quiet, streams) as advance:
            for step, pieces in enumerate(generate(lm.model, lm.tokenizer, ids, cfg)):
                first(pieces[0])
                for k in range(1, cfg.num_samples):
                    held[k].append(pieces[k])
                if step % PROGRESS_EVERY == 0:
                    advance(step)
        data.write("".join(held[0]) + after)
        for k in range(1, cfg.num_samples):
            data.write(separator + before + "".join(held[k]) + after)
        if data.is_terminal() and not data.ends_line:
            # the shell prompt on a line of its own; a pipe or file gets the bytes as sampled
            data.write("\n")
        data.flush()


@contextmanager
def _line_after_interrupt(data: DataOut) -> Iterator[None]:
    """On Ctrl-C, end the text's line first when stderr shares its terminal, so the
    `charlm: interrupted` that follows starts a line of its own."""
    try:
        yield
    except KeyboardInterrupt:
        if not data.ends_line and shares_terminal(data.file, sys.stderr):
            data.flush()  # the line's end, then the newline: not the newline mid-text
            err.file.write("\n")
        raise


def _progress(cfg: GenerateConfig, data: DataOut, quiet: bool, streams: bool) -> Any:
    """A progress bar on stderr while the text goes to a file or a pipe, or is held back
    (``streams`` false: a backward model's, written whole at the end); else nothing."""
    if quiet or (streams and data.is_terminal()) or not stderr_is_terminal():
        return nullcontext(lambda step: None)
    return _Bar(cfg.length)


class _Bar:
    def __init__(self, total: int) -> None:
        # redirect_stdout=False: a redirected stdout would carry the bar into the data.
        self.progress = Progress(
            TextColumn("sampling"),
            BarColumn(),
            MofNCompleteColumn(),
            console=err,
            redirect_stdout=False,
            redirect_stderr=False,
            transient=True,
        )
        self.task = self.progress.add_task("sample", total=total)

    def __enter__(self) -> Any:
        self.progress.start()
        return lambda step: self.progress.update(self.task, completed=step)

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()
