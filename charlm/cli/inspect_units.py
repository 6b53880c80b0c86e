"""`charlm inspect units` and `charlm inspect surprisal`: what a model computes on a text.

Views and tables go to stderr, like `inspect gradients`: stdout carries only `--json`.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from charlm.cli.common import (
    GenerationDeviceOpt,
    JsonOpt,
    QuietOpt,
    ThreadsOpt,
    UnknownOpt,
    checkpoint_then,
    info,
    load_checkpoint,
    split_checkpoint,
    user_errors,
    write_json,
)
from charlm.cli.generation import UNKNOWN_MODES, check_prime
from charlm.cli.unitview import (
    coloured_text,
    ranking_table,
    saturation_table,
    show,
    spans_table,
)
from charlm.config.runtime import set_threads
from charlm.errors import ConfigError, InputError
from charlm.extras import require
from charlm.generation.fill import check_pair
from charlm.generation.load import GENERATION_DEVICE, LoadedModel
from charlm.inspection.doc import build_doc, surprisal_report, units_report
from charlm.inspection.export import write_lstmvis, write_npz
from charlm.inspection.recording import Recording, record
from charlm.inspection.saturation import saturation
from charlm.inspection.surprisal import bits_per_char, both_ways, hardest_spans
from charlm.inspection.text_features import (
    FEATURES,
    PER_CHARACTER,
    Match,
    feature_function,
    per_token,
    rank_units,
    regex_feature,
)
from charlm.inspection.units import Space, Unit, is_sequential, parse_unit, value_range, values
from charlm.models import registry
from charlm.rundir.atomic import write_atomic
from charlm.text.reading import read_text

TextArgs = Annotated[
    list[str] | None, checkpoint_then("[CHECKPOINT] TEXT|-", "the text; - or piped stdin")
]
FileOpt = Annotated[Path | None, typer.Option("--file", "-f", help="Read the text here.")]
MaxCharsOpt = Annotated[
    int | None, typer.Option("--max-chars", min=1, help="Inspect only the first N characters.")
]


@dataclass
class Inspected:
    lm: LoadedModel
    text: str  # as read, after --max-chars and --unknown
    rec: Recording
    vocab: list[str]  # every token id's string
    unit: Unit | None = None  # --unit, when given

    @property
    def pieces(self) -> list[str]:
        return [self.vocab[i] for i in self.rec.ids]

    @property
    def relu(self) -> bool:
        return getattr(self.lm.model.rnn, "nonlinearity", "tanh") == "relu"


def units(
    args: TextArgs = None,
    *,
    file: FileOpt = None,
    find: Annotated[
        str | None,
        typer.Option(metavar="FEATURE", help=f"Rank units by |r| with: {', '.join(FEATURES)}."),
    ] = None,
    find_regex: Annotated[
        str | None,
        typer.Option(metavar="RE", help="Rank units by |r| with being inside a match of RE."),
    ] = None,
    top: Annotated[int, typer.Option(min=1, help="Units listed by --find.")] = 10,
    unit: Annotated[
        str | None,
        typer.Option(
            metavar="L:KIND:INDEX", help="Colour the text by this unit, e.g. 0:c:12 or 1:forget:3."
        ),
    ] = None,
    show_saturation: Annotated[
        bool,
        typer.Option("--saturation", help="Gate saturation table (shown when nothing else is)."),
    ] = False,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write a self-contained HTML page.")
    ] = None,
    npz: Annotated[
        Path | None,
        typer.Option(metavar="PATH", help="Write states, gates, ids, vocabulary (.npz)."),
    ] = None,
    lstmvis: Annotated[
        Path | None, typer.Option(metavar="DIR", help="Write an LSTMVis project into DIR.")
    ] = None,
    max_chars: MaxCharsOpt = None,
    unknown: UnknownOpt = "error",
    json_out: JsonOpt = False,
    device: GenerationDeviceOpt = GENERATION_DEVICE,
    threads: ThreadsOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Hidden states, cells and gates at every token: find interpretable units, gate
    saturation, colour the text by a unit, export for notebooks, LSTMVis or a web page."""
    with user_errors():
        if find is not None and find_regex is not None:
            raise ConfigError("give --find or --find-regex, not both")
        feature = regex_feature(find_regex) if find_regex is not None else None
        if find is not None:
            feature = feature_function(find)
        _check_outputs(output, npz, lstmvis)
        ins = _inspect(args, file, max_chars, unknown, device, threads, quiet, 1, unit)
        rec, pieces, chosen = ins.rec, ins.pieces, ins.unit
        label = find or (f"regex {find_regex}" if find_regex else None)
        mean = find_regex is not None or find in PER_CHARACTER
        ranking = _rank(rec, per_token(feature, pieces, mean), str(label)) if feature else None
        sats = saturation(rec.kind, rec.states)
        if not quiet:
            if ranking is not None:
                show(ranking_table(ranking[:top]), f"units most correlated with {label}")
            if show_saturation or (ranking is None and chosen is None):
                _show_saturation(sats, rec.kind)
            if chosen is not None:
                lo, hi = value_range(rec, chosen, ins.relu)
                seq = is_sequential(rec, chosen)
                show(coloured_text(pieces, values(rec, chosen), lo, hi, seq))
                scale = "white to orange" if seq else "blue, white, red"
                info(f"{chosen}: coloured {scale} over [{lo:.3g}, {hi:.3g}]")
        _export(ins, output, npz, lstmvis, label, ranking, quiet)
        if json_out:
            ranked = (ranking or [])[:top]
            write_json({"checkpoint": str(ins.lm.path), **units_report(rec, label, ranked, sats)})


