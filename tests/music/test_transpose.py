"""Transposing ABC on its text, checked note by note against music21's reading of both texts."""

from __future__ import annotations

import random
import warnings

import pytest

from charlm.music.abc import clean_tunes, split_tunes
from charlm.music.corpus import music21_collections, read_abc
from charlm.music.transpose import TransposeError, interval_to_target, parse_key, transpose_tune

converter = pytest.importorskip("music21.converter", reason="music21 reads the tunes back")
harmony = pytest.importorskip("music21.harmony")


def midi(text: str) -> list[int]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        score = converter.parse(text, format="abc")
    # Chord symbols are left out: music21 voices them in an octave of its own choosing.
    notes = [n for n in score.flatten().notes if not isinstance(n, harmony.ChordSymbol)]
    return [p.midi for n in notes for p in n.pitches]


def tune(key: str, body: str) -> str:
    return f"X:1\nT:t\nM:4/4\nL:1/8\nK:{key}\n{body}"


def assert_music21_agrees(original: str, transposed: str) -> None:
    """Every pitch music21 reads in the transposed text is the original's, moved by the interval."""
    key = next(line[2:] for line in original.split("\n") if line.startswith("K:"))
    semitones = interval_to_target(parse_key(key)).semitones
    before, after = midi(original), midi(transposed)
    assert before and [p + semitones for p in before] == after


CASES = {
    # name: (key, body, the transposed key and body)
    "major to C, an explicit sharp stays explicit": (
        "D",
        "d2 f2 a2 ^g2|",
        "C",
        "c2 e2 g2 ^f2|",
    ),
    "a flat key up to C, explicit accidentals relative to the new key": (
        "Bb",
        "B2 d2 f2 _e2 =e2|",
        "C",
        "c2 e2 g2 =f2 ^f2|",
    ),
    "an accidental holds to the end of its bar, at its own octave only": (
        "G",
        "=F2 F2 f2 z2|F2 z6|",
        "C",
        "_B2 B2 b2 z2|B2 z6|",
    ),
    "minor to A minor": ("Em", "E2 G2 B2 ^d2|e8|", "Am", "A2 c2 e2 ^g2|a8|"),
    "E dorian to D dorian, C sharp by the signature and by accident": (
        "E Dorian",
        "E2 F2 G2 A2|B2 c2 ^c2 =c2|",
        "D Dorian",
        "D2 E2 F2 G2|A2 B2 =B2 _B2|",
    ),
    "A mixolydian to G mixolydian": ("Amix", "A2 c2 e2 g2|", "Gmix", "G2 B2 d2 f2|"),
    "octave marks and case across the octave line": (
        "D",
        "C, D, c' d' B c|",
        "C",
        "B,, C, b c' A B|",
    ),
    "chords, grace notes and chord symbols": (
        "G",
        '"G"[GBd]2 {a}g2 "D7/F#"[DF]2 "Em"E2|',
        "C",
        '"C"[ceg]2 {d\'}c\'2 "G7/B"[GB]2 "Am"A2|',
    ),
    "F sharp major goes down to C (a tritone either way: down)": (
        "F#",
        "F2 A2 c2 e2|",
        "C",
        "C2 E2 G2 B2|",
    ),
    "an inline key change moves with the tune": (
        "G",
        "G2 B2 d2 g2|[K:D] f2 c2 d4|",
        "C",
        "c2 e2 g2 c'2|[K:G] b2 f2 g4|",
    ),
    "a key change on a line of its own": (
        "G",
        "G8|\nK:Em\nE2 ^D2 E4|",
        "C",
        "c8|\nK:Am\nA2 ^G2 A4|",
    ),
    "annotations and comments are text, not chords or notes": (
        "D",
        '"Fine"d4 "^after"A4|% D.C. al fine',
        "C",
        '"Fine"c4 "^after"G4|% D.C. al fine',
    ),
    "clef and octave words after the key are kept": (
        "E phr bass",
        "E2 F2 G4|",
        "E phr bass",
        "E2 F2 G4|",
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_hand_written_tunes_transpose_note_by_note(name: str) -> None:
    key, body, new_key, new_body = CASES[name]
    out = transpose_tune(tune(key, body))
    assert out == tune(new_key, new_body)
    assert_music21_agrees(tune(key, body), out)


@pytest.mark.parametrize(
    ("key", "target", "semitones"),
    [("G", "C", 5), ("D", "C", -2), ("A", "C", 3), ("E", "C", -4), ("Bb", "C", 2),
     ("Eb", "C", -3), ("Gm", "Am", 2), ("Bm", "Am", -2), ("F#m", "Am", 3), ("C", "C", 0),
     ("D dorian", "D dorian", 0), ("Ador", "Ddor", 5), ("Glyd", "Flyd", -2)],
)  # fmt: skip
def test_every_mode_goes_to_its_key_without_accidentals_the_short_way(
    key: str, target: str, semitones: int
) -> None:
    k = parse_key(key)
    by = interval_to_target(k)
    assert by.semitones == semitones and k.moved(by).text() == target
    assert all(a == 0 for a in k.moved(by).signature())


@pytest.mark.parametrize("key", ["none", "Hp", "HP", "D exp ^f", "G ^c", "Bn"])
def test_keys_without_a_tonic_or_with_their_own_accidentals_are_refused(key: str) -> None:
    with pytest.raises(TransposeError):
        transpose_tune(tune(key, "C2 D2 E4|"))


def test_a_sample_of_real_tunes_agrees_with_music21() -> None:
    """Eight tunes from each of three collections: Irish, Scottish airs and Essen songs."""
    found = music21_collections()
    tunes = []
    for name in ("oneills1850", "airdsAirs", "essenFolksong"):
        text = "".join(read_abc(f) + "\n\n" for f in found[name][:2])
        kept, _ = clean_tunes(split_tunes(text))
        tunes += random.Random(0).sample(kept, 8)
    for t in tunes:
        assert_music21_agrees(t.text(), transpose_tune(t.text()))
