"""The bar check on the notations real tunes use, one hand-written case each.

Each case is a construct found in music21's collections (or named by ABC 2.1) with the bar
lengths a musician would count; a case the checker once got wrong says so.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from charlm.cli import app
from charlm.music.abc import clean_tunes, read_bars, split_tunes
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


# ---- malformed tunes: a reason, never an exception ---------------------------------------

MALFORMED = {
    # name: (header lines, body, what the reason says; "" when the tune reads)
    "a tuplet of 0 notes": ("M:4/4\nL:1/8", "(0CDE F2 G4|", "cannot read the tuplet '(0'"),
    "a tuplet in the time of 0": ("M:4/4\nL:1/8", "(3:0CDE F2 G4|", "the tuplet '(3:0'"),
    "a length divided by 0": ("M:4/4\nL:1/8", "C/0 D7|", "cannot read the length 'C/0"),
    "a chord divided by 0": ("M:4/4\nL:1/8", "[CE]/0 D7|", "cannot read the length ']/0"),
    "an absurd note length": ("M:4/4\nL:1/8", "C99999 | D8 |", "cannot read the length"),
    "a number of 5,000 digits": ("M:4/4\nL:1/8", "C" + "9" * 5000 + "|", "cannot read"),
    "an absurd multi-bar rest": ("M:4/4\nL:1/8", "Z99999999999 | C8 |", "cannot read the rest"),
    "a unit of 0": ("M:4/4\nL:0", "CDEF GABc|", "cannot read the note length L:0"),
    "a negative unit": ("M:4/4\nL:-1/8", "CDEF GABc|", "cannot read the note length L:-1/8"),
    "no body": ("M:4/4\nL:1/8", "", "no notes"),
    "a meter of 4/0": ("M:4/0\nL:1/8", "CDEF GABc|", ""),
    "a meter of 0/4": ("M:0/4\nL:1/8", "CDEF GABc|", ""),
    "an inline meter of 4/0": ("M:4/4\nL:1/8", "CDEF GABc|[M:4/0] CDEF|", ""),
    "an inline unit of 0": ("M:4/4\nL:1/8", "CDEF GABc|[L:0] CDEF GABc|", ""),
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_a_malformed_tune_gets_a_reason_never_an_exception(name: str) -> None:
    head, body, reason = MALFORMED[name]
    [check], summary = check_text(f"X:3\nT:t\n{head}\nK:C\n{body}\n")
    assert check.parses == (reason == "") and summary.tunes == 1
    if reason:
        assert check.error.startswith("tune 3: ") and reason in check.error
        assert "\n" not in check.error and len(check.error) < 80
    if head.startswith(("M:4/0", "M:0/4")):  # no bar length to read: no meter, nothing checked
        assert not check.has_meter and check.bars_checked == 0


ABC_SYMBOLS = "ABCDEFGabcdefgzxZX,'^_=/0123456789|:[]()<>{}!+.-~\"HLMTuv \nKLMQ"


@settings(max_examples=300, deadline=None)
@example(head="M:4/4\nL:1/8\n", body="X:")  # a second tune in the body
@given(
    head=st.sampled_from(["M:4/4\nL:1/8\n", "M:4/0\n", "L:0\n", "L:1/0\n", "M:(2+3)/8\n", ""]),
    body=st.text(ABC_SYMBOLS, max_size=40),
)
def test_any_text_is_checked_and_cleaned_without_an_exception(head: str, body: str) -> None:
    # What music check and prepare abc do with a tune: every failure is a reason.
    text = f"X:1\nT:t\n{head}K:C\n{body}\n"  # the body may start more tunes ("X:")
    checks, _ = check_text(text)
    assert all(c.parses or c.error for c in checks)
    kept, report = clean_tunes(split_tunes(text))
    assert len(kept) + len(report.skipped) + report.duplicates == len(checks)


def test_a_header_that_writes_meter_or_unit_twice_means_the_last() -> None:
    # ABC reads fields in order, as music21 does: L:1/16 and M:2/4 hold.
    text = "X:1\nT:t\nM:C\nL:1/8\nM:2/4\nL:1/16\nK:C\nCDEF GABc|c8|]\n"
    assert lengths(text) == [Fraction(1, 2), Fraction(1, 2)]
    check = check_text(text)[0][0]
    assert (check.bars_right, check.bars_checked) == (2, 2)
    cleaned = clean_tunes(split_tunes(text))[0][0]
    assert (cleaned.field("M"), cleaned.field("L")) == ("2/4", "1/16")


def test_the_check_table_gives_the_reason_whether_or_not_the_tune_has_a_title() -> None:
    text = tune("C8|]") + "\n" + tune("C & D|").replace("T:t", "T:Titled") + "\nX:3\nK:C\n(0C|\n"
    r = CliRunner().invoke(app, ["music", "check", "-"], input=text)
    assert r.exit_code == 0, r.output
    rows = r.stderr.splitlines()[1:4]
    assert rows[0].endswith("  t")
    assert rows[1].endswith("  Titled (tune 1: cannot read '& D|')")
    assert rows[2].endswith("  untitled (tune 3: cannot read the tuplet '(0')")


def test_prepare_abc_skips_malformed_tunes_with_their_reasons(tmp_path: Path) -> None:
    tunes = [
        f"X:{k}\nT:{name}\n{head}\nK:C\n{body}\n"
        for k, (name, (head, body, _)) in enumerate(MALFORMED.items(), 1)
    ]
    src = tmp_path / "bad.abc"
    src.write_text("\n".join([tune("CDEF GABc|c8|]"), *tunes]), encoding="utf-8")
    r = CliRunner().invoke(app, ["prepare", "abc", str(src), "--min-bars-right", "0"])
    assert r.exit_code == 0 and "Traceback" not in r.output
    skipped = sum(1 for _, _, reason in MALFORMED.values() if reason)
    assert f"{skipped} unreadable skipped" in r.stderr
    assert "skipped tune 1: cannot read the tuplet '(0' (a tuplet of 0 notes)" in r.stderr