def surprisal(
    args: TextArgs = None,
    *,
    file: FileOpt = None,
    spans: Annotated[int, typer.Option(min=0, help="Hardest spans listed.")] = 5,
    span_length: Annotated[int, typer.Option(min=1, help="Tokens per span.")] = 20,
    backward: Annotated[
        str | None,
        typer.Option(
            metavar="RUN",
            help="A run trained with --reverse on the same vocabulary: colour each token by "
            "the lesser surprisal of the two directions (high only where both sides are "
            "surprised, as at a typo).",
        ),
    ] = None,
    max_chars: MaxCharsOpt = None,
    unknown: UnknownOpt = "error",
    json_out: JsonOpt = False,
    device: GenerationDeviceOpt = GENERATION_DEVICE,
    threads: ThreadsOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """How surprised the model is by each token (bits), its top-5 guesses, the hardest spans.

    The state starts at zero and runs through the whole text; the first token is only
    context. The mean equals `charlm evaluate --batch-size 1`'s bits per character.
    """
    with user_errors():
        ins = _inspect(args, file, max_chars, unknown, device, threads, quiet, 2)
        rec, pieces = ins.rec, ins.pieces
        bits = rec.surprisal
        first, last = ins.lm.tokenizer.spelled_span(ins.text)
        bpc = bits_per_char(bits, last - first)
        shown = bits
        if backward is not None:
            back = load_checkpoint(backward, device, quiet)
            check_pair(ins.lm.model, back.model, ins.lm.tokenizer, back.tokenizer)
            shown = both_ways(bits, record(back.model, rec.ids).surprisal)
        hard = hardest_spans(shown, span_length, spans)
        if not quiet:
            hi = max(float(np.nanpercentile(shown, 99)), 1.0)
            show(coloured_text(pieces, shown, 0.0, hi, sequential=True))
            info(f"surprisal coloured white (0 bits) to orange ({hi:.1f} bits and more)")
            if hard:
                show(spans_table(hard, pieces))
            info(
                f"{len(bits) - 1:,} tokens scored: {np.nanmean(bits):.4f} bits/token, "
                f"{bpc:.4f} bits/char"
            )
        if json_out:
            report = surprisal_report(rec, ins.vocab, bpc, hard)
            write_json({"checkpoint": str(ins.lm.path), **report})


def _check_outputs(output: Path | None, npz: Path | None, lstmvis: Path | None) -> None:
    """Refuse outputs that cannot be written before the pass, which can take minutes.

    Names the system cannot take (a NUL byte, too long) are left to the write, whose errors
    the CLI boundary reports.
    """
    if output is not None and output.suffix.lower() not in (".html", ".htm"):
        raise ConfigError(f"-o {output}: the page is HTML, name it e.g. page.html")
    if lstmvis is not None:
        require("h5py", "charlm inspect units --lstmvis")
    for flag, path, want_dir in (("-o", output, False), ("--npz", npz, False),
                                 ("--lstmvis", lstmvis, True)):  # fmt: skip
        if path is None:
            continue
        try:
            blocked = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
            wrong = path.exists() and path.is_dir() != want_dir
        except (OSError, ValueError):
            continue
        if blocked is not None:
            raise ConfigError(f"{flag} {path}: {blocked} is a file, not a directory")
        if wrong:
            what = (
                "a file: name a directory (it is made)" if want_dir else "a directory: name a file"
            )
            raise ConfigError(f"{flag} {path} is {what}")


def _inspect(
    args: list[str] | None,
    file: Path | None,
    max_chars: int | None,
    unknown: str,
    device: str,
    threads: int | None,
    quiet: bool,
    min_tokens: int,
    unit: str | None = None,
) -> Inspected:
    """Read the text, load the model, check --unit against it, run the one recording pass."""
    if unknown not in UNKNOWN_MODES:
        raise ConfigError(f"unknown --unknown '{unknown}': choose error or skip")
    checkpoint, rest = split_checkpoint(args or [])
    text = _text(rest, file)
    if max_chars is not None:
        text = text[:max_chars]
    set_threads(threads)
    lm = load_checkpoint(checkpoint, device, quiet)
    text = check_prime(lm.tokenizer, text, unknown, quiet, what="the text")
    chosen = parse_unit(unit, Space.of_model(lm.config.model)) if unit is not None else None
    ids = lm.tokenizer.encode(text)
    if len(ids) < min_tokens:
        raise InputError(f"the text has {len(ids)} token(s): give at least {min_tokens}")
    if not quiet:
        info(f"reading {len(ids):,} tokens ...")
    try:
        rec = record(lm.model, ids)
    except ValueError as e:  # a model the recording cells do not reproduce
        raise InputError(
            f"{lm.path}: {e}; charlm inspects the cells it trains (--model "
            f"{', '.join(registry.names())}) as charlm builds them"
        ) from None
    vocab = [lm.tokenizer.decode([i]) for i in range(lm.tokenizer.vocab_size)]
    return Inspected(lm, text, rec, vocab, chosen)


def _text(rest: list[str], file: Path | None) -> str:
    """The text from the argument, --file, or stdin ('-', or piped when nothing is given)."""
    if len(rest) > 1:
        raise InputError(f"expected one text after the checkpoint, got {len(rest)}: quote it")
    if file is not None:
        if rest:
            raise InputError("give the text as an argument or with --file, not both")
        return read_text(file)
    if rest:
        return read_text("-") if rest[0] == "-" else rest[0]
    if sys.stdin is not None and not sys.stdin.isatty():
        return read_text("-")
    raise InputError("give a text to inspect: an argument, --file PATH, or - for stdin")


def _rank(rec: Recording, f: np.ndarray, label: str) -> list[Match]:
    if np.ptp(f) == 0:
        raise InputError(
            f"the feature '{label}' does not vary over this text (e.g. no quotes to be inside): "
            "give a text where it does, or another feature"
        )
    return rank_units(rec.states, f)


def _show_saturation(sats: list, kind: str) -> None:
    if sats:
        show(saturation_table(sats))
    else:
        title = registry.get(kind).title
        info(f"the {title} ({kind}) has no sigmoid gates: no saturation to show")


def _export(
    ins: Inspected,
    output: Path | None,
    npz: Path | None,
    lstmvis: Path | None,
    label: str | None,
    ranking: list | None,
    quiet: bool,
) -> None:
    title = f"{_run_name(ins.lm.path)}: {len(ins.rec.ids):,} tokens"
    written = []
    if npz is not None:
        write_npz(npz, ins.rec, ins.vocab, ins.pieces)
        written.append(str(npz))
    if lstmvis is not None:
        written.append(str(write_lstmvis(lstmvis, ins.rec, ins.vocab, title)))
    if output is not None:
        render_page = _page_renderer()
        doc = build_doc(ins.rec, ins.pieces, ins.vocab, title, label, ranking, ins.relu)
        write_atomic(output, render_page(doc).encode("utf-8"))
        written.append(str(output))
    if written and not quiet:
        info(f"wrote {', '.join(written)}")


def _page_renderer() -> Any:
    try:
        from charlm.inspection.page import render_page
    except ImportError:
        raise ConfigError(
            "this build of charlm has no web page yet: use --npz or --lstmvis"
        ) from None
    return render_page


def _run_name(path: Path) -> str:
    return path.parent.name if path.name.endswith(".safetensors") else path.name
