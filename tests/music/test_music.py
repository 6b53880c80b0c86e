"""ABC tunes: extraction, the bar check, rendering, and the commands around them."""

from __future__ import annotations

import json
import shutil
import wave
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from charlm.cli import app
from charlm.config.presets import PRESETS
from charlm.music.abc import ABCError, clean_tunes, join_tunes, read_bars, split_tunes
from charlm.music.check import check_text
from charlm.rundir import checkpoint as ckpt_io

RAW = """%abc-2.1
% a file header comment

X:12
T:The Kesh
T:Kesh Jig
Z:transcribed by someone
N:a note about the source
B:Some Book
S:a session
R:jig
M:6/8
L:1/8
Q:3/8=120
K:G
% a comment line
"G"GAG "^fine"GAB|"D7"ABA ABd|\\
"4"edd gdd|edB dBA:|
w:la la la la
|:"G"gfg e2e|dBG AGE:|

X:13
T:Same Tune Again
M:6/8
L:1/8
R:jig
K:G
"G"GAG GAB|ABA ABd|
edd gdd|edB dBA:|
|:gfg e2e|dBG AGE:|

X:14
T:The Kesh
T:Kesh Jig
R:jig
M:6/8
L:1/8
Q:3/8=120
K:G
"G"GAG "^fine"GAB|"D7"ABA ABd|\\
"4"edd gdd|edB dBA:|
|:"G"gfg e2e|dBG AGE:|

X:15
T:Broken
M:4/4
L:1/4
K:C
C D ## E F|
"""


def tune(body: str, meter: str = "4/4", unit: str = "1/8", key: str = "C") -> str:
    return f"X:1\nT:t\nM:{meter}\nL:{unit}\nK:{key}\n{body}\n"


def test_split_finds_every_tune_and_leaves_the_file_header_out() -> None:
    tunes = split_tunes(RAW)
    assert [t.number for t in tunes] == ["12", "13", "14", "15"]
    assert tunes[0].field("T") == "The Kesh" and tunes[0].field("K") == "G"
    assert all("%abc" not in t.text() for t in tunes)


def test_cleaning_keeps_the_music_fields_and_drops_metadata() -> None:
    kept, report = clean_tunes(split_tunes(RAW))
    first = kept[0].text()
    head = first.split("\n")[:7]
    assert head == ["X:1", "T:The Kesh", "R:jig", "M:6/8", "L:1/8", "Q:3/8=120", "K:G"]
    for gone in ("Z:", "N:", "B:", "S:", "w:", "%", "Kesh Jig", '"^fine"', '"4"', "\\"):
        assert gone not in first, gone
    assert '"G"GAG' in first and '"D7"ABA' in first  # chord symbols are music
    assert report.tunes_in == 4 and report.duplicates == 1  # X:14 repeats X:12 exactly
    # Named by its title and its X: as written (renumbered to 1 in the output, not in messages)
    [(title, reason)] = report.skipped
    assert title == "Broken" and reason.startswith("tune 15: cannot read")
    assert report.tunes_out == len(kept) == 2


def test_the_corpus_frames_each_tune_with_one_blank_line() -> None:
    kept, _ = clean_tunes(split_tunes(RAW))
    text = join_tunes(kept)
    blocks = text.split("\n\n")
    assert blocks[-1] == "" and len(blocks) == 3
    assert all(b.startswith("X:1\n") and "\n\n" not in b for b in blocks[:-1])
    assert split_tunes(text)[1].title == "Same Tune Again"  # reads back as it was written


@pytest.mark.parametrize(
    ("body", "lengths"),
    [
        ("CDEF GABc|c8|]", ["1", "1"]),
        ("C2 D2 E2 F2|G4 A4|", ["1", "1"]),
        ("C>D E<F G/A/B/c/ d2|", ["1"]),  # broken rhythm and halves
        ("(3CDE F2 G4|", ["1"]),  # a triplet of eighths takes a quarter
        ("[CEG]4 [EGc]2 z2|", ["1"]),  # a chord lasts as its first note
        ("{g}C2 !trill!D2 .E2 ~F2|", ["1"]),  # grace notes take no time
        ("C8|[M:3/4] D6|", ["1", "3/4"]),  # an inline meter change
    ],
)
def test_bar_lengths(body: str, lengths: list[str]) -> None:
    bars, _ = read_bars(split_tunes(tune(body))[0])
    assert [b.length for b in bars] == [Fraction(x) for x in lengths]


def test_a_correct_tune_has_every_bar_right() -> None:
    checks, summary = check_text(tune("|:CDEF GABc|c2B2 A2G2|FGAB c4:|"))
    assert checks[0].parses and checks[0].bars_right == checks[0].bars_checked == 3
    assert summary.bar_rate == 1.0


def test_a_bar_too_long_is_counted_wrong() -> None:
    checks, _ = check_text(tune("CDEF GABc|c2B2 A2G2 F2|FGAB c4|c8|]"))
    assert (checks[0].bars_right, checks[0].bars_checked) == (3, 4)


