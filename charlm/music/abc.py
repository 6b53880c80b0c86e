"""ABC notation as text: splitting files into tunes, cleaning them, and reading their bars.

Only what charlm needs of ABC 2.1 is read here, in plain Python, so a tune is checked in
about a millisecond (music21's full parse takes a quarter of a second a tune): header
fields, notes and rests with their lengths, chords, tuplets, broken rhythm, grace notes,
decorations, annotations, inline fields and bar lines. ``read_bars`` consumes every
symbol of a tune's body or reports where it could not, which is what "the tune parses"
means in ``charlm music check`` and in ``charlm prepare abc``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from fractions import Fraction

from charlm.errors import InputError

# Header fields kept for the music, in the order they are written (K must be last); folk-rnn
# keeps fewer (it drops X and T). One order makes every tune's header read alike.
KEPT_FIELDS = ("X", "T", "R", "M", "L", "Q", "K")
# Fields that set what the body means: written twice in a header, the last one holds (ABC
# reads fields in order, as music21 and abc2midi do); of the others the first is kept.
IN_FORCE = ("M", "L", "Q")
_FIELD = re.compile(r"^([A-Za-z]):\s*(.*)$")
CHORD_SYMBOL = re.compile(r"^[A-G][#b]?(m|min|maj|dim|aug|sus|add|M)?\d*(/[A-G][#b]?)?$")


class ABCError(InputError):
    """A tune that cannot be read; the message says where."""


@dataclass
class Tune:
    """One tune: its header fields in order (name, value) and its body lines."""

    fields: list[tuple[str, str]]
    body: list[str]
    number: str = ""  # the X: number as written, to name the tune in messages

    def field(self, name: str) -> str | None:
        return next((v for k, v in self.fields if k == name), None)

    def setting(self, name: str) -> str | None:
        """The header's last value of a field: the one in force where the body starts."""
        return next((v for k, v in reversed(self.fields) if k == name), None)

    @property
    def title(self) -> str:
        return self.field("T") or ""

    def text(self) -> str:
        head = [f"{k}:{v}" for k, v in self.fields]
        return "\n".join(head + self.body)


def split_tunes(text: str) -> list[Tune]:
    """Every tune of an ABC file: each starts at an ``X:`` line and ends at a blank line.

    Lines before the first ``X:`` (a file header) are left out. The header runs to the
    ``K:`` line; field lines after it (``w:``, ``M:``) stay in the body, in place.
    """
    tunes: list[Tune] = []
    current: Tune | None = None
    in_header = False
    for raw in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = raw.rstrip()
        m = _FIELD.match(line)
        if m and m.group(1) == "X":
            current = Tune([("X", m.group(2).strip())], [], m.group(2).strip())
            tunes.append(current)
            in_header = True
        elif current is None or line.startswith("%"):
            continue
        elif not line.strip():
            current, in_header = None, False
        elif in_header and m:
            current.fields.append((m.group(1), m.group(2).strip()))
            in_header = m.group(1) != "K"
        else:
            in_header = False
            current.body.append(line)
    return tunes


@dataclass
class CleanReport:
    tunes_in: int = 0
    tunes_out: int = 0
    duplicates: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (tune title, reason)
    off_meter: int = 0  # readable tunes left out because their bars do not fit their meter


def clean_tune(tune: Tune, number: int = 1) -> Tune:
    """The fields that matter for the music and a tidy body.

    Kept: X (renumbered, so every tune starts alike and a sample can be primed with
    ``X:1``), T (the first title), M, L, Q, R and K last, as ABC requires. Dropped:
    comments, ``%%`` directives, other header fields (Z:, N:, B:, S:, O:, ...), lyrics
    (``w:``/``W:``), body field lines, annotations and fingerings in quotes (chord symbols
    such as ``"Am"`` stay), line-continuation backslashes, spacers; runs of spaces become one.
    """
    found: dict[str, str] = {"X": str(number)}
    for name, value in tune.fields:
        value = _strip_comment(value).strip()
        if name in KEPT_FIELDS and value and (name not in found or name in IN_FORCE):
            found[name] = value  # the first title; the meter, unit and tempo in force
    found.setdefault("K", "C")
    fields = [(name, found[name]) for name in KEPT_FIELDS if name in found]
    body = [b for b in (_clean_body_line(line) for line in tune.body) if b]
    return Tune(fields, body, str(number))


