"""`charlm music render` on malformed tunes: one bad tune never stops a batch.

The tunes below are the ways sampled tunes broke music21, each written as a fixture: a bar too
long (music21's StreamException "... is already found in this Stream"), a tune with no body, a
note of absurd length (music21 took minutes over it), meters, units, tempi and tuplets of 0, a
number after X: that is no number, no M: and no L:, a repeat never closed, an unknown key.
"""

from __future__ import annotations

import os
import shutil
import stat
import wave
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from charlm.cli import app
from charlm.music import render, synth

pytest.importorskip("music21")


def tune(n: int, title: str, body: str, head: str = "M:4/4\nL:1/8\nK:C") -> str:
    return f"X:{n}\nT:{title}\n{head}\n{body}\n"


GOOD = "CDEF GABc|c2B2 A2G2|FGAB c4|c8|]"
# (title, tune text after X: and T:, the reason it is skipped or None when it renders)
BATCH = [
    ("good", tune(1, "good", GOOD), None),
    ("too long", tune(2, "too long", "| .G2d2d2c2 | B2A2G2 | d6 |]", "M:3/4\nL:1/8\nK:G"), None),
    ("jig too long", tune(3, "jig too long", "GAB GAB c|d3 d3|]", "M:6/8\nL:1/8\nK:G"), None),
    ("no body", "X:4\nT:no body\nM:3/4\nL:1/8\nK:G\n", "it has no notes to play"),
    ("absurd", tune(5, "absurd", "C99999 | D8 |]"), "it lasts 50,004 quarter notes"),
    ("unknown key", tune(6, "unknown key", GOOD, "M:4/4\nL:1/8\nK:Xyz"), None),
    ("meter 4/0", tune(7, "meter 4/0", GOOD, "M:4/0\nL:1/8\nK:C"), "ZeroDivisionError"),
    ("unit 0", tune(8, "unit 0", GOOD, "M:4/4\nL:0\nK:C"), "ABCTokenException"),
    ("garbled X", tune(9, "garbled X", GOOD).replace("X:9", "X:1igs -- Hord+"), None),
    ("no M or L", tune(10, "no M or L", GOOD, "K:C"), None),
    ("open repeat", tune(11, "open repeat", "|: CDEF GABc | c8 |: cBAG FEDC | C8 |]"), None),
    ("tempo 0", tune(12, "tempo 0", GOOD, "M:4/4\nL:1/8\nQ:1/4=0\nK:C"), "cannot write its MIDI"),
    ("tuplet 0", tune(13, "tuplet 0", "(0CDE F2 G4|c8|]"), "cannot handle tuplet"),
]


def render_batch(tmp_path: Path, *args: str, tunes: list[str] | None = None) -> Result:
    text = "\n".join(tunes if tunes is not None else [t for _, t, _ in BATCH])
    out = tmp_path / "tunes"
    return CliRunner().invoke(app, ["music", "render", "-", "-o", str(out), *args], input=text)


def test_a_batch_of_malformed_tunes_renders_every_tune_music21_can(tmp_path: Path) -> None:
    r = render_batch(tmp_path)
    assert r.exit_code == 0, r.output
    assert "Traceback" not in r.output and r.stdout == ""
    skipped = [line for line in r.stderr.splitlines() if line.startswith("skipped tune ")]
    expected = [(k, title, why) for k, (title, _, why) in enumerate(BATCH, 1) if why]
    assert len(skipped) == len(expected)
    for line, (k, title, why) in zip(skipped, expected, strict=True):
        assert line.startswith(f"skipped tune {k} ({title}): ") and why in line, line
    rendered = sorted(p.name for p in (tmp_path / "tunes").iterdir())
    assert rendered == [
        f"{k:03d}-{title.lower().replace(' ', '-')}.mid"
        for k, (title, _, why) in enumerate(BATCH, 1)
        if not why
    ]
    assert f"{len(BATCH) - len(expected)} of {len(BATCH)} tune(s) rendered" in r.stderr
    assert "tune 11 (open repeat): played once through" in r.stderr