def test_pickups_and_the_bars_that_complete_them_are_excepted() -> None:
    # A jig with a pickup (one eighth), sections closing a bar short to complete it.
    jig = tune("D|GAG GAB|ABA ABd|edd gdd|edB dB:|\n|:d|gfg e2e|dBG AGE|GAG gfe|dBA G2:|", "6/8")
    c = check_text(jig)[0][0]
    assert c.bars == 10 and c.bars_checked == 6 and c.bars_right == 6  # 4 pickups and closes
    # A short bar in the middle of a section is not a pickup.
    mid = check_text(tune("CDEF GABc|c2B2|FGAB c4|c8|]"))[0][0]
    assert (mid.bars_right, mid.bars_checked) == (3, 4)


def test_meter_key_range_and_errors_are_reported() -> None:
    text = (
        tune("C2 c2 C4|G8|]") + "\nX:2\nT:no meter\nK:C\nCDEF|\n\nX:3\nT:bad\nM:4/4\nK:C\nC & D|\n"
    )
    checks, summary = check_text(text)
    assert checks[0].range == 12 and checks[0].has_meter and checks[0].has_key
    assert not checks[1].has_meter and checks[1].bars_checked == 0  # nothing to check against
    assert not checks[2].parses and "cannot read" in checks[2].error
    assert summary.tunes == 3 and summary.parsed == 2


def test_unreadable_abc_names_the_place() -> None:
    with pytest.raises(ABCError, match="tune 1: cannot read"):
        read_bars(split_tunes(tune("CDE ## F|"))[0])


def test_render_writes_midi_whose_notes_are_the_tune(tmp_path: Path) -> None:
    from music21 import converter

    from charlm.music.render import render_tunes

    # K:G makes every F sharp; the ^ and = are written accidentals.
    tunes = split_tunes(tune("GABc dedB|^c2 =F2 F4|]", key="G"))
    result = render_tunes(tunes, tmp_path)
    midi = [p for p in result.written if p.suffix == ".mid"]
    assert len(midi) == 1 and midi[0].name == "001-t.mid"
    notes = [n.pitch.midi for n in converter.parse(midi[0]).flatten().notes]
    assert notes == [67, 69, 71, 72, 74, 76, 74, 71, 73, 65, 66]


def _abc_file(tmp_path: Path, text: str = RAW) -> Path:
    path = tmp_path / "tunes.abc"
    path.write_text(text, encoding="latin-1")
    return path