def _strip_comment(text: str) -> str:
    i = text.find("%")
    return text if i < 0 else text[:i]


_QUOTED = re.compile(r'"([^"]*)"')


def _clean_body_line(line: str) -> str:
    field_line = _FIELD.match(line)
    if field_line:  # a change of meter, unit or key mid-tune is music; lyrics and parts are not
        name = field_line.group(1)
        return f"{name}:{_strip_comment(field_line.group(2)).strip()}" if name in "MLK" else ""
    if line.startswith("%"):
        return ""
    line = _strip_comment(line)
    line = _QUOTED.sub(lambda m: m.group(0) if CHORD_SYMBOL.match(m.group(1)) else "", line)
    for layout in "\\y$`":  # line continuation, spacer, score line break, beam gap
        line = line.replace(layout, " ")
    return " ".join(line.split())


def clean_tunes(tunes: list[Tune]) -> tuple[list[Tune], CleanReport]:
    """Clean, drop tunes whose body does not read (with the reason) and exact duplicates."""
    report = CleanReport(tunes_in=len(tunes))
    out: list[Tune] = []
    seen: set[str] = set()
    for tune in tunes:
        cleaned = replace(clean_tune(tune), number=tune.number)  # messages: the X: as written
        try:
            read_bars(cleaned)
        except ABCError as e:
            # The reason names the X: number, which in a collection of one-tune files is
            # 1 for every tune: the title is what tells the user which tune it was.
            report.skipped.append((tune.title or "untitled", str(e)))
            continue
        key = "\n".join(cleaned.text().split("\n")[1:])  # all but the X: line
        if key in seen:
            report.duplicates += 1
            continue
        seen.add(key)
        out.append(cleaned)
    report.tunes_out = len(out)
    return out, report


def join_tunes(tunes: list[Tune]) -> str:
    """One tune per block, a blank line between tunes, a newline at the end."""
    return "".join(t.text() + "\n\n" for t in tunes)


# ---- reading the music -----------------------------------------------------------------

_NOTE = re.compile(r"(\^\^|\^|__|_|=)?([A-Ga-g])([,']*)")
_REST = re.compile(r"[zx]")
_LENGTH = re.compile(r"(\d*)(/*)(\d*)")
# Bar lines: | || |] [| [|] with repeat colons on either side (:| |: :: :||: ...), and
# [1 (a variant ending with no bar line before it); digits after one name an ending.
_BAR = re.compile(r"(:*\[\|\]:*|:*\[\|:*|:*\|[\]|]?:*|::+|\[(?=\d))([0-9][0-9,\-]*)?")
_INLINE_FIELD = re.compile(r"\[([A-Za-z]):([^\]]*)\]")
_TUPLET = re.compile(r"\((\d)(?::(\d{0,2}))?(?::(\d{0,2}))?")
_SKIP = re.compile(r'"[^"]*"|![^!\n]*!|\+[^+\n]*\+|\{[^}]*\}|[ \t.~HLMOPSTuvy$`\\]|[()\-]')
_MULTI_REST = re.compile(r"[ZX](\d*)")
# A note length or a rest's bar count with more digits than this is a slip, not music (and
# Python refuses to read numbers of thousands of digits).
MAX_DIGITS = 4
LINE_END = "\n"  # a line break standing for a bar line (see ``_Reader.line_end``)


def opens_or_closes_section(line: str) -> bool:
    """A bar line where a pickup, or the short bar that completes one, is written: a repeat
    sign, a double or thick bar, or '' (the start or end of the tune)."""
    return line == "" or any(mark in line for mark in (":", "||", "]", "[|"))


def meter_length(meter: str | None) -> Fraction | None:
    """A bar's length in whole notes: 'C' 4/4, 'C|' 2/2, '6/8', '(2+3)/8'; None for free."""
    if meter is None:
        return None
    m = meter.strip()
    if m == "C":
        return Fraction(1)
    if m == "C|":
        return Fraction(1)
    found = re.fullmatch(r"\(?([\d+ ]{1,20})\)?\s*/\s*(\d{1,4})", m)
    if not found:
        return None
    beats = sum(int(n) for n in found.group(1).split("+") if n.strip())
    note = int(found.group(2))
    return Fraction(beats, note) if beats and note else None  # 0/4 and 4/0 measure nothing


