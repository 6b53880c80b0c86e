"""What `charlm complete` and `charlm prime --beam` share: the beam's options, its config, the
search from a loaded model, and prime's way of writing the hypotheses."""

from __future__ import annotations

from typing import Annotated

import typer

from charlm.cli.common import DataOut, closed_pipe_ok, info, unescape
from charlm.config.options import flag
from charlm.generation.beam import BeamConfig, Hypothesis, complete
from charlm.generation.generate import start_context
from charlm.generation.load import LoadedModel, require_forward

BeamOpt = Annotated[
    int | None,
    typer.Option(
        "--beam", min=1, metavar="K", help="Hypotheses kept at each step of a beam search."
    ),
]
LengthNormOpt = Annotated[
    float,
    typer.Option(
        "--length-norm",
        metavar="A",
        help="Rank by log p / tokens^A; 0 ranks by log p, the better on held-out words.",
    ),
]


def beam_config(
    beam: int, results: int, length: int, stop: list[str] | None, norm: float, show_unk: bool
) -> BeamConfig:
    """The options of complete and prime --beam, mapped onto the library's config."""
    stops = tuple(unescape(s) for s in stop or ())
    return BeamConfig(beam, results, length, stops, norm, show_unk)


# prime's options that shape a random draw: a beam search draws nothing.
_DRAWING = ("temperature", "top_k", "top_p", "bias", "greedy", "seed", "candidates")


def beam_notes(given: set[str], beam_on: bool) -> list[str]:
    """prime: the sampling options do nothing with --beam, and --length-norm nothing without."""
    if not beam_on:
        return (
            ["--length-norm only ranks a --beam search: ignored"] if "length_norm" in given else []
        )
    unused = [flag(o) for o in _DRAWING if o in given]
    if not unused:
        return []
    verb = "does" if len(unused) == 1 else "do"
    return [f"{', '.join(unused)} {verb} nothing with --beam: a beam search draws nothing"]


def search(lm: LoadedModel, text: str, cfg: BeamConfig) -> list[Hypothesis]:
    """The best continuations of ``text`` (of the start of a line when it is empty)."""
    require_forward(lm, "a beam search")
    ids = [int(i) for i in lm.tokenizer.encode(text)] if text else []
    return complete(lm.model, lm.tokenizer, ids or start_context(lm.tokenizer), cfg)


def escaped(text: str) -> str:
    """A completion on one line: backslashes, tabs and line ends written as escapes."""
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


def write_hypotheses(
    found: list[Hypothesis], head: str, separator: str, quiet: bool = False
) -> None:
    """prime --beam: each hypothesis as prime writes a sample (after ``head``, the shown prime),
    its log-probability on stderr."""
    for k, h in enumerate([] if quiet else found):  # before the text: it shares a terminal
        info(f"beam {k + 1}: log-probability {h.logprob:.4f} over {h.tokens} tokens")
    data = DataOut()
    with closed_pipe_ok():
        for k, h in enumerate(found):
            data.write((separator if k else "") + head + h.text)
        if data.is_terminal() and not data.ends_line:
            data.write("\n")
        data.flush()
