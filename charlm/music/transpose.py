"""Transposing ABC tunes on their text, to the key signature with no sharps or flats.

music21 reads ABC but writes none, so ``charlm prepare abc --transpose C`` rewrites the text
itself. The rule: a tune keeps its mode and moves to the key of that mode with no sharps or
flats: majors to C, minors to A minor, dorian to D, phrygian to E, lydian to F, mixolydian
to G, locrian to B (E dorian becomes D dorian; D dorian stays). Of the two ways there (up or
down), the shorter is taken, so a tune stays near its own range (at most a tritone away).

One interval serves a whole tune, the one from its header key: a later key change (a
``K:`` line or ``[K:...]``) is transposed with it, so a tune that modulates keeps its
modulation. Every note moves by that interval, letter and octave (``,`` ``'`` and case)
together; a note written with an accidental keeps an explicit one (what it must be in the
new key), a note without one gets none, and ABC's rule that an accidental holds to the end
of its bar is followed on both sides. Chord symbols in quotes (``"Am"``) are transposed too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from charlm.errors import InputError
from charlm.music.abc import CHORD_SYMBOL

LETTERS = "CDEFGAB"
WHITE = (0, 2, 4, 5, 7, 9, 11)  # the semitone of each letter above C
# Modes by the scale degree of the major scale they start on; the key with no sharps or
# flats in each mode starts on the white note of that degree.
MODES = {"maj": 0, "ion": 0, "dor": 1, "phr": 2, "lyd": 3, "mix": 4, "min": 5, "aeo": 5, "loc": 6}
ACCIDENTALS = {"__": -2, "_": -1, "=": 0, "^": 1, "^^": 2}
WRITTEN = {v: k for k, v in ACCIDENTALS.items()}
TARGETS = ("C",)  # the --transpose values: C major, and each mode's key without accidentals

_KEY = re.compile(r"\s*([A-G])([#b]?)(.*)$", re.DOTALL)
_NOTE = re.compile(r"(\^\^|\^|__|_|=)?([A-Ga-g])([,']*)")
_FIELD_LINE = re.compile(r"^([A-Za-z]):(.*)$")
_INLINE_FIELD = re.compile(r"\[([A-Za-z]):([^\]]*)\]")
_KEPT = re.compile(r"![^!\n]*!|\+[^+\n]*\+")  # decorations: letters in them are no notes
_QUOTED = re.compile(r'"([^"]*)"')
_CHORD_NAME = re.compile(r"([A-G])([#b]?)(.*?)(?:/([A-G])([#b]?))?$")


class TransposeError(InputError):
    """A tune this module cannot transpose (no key to start from, or a spelling beyond ^^)."""


@dataclass(frozen=True)
class Interval:
    """Letters and semitones to move by: a major second down is (-1, -2)."""

    steps: int
    semitones: int


@dataclass(frozen=True)
class Key:
    letter: int  # index into LETTERS
    alter: int  # -1 flat, 0, 1 sharp: the tonic's own accidental
    degree: int  # the mode, as in MODES
    rest: str  # the K: text after the tonic (mode words, clef, octave), kept as written

    def signature(self) -> list[int]:
        """The alteration of each letter (C..B) in this key: -1, 0 or 1 (2 in rare keys)."""
        major = (self.letter - self.degree) % 7
        major_pc = (WHITE[self.letter] + self.alter - _major_steps(self.degree)) % 12
        sig = [0] * 7
        for i in range(7):
            letter = (major + i) % 7
            pc = (major_pc + _major_steps(i)) % 12
            sig[letter] = (pc - WHITE[letter] + 6) % 12 - 6
        return sig

    def moved(self, by: Interval) -> Key:
        letter = (self.letter + by.steps) % 7
        pc = WHITE[self.letter] + self.alter + by.semitones
        alter = (pc - WHITE[letter] + 6) % 12 - 6
        if abs(alter) > 1:
            raise TransposeError(f"the key would need a double accidental ({self.text()})")
        return Key(letter, alter, self.degree, self.rest)

    def text(self) -> str:
        return LETTERS[self.letter] + {-1: "b", 0: "", 1: "#"}[self.alter] + self.rest


def _major_steps(degree: int) -> int:
    """Semitones from the major scale's tonic up to its ``degree``-th note."""
    return WHITE[degree % 7] + 12 * (degree // 7)


def parse_key(value: str) -> Key:
    """A K: field's key; TransposeError for none, bagpipe keys and explicit accidentals."""
    m = _KEY.match(value)
    if not m:
        raise TransposeError(f"no key to transpose from (K:{value.strip()})")
    letter, accidental, rest = m.groups()
    words = rest.split()
    mode = words[0].lower() if words and words[0][0].isalpha() and "=" not in words[0] else ""
    if mode and mode[:1] == "m" and mode[:3] not in MODES:
        mode = "min"  # 'm', 'M' and 'Minor' are minor, as music21 reads them
    if mode and mode[:3] not in MODES:
        if not _is_clef_word(mode):
            raise TransposeError(f"unknown mode in K:{value.strip()}")
        mode = ""
    if any(re.fullmatch(r"[_=^]+[A-Ga-g]|exp", w) for w in words):
        raise TransposeError(f"explicit key accidentals are not transposed (K:{value.strip()})")
    return Key(
        LETTERS.index(letter), {"#": 1, "b": -1}.get(accidental, 0), MODES.get(mode[:3], 0), rest
    )


def _is_clef_word(word: str) -> bool:
    return word.startswith(("clef", "bass", "treble", "alto", "tenor", "middle", "transpose"))


def interval_to_target(key: Key) -> Interval:
    """From ``key`` to its mode's key with no sharps or flats, the shorter way round."""
    target = key.degree  # the white tonic of the mode: C for major, A for minor...
    up = (target - key.letter) % 7
    options = []
    for steps in (up, up - 7):
        natural = WHITE[(key.letter + steps) % 7] + 12 * ((key.letter + steps) // 7)
        natural -= WHITE[key.letter]
        off = (WHITE[target] - (WHITE[key.letter] + key.alter) - natural + 6) % 12 - 6
        options.append(Interval(steps, natural + off))
    # Shorter first; at a tritone, down (so F# major goes to C below it).
    return min(options, key=lambda i: (abs(i.semitones), i.semitones))


@dataclass
class _Side:
    """One text's accidentals: its key signature and what the bar so far has changed."""

    signature: list[int]
    bar: dict[tuple[int, int], int] = field(default_factory=dict)  # (letter, octave) -> alter

    def alter(self, letter: int, octave: int) -> int:
        return self.bar.get((letter, octave), self.signature[letter])


@dataclass
class _Transposer:
    by: Interval
    source: _Side
    target: _Side

    def note(self, m: re.Match[str]) -> str:
        accidental, name, marks = m.groups()
        letter = LETTERS.index(name.upper())
        octave = (4 if name.isupper() else 5) + marks.count("'") - marks.count(",")
        if accidental:
            self.source.bar[(letter, octave)] = ACCIDENTALS[accidental]
        pitch = 12 * octave + WHITE[letter] + self.source.alter(letter, octave)
        number = 7 * octave + letter + self.by.steps
        new_letter, new_octave = number % 7, number // 7
        alter = pitch + self.by.semitones - 12 * new_octave - WHITE[new_letter]
        if alter not in WRITTEN:
            raise TransposeError(f"{m.group(0)!r} would need more than a double accidental")
        written = ""
        if accidental or self.target.alter(new_letter, new_octave) != alter:
            written = WRITTEN[alter]
            self.target.bar[(new_letter, new_octave)] = alter
        return written + _spell(new_letter, new_octave)

    def bar_line(self) -> None:
        self.source.bar.clear()
        self.target.bar.clear()

    def key_change(self, value: str) -> str:
        """A K: inside the tune: the new signature on both sides, the key moved."""
        key = parse_key(value)
        moved = key.moved(self.by)
        self.source, self.target = _Side(key.signature()), _Side(moved.signature())
        return moved.text()

    def chord_symbol(self, name: str) -> str:
        m = _CHORD_NAME.match(name)
        if not m or not CHORD_SYMBOL.match(name):
            return name  # an annotation ("Fine", "^text"), not a chord: left as written
        root, sharp, kind, bass, bass_sharp = m.groups()
        out = self._pitch_name(root, sharp) + kind
        return out + ("/" + self._pitch_name(bass, bass_sharp) if bass else "")

    def _pitch_name(self, letter: str, accidental: str | None) -> str:
        key = Key(LETTERS.index(letter), {"#": 1, "b": -1}.get(accidental or "", 0), 0, "")
        return key.moved(self.by).text()


def _spell(letter: int, octave: int) -> str:
    if octave >= 5:
        return LETTERS[letter].lower() + "'" * (octave - 5)
    return LETTERS[letter] + "," * (4 - octave)


def transpose_tune(text: str) -> str:
    """One tune's text (header and body) with every note moved to the target key."""
    lines = text.split("\n")
    k = next((i for i, line in enumerate(lines) if line.startswith("K:")), None)
    if k is None:
        raise TransposeError("no K: field")
    key = parse_key(lines[k][2:])
    by = interval_to_target(key)
    target = key.moved(by)
    t = _Transposer(by, _Side(key.signature()), _Side(target.signature()))
    out = [*lines[:k], f"K:{target.text()}"]
    for line in lines[k + 1 :]:
        field_line = _FIELD_LINE.match(line)
        if field_line and field_line.group(1) == "K":
            out.append(f"K:{t.key_change(field_line.group(2))}")
        elif field_line:
            out.append(line)
        else:
            out.append(_body_line(t, line))
    return "\n".join(out)


def _body_line(t: _Transposer, line: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(line):
        if line[i] == "%":  # a comment: no notes in it
            out.append(line[i:])
            break
        m = _INLINE_FIELD.match(line, i)
        if m:
            name, value = m.groups()
            out.append(f"[K:{t.key_change(value)}]" if name == "K" else m.group(0))
        elif m := _QUOTED.match(line, i):
            out.append(f'"{t.chord_symbol(m.group(1))}"')
        elif m := _KEPT.match(line, i):
            out.append(m.group(0))
        elif m := _NOTE.match(line, i):
            out.append(t.note(m))
        else:
            if line[i] == "|" or line.startswith("::", i):
                t.bar_line()
            out.append(line[i])
            i += 1
            continue
        i = m.end()
    return "".join(out)
