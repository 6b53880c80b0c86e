"""Is a tune well-formed? The musical check behind ``charlm music check``.

For each tune: whether it reads (``charlm.music.abc.read_bars`` consumes every symbol), whether
it has a meter and a key, the share of its bars whose length matches the meter, its
range in semitones and its length in bars. A bar shorter than the meter is not counted
against the tune where music allows it: the first bar (a pickup), the last bar, and a bar
that opens or closes a section (``|:``, ``:|``, ``||``, ``|]``), where folk tunes put their
pickups and the bars that complete them. A line break closes a bar that already fills the
meter (``charlm.music.abc._Reader.line_end`` says why).

Held against music21's own ABC reader (tests/music/test_against_music21.py, on sampled
tunes): asked for the bars as written, music21 gives each tune the same length and draws no
bar line that is not drawn here. Where the two readers' figures differ, it is for these
reasons, found by counting bars by hand in the tunes where they did:

- music21 cuts a bar longer than its meter in two and gives the rest a time signature of its
  own (``reBar``), so comparing each of its measures with the meter in force counts a bar too
  long as one or two right bars. Sampled tunes write many bars too long: most of the gap
  between the two on them. ``charlm music render`` reads with the bars as written.
- A tune with no meter has no bar to check here; music21 compares each of its measures with
  a meter made from that measure, so every one fits.
- Here a short bar at a section's edge is a pickup or the bar that completes one and is not
  counted; music21 counts every such bar wrong (a comparison that leaves out only each tune's
  first and last bar): most of the gap on real tunes.
- A line break closes a bar that already fills the meter here, as the Essen songs need;
  music21 joins the two into one bar too long.
- music21 drops the note after the fermata ``H`` (``Hg2`` takes no time), so its bar is
  short there. (It also loses broken rhythm after a closing slur: ``(FD)>A`` plays as three
  even notes, which leaves the bar's length as it is.)
- What reads: here every symbol must be ABC, so a stray ``}``, ``:`` or letter makes a tune
  unreadable; music21 passes over them or guesses ("assuming C"). music21 knows no unit
  length for a tune with neither ``M:`` nor ``L:`` (ABC's is 1/8), cannot read ``L:1``, and
  wants a number after ``X:``; ``charlm music render`` writes the first and the last out.
- A header that writes ``M:`` or ``L:`` twice means the last one; both readers take it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from charlm.music.abc import (
    ABCError,
    Bar,
    Tune,
    meter_length,
    opens_or_closes_section,
    read_bars,
    split_tunes,
    tune_range,
)


@dataclass
class TuneCheck:
    number: str
    title: str
    parses: bool
    has_meter: bool
    has_key: bool
    bars: int = 0
    bars_checked: int = 0  # bars with a meter to compare against, exceptions left out
    bars_right: int = 0
    range: int = 0  # semitones from the lowest note to the highest
    notes: int = 0
    error: str = ""

    @property
    def bar_fraction(self) -> float | None:
        return self.bars_right / self.bars_checked if self.bars_checked else None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"bar_fraction": self.bar_fraction}


def check_tune(tune: Tune) -> TuneCheck:
    meter = tune.setting("M")
    has_meter = meter is not None and (meter.strip() == "none" or meter_length(meter) is not None)
    key = tune.setting("K")
    result = TuneCheck(tune.number, tune.title, False, has_meter, bool(key and key.strip()))
    try:
        bars, pitches = read_bars(tune)
    except ABCError as e:
        result.error = str(e)
        return result
    result.parses = True
    result.bars, result.range, result.notes = len(bars), tune_range(pitches), len(pitches)
    for k, bar in enumerate(bars):
        verdict = bar_verdict(bar, k == 0, k == len(bars) - 1)
        if verdict is not None:
            result.bars_checked += 1
            result.bars_right += verdict
    return result


def fits_meter(tune: Tune, least: float) -> bool:
    """Whether ``least`` of the tune's checked bars have the meter's length (or none is checked)."""
    fraction = check_tune(tune).bar_fraction
    return fraction is None or fraction >= least


def bar_verdict(bar: Bar, first: bool, last: bool) -> bool | None:
    """True when the bar fills the meter, False when it does not, None when it is excepted."""
    if bar.meter is None:
        return None
    if bar.length == bar.meter:
        return True
    short = bar.length < bar.meter
    at_edge = (
        first or last or opens_or_closes_section(bar.start) or opens_or_closes_section(bar.end)
    )
    return None if short and at_edge else False


@dataclass
class CheckSummary:
    tunes: int
    parsed: int
    with_meter_and_key: int
    bars_checked: int
    bars_right: int

    @property
    def parse_rate(self) -> float:
        return self.parsed / self.tunes if self.tunes else 0.0

    @property
    def meter_key_rate(self) -> float:
        return self.with_meter_and_key / self.tunes if self.tunes else 0.0

    @property
    def bar_rate(self) -> float:
        return self.bars_right / self.bars_checked if self.bars_checked else 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {
            "parse_rate": self.parse_rate,
            "meter_key_rate": self.meter_key_rate,
            "bar_rate": self.bar_rate,
        }


def check_text(text: str) -> tuple[list[TuneCheck], CheckSummary]:
    """Check every tune of an ABC text (a file, or samples joined by blank lines)."""
    checks = [check_tune(t) for t in split_tunes(text)]
    summary = CheckSummary(
        tunes=len(checks),
        parsed=sum(c.parses for c in checks),
        with_meter_and_key=sum(c.has_meter and c.has_key for c in checks),
        bars_checked=sum(c.bars_checked for c in checks if c.parses),
        bars_right=sum(c.bars_right for c in checks if c.parses),
    )
    return checks, summary
