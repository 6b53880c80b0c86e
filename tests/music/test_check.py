"""The bar check on the notations real tunes use, one hand-written case each.

Each case is a construct found in music21's collections (or named by ABC 2.1) with the bar
lengths a musician would count; a case the checker once got wrong says so.
"""

from __future__ import annotations

from fractions import Fraction

import pytest

from charlm.music.abc import read_bars, split_tunes
from charlm.music.check import check_text


def tune(body: str, meter: str = "4/4", unit: str = "1/8") -> str:
    return f"X:1\nT:t\nM:{meter}\nL:{unit}\nK:C\n{body}\n"


def lengths(text: str) -> list[Fraction]:
    return [b.length for b in read_bars(split_tunes(text)[0])[0]]


CASES = {
    # name: (tune, bar lengths in whole notes)
    "repeats and variant endings |1 :|2": (
        tune("|: CDEF GABc |1 cBAG FEDC :|2 cBAG F4 |]"),
        ["1", "1", "1"],
    ),
    "variant endings [1 [2": (tune("|: CDEF GABc | [1 cBAG FEDC :| [2 cBAG F4 |]"), ["1"] * 3),
    # These three bar lines were read as an unknown ':' or ']' and the tune failed.
    "||: opens a repeat": (tune("CDEF GABc ||: cBAG FEDC :||"), ["1", "1"]),
    ":||: closes and opens one": (tune("CDEF GABc :||: cBAG FEDC |]"), ["1", "1"]),
    "[|] an invisible bar line": (tune("CDEF GABc [|] cBAG FEDC |]"), ["1", "1"]),
    "dotted bar line .|": (tune("CDEF GABc .| cBAG FEDC |]"), ["1", "1"]),
    "tuplets (3 and (3:2:3": (tune("(3CDE F2 G4 | (3:2:3CDE F2 G4 |]"), ["1", "1"]),
    "tuplets with slurs and staccato": (
        tune("d>B (3.B.B.B G>B (3(BBB)|", "C|"),
        ["1"],
    ),
    "broken rhythm > < >> <<": (tune("C>D E<F G>>A B<<c|"), ["1"]),
    "broken rhythm after a chord": (tune("[CE]>D E2 F4|"), ["1"]),
    "chords [CEG] with lengths inside and out": (
        tune("[CEG]2 [CE]2 [C2E2] [CEG]2 | [CE]3/2[CE]/2 C2 [C4E4] |"),
        ["1", "1"],
    ),
    "grace notes {...} take no time": (tune("{g}C2 {gag}D2 {/e}E2 F2|"), ["1"]),
    "multi-bar rests Z4, Z": (tune("Z4 | CDEF GABc | Z | z8 |"), ["1"] * 7),
    "inline meter [M:3/4]": (tune("CDEF GABc | [M:3/4] CDE FGA | [M:4/4] C8 |"), ["1", "3/4", "1"]),
    "L: changes on a line and inline": (tune("CDEF GABc |\nL:1/4\nCDEF | [L:1/8] C8 |"), ["1"] * 3),
    "ties across a bar line": (tune("C2-C2 D4- | D8 |"), ["1", "1"]),
    "decorations !trill! ~ . H T u v !>! +fermata+": (
        tune("!trill!C2 ~D2 .E2 HF2 | TG2 uA2 vB2 !>!c2 | +fermata+C8|"),
        ["1"] * 3,
    ),
    "quoted chord symbols and annotations": (
        tune('"Am"C2 "G7"D2 "^text"E2 F2|"C/E"C8|'),
        ["1", "1"],
    ),
    "line continuation \\": (tune("CDEF \\\nGABc | C8 |"), ["1", "1"]),
    "a bar split across lines": (tune("CDEF\nGABc | C8 |"), ["1", "1"]),
    "a pickup completing the bar a line ended short": (
        tune("G4 | A4 G2 | E4\nE2 | C6 |", "3/4"),
        ["1/2", "3/4", "3/4", "3/4"],
    ),
    # Essen songs end each phrase at a line break with no bar line: the two bars were one.
    "a full bar ended by a line break": (tune("CDEF GABc\nC8 |"), ["1", "1"]),
    "pickups at section starts": (
        tune("G2 | CDEF GABc | C6 :|\n|: G2 | CDEF GABc | C6 |]"),
        ["1/4", "1", "3/4", "1/4", "1", "3/4"],
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_real_notation_is_measured_as_written(name: str) -> None:
    text, expected = CASES[name]
    assert lengths(text) == [Fraction(x) for x in expected]
    check = check_text(text)[0][0]
    assert check.parses and check.bars_right == check.bars_checked > 0


def test_a_line_break_does_not_close_a_bar_that_is_short() -> None:
    # F2 ends the line, f4f2f2f2 completes its bar on the next (Essen's 'Ritter und Magd').
    text = tune("F2F2G2 | A4B2c4A2 | F2\nf4f2f2f2 | e2c2d2c4c2 |]", "6/4")
    assert lengths(text) == [Fraction(3, 4), Fraction(3, 2), Fraction(3, 2), Fraction(3, 2)]


def test_a_line_break_closes_a_bar_that_is_too_long() -> None:
    # Too long at the line break already: one wrong bar, not one swallowing the next line.
    text = tune("CDEF GABc d2\nC8 |]")
    assert lengths(text) == [Fraction(5, 4), Fraction(1)]
    check = check_text(text)[0][0]
    assert (check.bars_right, check.bars_checked) == (1, 2)


def test_a_short_bar_inside_a_section_is_still_wrong() -> None:
    # The line-break rule must not excuse a short bar that a bar line closes.
    check = check_text(tune("CDEF GABc | CDEF |\nGABc c4 | C8 |]"))[0][0]
    assert (check.bars_right, check.bars_checked) == (3, 4)