def test_a_tune_too_long_for_music21s_rebar_plays_every_note(tmp_path: Path) -> None:
    # The case: the bar of eight eighths under M:3/4 ended every batch in a traceback.
    from music21 import converter

    r = render_batch(tmp_path, tunes=[BATCH[1][1]])
    assert r.exit_code == 0, r.output
    notes = converter.parse(tmp_path / "tunes" / "001-too-long.mid").stripTies().flatten().notes
    assert [(n.pitch.name, n.quarterLength) for n in notes] == [
        *zip("GDDCBAG", [1.0] * 7, strict=True),
        ("D", 3.0),
    ]


def test_no_tune_rendered_exits_1_with_a_reason(tmp_path: Path) -> None:
    bad = [t for _, t, why in BATCH if why]
    r = render_batch(tmp_path, tunes=bad)
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert r.stderr.splitlines()[-1] == (
        f"charlm: error: none of the {len(bad)} tune(s) could be rendered (see the reasons above)"
    )
    quiet = render_batch(tmp_path, "-q", tunes=bad)
    assert quiet.exit_code == 1
    assert quiet.stderr.strip() == (
        f"charlm: error: none of the {len(bad)} tune(s) could be rendered "
        "(tune 1 (no body): it has no notes to play)"
    )


@pytest.mark.skipif(shutil.which("fluidsynth") is None, reason="FluidSynth is not installed")
def test_every_file_goes_through_the_atomic_writer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    written: list[Path] = []
    real = render.write_atomic

    def recording(path: Path, data: bytes) -> None:
        written.append(path)
        real(path, data)

    monkeypatch.setattr(render, "write_atomic", recording)
    r = render_batch(tmp_path, "--wav", "--musicxml", tunes=[BATCH[0][1], BATCH[1][1]])
    assert r.exit_code == 0, r.output
    on_disk = sorted((tmp_path / "tunes").iterdir())  # hidden temporary files included
    assert on_disk == sorted(written) and len(on_disk) == 6
    with wave.open(str(tmp_path / "tunes" / "001-good.wav")) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (2, 2, synth.SAMPLE_RATE)
        assert w.getnframes() > synth.SAMPLE_RATE  # eight bars at 120 crotchets a minute


@pytest.mark.skipif(shutil.which("fluidsynth") is None, reason="FluidSynth is not installed")
def test_a_tune_that_plays_too_long_is_stopped_and_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(synth, "MAX_SECONDS", 60)
    slow = tune(2, "slow", GOOD, "M:4/4\nL:1/8\nQ:1/4=10\nK:C")  # 16 crotchets: 96 seconds
    r = render_batch(tmp_path, "--wav", tunes=[BATCH[0][1], slow])
    assert r.exit_code == 0, r.output
    assert "skipped tune 2 (slow): it plays longer than 1 minutes" in r.stderr
    assert sorted(p.name for p in (tmp_path / "tunes").iterdir()) == [
        "001-good.mid",
        "001-good.wav",
    ]


def test_a_synthesizer_failing_on_one_tune_leaves_none_of_its_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "fluidsynth"
    fake.write_text("#!/bin/sh\necho 'no instrument for this one' >&2\nexit 3\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    font = tmp_path / "font.sf2"
    font.write_bytes(b"")
    monkeypatch.setattr(render, "check_synth", lambda: os.fspath(fake))
    r = render_batch(tmp_path, "--wav", "--soundfont", str(font), tunes=[BATCH[0][1]])
    assert r.exit_code == 1
    assert "skipped tune 1 (good): FluidSynth could not play it (no instrument for this one)" in (
        r.stderr
    )
    assert list((tmp_path / "tunes").iterdir()) == []  # no MIDI without its WAV