def test_prepare_abc_from_files(tmp_path: Path) -> None:
    out = tmp_path / "folk.abc"
    r = CliRunner().invoke(app, ["prepare", "abc", str(_abc_file(tmp_path)), "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert (
        "4 tunes in" in r.stderr and "2 tunes out" in r.stderr and "1 exact duplicates" in r.stderr
    )
    assert "skipped tune 15: cannot read '## E F|' (Broken)" in r.stderr
    assert split_tunes(out.read_text())[0].field("X") == "1"


def test_prepare_abc_skips_tunes_whose_bars_do_not_fit_their_meter(tmp_path: Path) -> None:
    fits = tune("CDEF GABc|c8|]").replace("T:t", "T:fits")
    off = tune("CDE GAB|CDE GAB|CDE GAB|c6|]").replace("T:t", "T:off")  # 3/4 bars under 4/4
    free = tune("CDE GAB|CDE|]", meter="none").replace("T:t", "T:free")  # no meter to miss
    src = str(_abc_file(tmp_path, "\n".join([fits, off, free])))
    r = CliRunner().invoke(app, ["prepare", "abc", src])
    assert r.exit_code == 0, r.output
    assert "1 with bars off their meter skipped" in r.stderr and "2 tunes out" in r.stderr
    assert sorted(t.title for t in split_tunes(r.stdout)) == ["fits", "free"]
    every = CliRunner().invoke(app, ["prepare", "abc", src, "--min-bars-right", "0", "-q"])
    assert sorted(t.title for t in split_tunes(every.stdout)) == ["fits", "free", "off"]
    none = CliRunner().invoke(app, ["prepare", "abc", str(_abc_file(tmp_path, off))])
    assert none.exit_code == 1 and "lower --min-bars-right" in none.stderr
    words = tmp_path / "words.txt"
    words.write_text("no tunes here\n")
    r = CliRunner().invoke(app, ["prepare", str(words), "--min-bars-right", "0.5"])
    assert r.exit_code == 2 and "--min-bars-right goes with 'charlm prepare abc'" in r.stderr


def test_the_readmes_second_hour_starts_from_the_first_hours_weights(tmp_path: Path) -> None:
    # docs/music.md: `--preset music`, then the same preset again from its weights at --lr 3e-3.
    corpus = _abc_file(tmp_path, "".join(tune(f"CDEF GAB{c}|c8|]") + "\n" for c in "cdefgab" * 2))
    tiny = ["--max-steps", "2", "--batch-size", "2", "--bptt", "16", "--val-frac", "0.3"]
    first, second = tmp_path / "folk", tmp_path / "folk2"
    r = CliRunner().invoke(
        app, ["train", str(corpus), "--preset", "music", "-o", str(first), *tiny]
    )
    assert r.exit_code == 0, r.output
    again = ["--preset", "music", "--init-from", str(first), "--lr", "3e-3", "--seed", "2"]
    r = CliRunner().invoke(app, ["train", str(corpus), *again, "-o", str(second), *tiny])
    assert r.exit_code == 0, r.output
    start = (first / "best.safetensors").resolve()
    assert f"starting from the weights of {start}" in r.stderr
    assert "--lr 0.003 overrides preset 'music'" in r.stderr
    ck0, ck1 = (ckpt_io.load(d / "latest.safetensors") for d in (first, second))
    hidden = PRESETS["music"]["model"]["hidden_size"]
    assert ck1.config.model == ck0.config.model and ck1.config.model.hidden_size == hidden
    assert ck1.config.train.lr == 3e-3 and ck1.state["init_from"] == str(start)
    # Two warm-up steps of AdamW move a weight by at most about 2e-4; a fresh start is far off.
    drift = max((ck1.model[k] - ck0.model[k]).abs().max().item() for k in ck0.model)
    assert drift < 1e-3


def test_prepare_abc_shuffles_with_a_seed(tmp_path: Path) -> None:
    many = "".join(tune(f"CDEF GAB{c}|c8|]").replace("T:t", f"T:{c}") + "\n" for c in "cdefgab")
    src = _abc_file(tmp_path, many)
    runs = [
        CliRunner().invoke(app, ["prepare", "abc", str(src), "--seed", str(s), "-q"]).stdout
        for s in (1, 1, 2)
    ]
    assert runs[0] == runs[1] != runs[2]
    assert sorted(runs[0].split("\n\n")) == sorted(runs[2].split("\n\n"))


def test_prepare_abc_from_music21s_collections() -> None:
    pytest.importorskip("music21")
    r = CliRunner().invoke(
        app, ["prepare", "abc", "--collections", "airdsAirs", "--max-chars", "3000"]
    )
    assert r.exit_code == 0, r.output
    assert "collections airdsAirs" in r.stderr
    tunes = split_tunes(r.stdout)
    assert tunes and len(r.stdout) <= 3000 and r.stdout.endswith("\n\n")
    bad = CliRunner().invoke(app, ["prepare", "abc", "--collections", "nosuch"])
    assert bad.exit_code == 1 and "unknown collection(s) nosuch" in bad.stderr


def test_music_check_reads_stdin_and_writes_json() -> None:
    text = tune("CDEF GABc|c2B2 A2G2 F2|]") + "\n" + tune("C8|c8|]")
    r = CliRunner().invoke(app, ["music", "check", "-", "--json"], input=text)
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["summary"]["tunes"] == 2 and doc["summary"]["parse_rate"] == 1.0
    assert [t["bars_right"] for t in doc["tunes"]] == [1, 2]
    assert "2 tune(s): 100.0% parse" in r.stderr


@pytest.mark.parametrize("command", ["check", "render"])
def test_text_that_is_not_abc_gets_one_line(command: str, tmp_path: Path) -> None:
    r = CliRunner().invoke(
        app,
        ["music", command, "-", "-o", str(tmp_path)][: 3 if command == "check" else 5],
        input="just prose\n",
    )
    assert r.exit_code == 1
    assert r.stderr.strip().count("\n") == 0 and "holds no ABC tunes" in r.stderr


@pytest.mark.skipif(shutil.which("fluidsynth") is None, reason="FluidSynth is not installed")
def test_render_wav_is_audible(tmp_path: Path) -> None:
    r = CliRunner().invoke(
        app, ["music", "render", "-", "-o", str(tmp_path), "--wav"], input=tune("CDEF GABc|c8|]")
    )
    assert r.exit_code == 0, r.output
    with wave.open(str(tmp_path / "001-t.wav")) as w:
        frames = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
        seconds = w.getnframes() / w.getframerate()
    assert seconds > 1.0
    assert np.sqrt(np.mean(frames.astype(np.float64) ** 2)) > 100  # not silence


def test_prepare_abc_max_chars_keeps_whole_tunes_or_refuses(tmp_path: Path) -> None:
    src = str(_abc_file(tmp_path))
    whole = CliRunner().invoke(app, ["prepare", "abc", src, "--seed", "0", "-q"]).stdout
    first = whole.index("\n\n") + 2
    r = CliRunner().invoke(app, ["prepare", "abc", src, "--max-chars", str(first), "-q"])
    assert r.exit_code == 0 and r.stdout == whole[:first]  # exactly the first tune
    r = CliRunner().invoke(app, ["prepare", "abc", src, "--max-chars", str(first - 1)])
    assert r.exit_code == 1 and r.stdout == ""
    assert r.stderr.strip() == (
        f"charlm: error: --max-chars {first - 1} is shorter than the first tune "
        f"({first:,} characters): raise it to {first} or more"
    )