def unit_length(tune: Tune) -> Fraction:
    """L: as in force, else ABC's default: 1/16 for meters under 3/4, 1/8 for the others and
    with no meter (where music21 knows no default: ``charlm.music.render`` writes it out)."""
    written = tune.setting("L")
    if written:
        unit = _unit(written)
        if unit is None:
            raise ABCError(f"tune {tune.number}: cannot read the note length L:{written}")
        return unit
    bar = meter_length(tune.setting("M"))
    return Fraction(1, 16) if bar is not None and bar < Fraction(3, 4) else Fraction(1, 8)


def _unit(text: str) -> Fraction | None:
    """A unit note length as L: writes it (``1/8``); None when it is no positive length."""
    try:
        unit = Fraction(text.strip().replace(" ", ""))
    except (ValueError, ZeroDivisionError):  # ValueError too for a number of 5,000 digits
        return None
    return unit if unit > 0 else None


@dataclass
class Bar:
    length: Fraction  # in whole notes
    start: str  # the bar line before it ('' at the start of the tune)
    end: str  # the bar line after it ('' at the end of the tune)
    meter: Fraction | None  # the meter in force for this bar


@dataclass
class _Reader:
    unit: Fraction
    meter: Fraction | None
    bars: list[Bar] = field(default_factory=list)
    current: Fraction = Fraction(0)
    started: str = ""
    pending_notes: int = 0  # tuplet notes still to come
    tuplet: Fraction = Fraction(1)
    last: Fraction | None = None  # the length of the last note, for broken rhythm
    broken: Fraction | None = None  # the factor owed by the next note
    notes: list[int] = field(default_factory=list)  # MIDI-like pitch numbers, for the range

    def add(self, length: Fraction) -> None:
        if self.pending_notes:
            length *= self.tuplet
            self.pending_notes -= 1
        if self.broken is not None:
            length *= self.broken
            self.broken = None
        self.current += length
        self.last = length

    def bar(self, line: str) -> None:
        if self.current:  # two bar lines in a row (``| |:``) make no empty bar
            self.bars.append(Bar(self.current, self.started, line, self.meter))
        self.current, self.started = Fraction(0), line

    def line_end(self) -> None:
        """A line that stops with a full bar and no bar line closes that bar.

        ABC's rule is that a line break is no bar line, and a bar may run on to the next
        line (``F2`` here, ``f4f2f2f2 |`` there). But the Essen songs in music21's corpus
        end every phrase at a line break without a bar line: on 100 real tunes, reading
        those as one bar counted 140 right bars as wrong. A bar that already fills the
        meter cannot run on, so closing it there is right under both readings.
        """
        if self.meter is not None and self.current >= self.meter:
            self.bar(LINE_END)


def read_bars(tune: Tune) -> tuple[list[Bar], list[int]]:
    """The bars of a tune with their lengths, and its pitches; ABCError where it does not read."""
    r = _Reader(unit_length(tune), meter_length(tune.setting("M")))
    for line in tune.body:
        field_line = _FIELD.match(line)
        if field_line:
            _inline_field(r, field_line.group(1), field_line.group(2))
        else:
            _read_line(r, line, tune.number)
            if not line.rstrip().endswith("\\"):  # a backslash continues the line
                r.line_end()
    if r.current:
        r.bars.append(Bar(r.current, r.started, "", r.meter))
    if not r.bars:
        raise ABCError(f"tune {tune.number}: no notes")
    return r.bars, r.notes


def _read_line(r: _Reader, line: str, number: str) -> None:
    i = 0
    while i < len(line):
        c = line[i]
        if c == "%":
            return
        m = _INLINE_FIELD.match(line, i)
        if m:
            _inline_field(r, m.group(1), m.group(2))
            i = m.end()
            continue
        m = _BAR.match(line, i)
        if m:
            r.bar(m.group(1))
            i = m.end()
            continue
        m = _TUPLET.match(line, i)
        if m:
            p = int(m.group(1))
            q = int(m.group(2)) if m.group(2) else _tuplet_default(p, r.meter)
            if not (p and q):  # (0 and (3:0 would give notes no length, or an endless one
                raise ABCError(f"tune {number}: cannot read the tuplet {m.group(0)!r}")
            r.tuplet, r.pending_notes = Fraction(q, p), int(m.group(3) or p)
            i = m.end()
            continue
        if c in "<>":
            j = i
            while j < len(line) and line[j] == c:
                j += 1
            _broken(r, c, j - i, number, line, i)
            i = j
            continue
        if c == "[":
            i = _chord(r, line, i, number)
            continue
        m = _NOTE.match(line, i) or _REST.match(line, i)
        if m:
            i = _note(r, line, m, number)
            continue
        m = _MULTI_REST.match(line, i)
        if m:  # Z4: four whole bars of rest, each a bar of its own
            if len(m.group(1)) > MAX_DIGITS:
                raise ABCError(f"tune {number}: cannot read the rest {line[i : i + 12]!r}")
            bars = int(m.group(1) or 1)
            r.bars += [Bar(r.meter or r.unit, r.started, "", r.meter) for _ in range(bars)]
            i = m.end()
            continue
        m = _SKIP.match(line, i)
        if m:
            i = m.end()
            continue
        raise ABCError(f"tune {number}: cannot read {line[i : i + 12]!r}")


