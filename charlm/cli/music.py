"""`charlm music`: hear and check ABC tunes (render to MIDI/WAV/MusicXML, check their bars)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from charlm.cli.common import (
    PLAIN_HELP,
    JsonOpt,
    PlainCommand,
    QuietOpt,
    fail,
    info,
    user_errors,
    write_json,
)
from charlm.extras import require
from charlm.music.abc import split_tunes
from charlm.music.check import CheckSummary, TuneCheck, check_text
from charlm.music.corpus import read_abc
from charlm.music.render import render_tunes

app = typer.Typer(
    help="Folk tunes in ABC notation: render them to MIDI/WAV, check they are well-formed.",
    no_args_is_help=True,
    rich_markup_mode=PLAIN_HELP,
)

SourceArg = Annotated[
    str,
    typer.Argument(
        metavar="FILE|-",
        help="An ABC file, or - for stdin (e.g. from charlm sample) [default: stdin].",
        show_default=False,
    ),
]


def _tunes_text(source: str) -> str:
    text = read_abc(source)
    if not split_tunes(text):
        name = "stdin" if source == "-" else source
        raise fail(f"{name} holds no ABC tunes (a tune starts with an 'X:' line): is it ABC?")
    return text


@app.command(cls=PlainCommand, short_help="Write each tune as MIDI (and WAV, MusicXML).")
def render(
    source: SourceArg = "-",
    *,
    out: Annotated[
        Path, typer.Option("--out", "-o", metavar="DIR", help="Directory for the files.")
    ] = Path("tunes"),
    wav: Annotated[
        bool, typer.Option("--wav", help="Also audio (FluidSynth, General MIDI).")
    ] = False,
    musicxml: Annotated[
        bool, typer.Option("--musicxml", help="Also MusicXML, for notation.")
    ] = False,
    soundfont: Annotated[
        Path | None,
        typer.Option(
            metavar="PATH", help="A .sf2 soundfont for --wav [default: Debian's GM font]."
        ),
    ] = None,
    quiet: QuietOpt = False,
) -> None:
    """Write each tune as a MIDI file (and WAV, MusicXML) into a directory."""
    with user_errors():
        require("music21", "charlm music render")
        tunes = split_tunes(_tunes_text(source))
        result = render_tunes(tunes, out, wav=wav, musicxml=musicxml, soundfont=soundfont)
        if not quiet:
            for tune, note in result.notes:
                info(f"tune {tune}: {note}")
            for tune, reason in result.skipped:
                info(f"skipped tune {tune}: {reason}")
            done = len(tunes) - len(result.skipped)
            info(
                f"{done} of {len(tunes)} tune(s) rendered into {out} ({len(result.written)} files)"
            )
        if not result.written:
            tune, reason = result.skipped[0]
            why = "see the reasons above" if not quiet else f"tune {tune}: {reason}"
            raise fail(f"none of the {len(tunes)} tune(s) could be rendered ({why})")


@app.command(cls=PlainCommand, short_help="Check each tune is well-formed; totals.")
def check(
    source: SourceArg = "-",
    *,
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Per tune: does it parse, meter and key, bars of the right length, range; totals."""
    with user_errors():
        checks, summary = check_text(_tunes_text(source))
        if json_out:
            write_json({"tunes": [c.to_dict() for c in checks], "summary": summary.to_dict()})
        if not quiet:
            _table(checks, summary, per_tune=not json_out)


def _table(checks: list[TuneCheck], summary: CheckSummary, per_tune: bool) -> None:
    if per_tune:
        info(f"{'tune':>5}  {'parses':6}  {'M+K':3}  {'bars ok':>9}  {'range':>5}  title")
        for k, c in enumerate(checks, start=1):
            frac = f"{c.bars_right}/{c.bars_checked}" if c.parses else "-"
            mk = "yes" if c.has_meter and c.has_key else "no"
            why = f" ({c.error})" if c.error else ""  # the reason, with the title or without
            info(
                f"{k:>5}  {'yes' if c.parses else 'no':6}  {mk:3}  {frac:>9}  {c.range:>5}  "
                f"{c.title or 'untitled'}{why}"
            )
    info(
        f"{summary.tunes} tune(s): {summary.parse_rate:.1%} parse, {summary.meter_key_rate:.1%} "
        f"carry meter and key, {summary.bar_rate:.1%} of {summary.bars_checked} checked bars "
        "have the meter's length"
    )