def _tuplet_default(p: int, meter: Fraction | None) -> int:
    if p in (2, 4, 8):
        return 3
    if p in (3, 6):
        return 2
    compound = meter is not None and meter.numerator % 3 == 0 and meter.numerator > 3
    return 3 if compound else 2


def _inline_field(r: _Reader, name: str, value: str) -> None:
    if name == "M":
        r.meter = meter_length(value)
    elif name == "L":
        r.unit = _unit(value) or r.unit  # unreadable: keep the unit


def _length(line: str, i: int, number: str) -> tuple[Fraction, int]:
    """The length written after a note at ``i``, in units, and where it ends."""
    m = _LENGTH.match(line, i)
    num, slashes, den = m.group(1), m.group(2), m.group(3)
    if len(num) > MAX_DIGITS or len(den) > MAX_DIGITS or (den and not int(den)):
        raise ABCError(f"tune {number}: cannot read the length {line[i - 1 : i + 12]!r}")
    value = Fraction(int(num) if num else 1)
    if slashes:  # A/ is A/2, A// is A/4, A/3 is a third
        value /= int(den) * 2 ** (len(slashes) - 1) if den else 2 ** len(slashes)
    return value, m.end()


def _pitch(m: re.Match[str]) -> int:
    base = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}[m.group(2).upper()]
    octave = 60 if m.group(2).isupper() else 72
    octave += 12 * m.group(3).count("'") - 12 * m.group(3).count(",")
    shift = {"^": 1, "^^": 2, "_": -1, "__": -2}.get(m.group(1) or "", 0)
    return octave + base + shift


def _note(r: _Reader, line: str, m: re.Match[str], number: str) -> int:
    length, end = _length(line, m.end(), number)
    if length == 0:
        raise ABCError(f"tune {number}: a note of length 0 at {line[m.start() : end]!r}")
    if m.re is _NOTE:
        r.notes.append(_pitch(m))
    r.add(length * r.unit)
    return end


def _chord(r: _Reader, line: str, i: int, number: str) -> int:
    close = line.find("]", i)
    if close < 0:
        raise ABCError(f"tune {number}: a chord '[' is not closed")
    first: Fraction | None = None
    j = i + 1
    while j < close:
        m = _NOTE.match(line, j)
        if m:
            length, j = _length(line, m.end(), number)
            r.notes.append(_pitch(m))
            first = length if first is None else first
            continue
        if line[j] in " -.~":
            j += 1
            continue
        raise ABCError(f"tune {number}: cannot read the chord {line[i : close + 1]!r}")
    if first is None:
        raise ABCError(f"tune {number}: an empty chord {line[i : close + 1]!r}")
    outer, end = _length(line, close + 1, number)
    if not first * outer:
        raise ABCError(f"tune {number}: a chord of length 0 at {line[i:end]!r}")
    r.add(first * outer * r.unit)
    return end


def _broken(r: _Reader, c: str, n: int, number: str, line: str, i: int) -> None:
    """``a>b``: a is dotted and b shortened (``>>`` double-dotted); ``<`` the other way round."""
    if r.last is None:
        raise ABCError(f"tune {number}: broken rhythm {line[i : i + n]!r} with no note before")
    short = Fraction(1, 2**n)
    long_, other = 2 - short, short
    if c == "<":
        long_, other = other, long_
    r.current += r.last * (long_ - 1)  # the note before, already counted, is re-lengthened
    r.broken = other


def tune_range(pitches: list[int]) -> int:
    """Semitones between the lowest and highest note."""
    return max(pitches) - min(pitches) if pitches else 0
