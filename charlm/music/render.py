"""Turning ABC tunes into files a person can hear or read: MIDI, WAV and MusicXML.

music21 reads the ABC and writes MIDI and MusicXML; FluidSynth, with a General MIDI
soundfont from Debian's packages, plays the MIDI into a WAV file. Each tune is rendered on
its own and whole: a tune music21 cannot read or write, or FluidSynth cannot play, is
skipped with its reason and leaves no file, and the batch goes on. music21 raises many
exception types on bad ABC (StreamException, ABCTokenException, MeterException,
ZeroDivisionError, ValueError, MemoryError ...), so every one of them ends only that tune.

What music21 is given is the tune made easier to read, its music unchanged
(``music21_text``), and its bars are kept as written (``_bars_as_written``).
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from charlm.errors import InputError
from charlm.music.abc import IN_FORCE, Tune
from charlm.music.synth import SynthError, check_synth, find_soundfont, play
from charlm.rundir.atomic import write_atomic

# A tune longer than this has a slip in it (a note of 999 eighths): music21 takes minutes
# over such a note, to no one's benefit.
MAX_QUARTERS = 2000  # 500 bars of 4/4
REASON_CHARS = 160  # of music21's message, on the reason's one line


class RenderError(InputError):
    """One tune that cannot be rendered; the message says why. The batch goes on."""


@dataclass
class Rendered:
    written: list[Path] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # ("3 (title)", reason)
    notes: list[tuple[str, str]] = field(default_factory=list)  # what music21 guessed or left


def tune_stem(k: int, tune: Tune) -> str:
    """A file name for the k-th tune: its number and a slug of its title."""
    slug = re.sub(r"[^a-z0-9]+", "-", tune.title.lower()).strip("-")[:40]
    return f"{k:03d}-{slug}" if slug else f"{k:03d}"


def music21_text(tune: Tune, number: int) -> str:
    """The tune as music21 is given it: numbered ``number`` (music21 wants a number after
    X:, a sample may write anything); of its header, ABC's fields (upper-case names), with
    M:, L: and Q: once each, as in force (music21 stops at an overridden ``L:1``, which it
    cannot read); ABC's default unit written out when there is neither M: nor L:, where
    music21 knows none. The body as written."""
    header = [(k, v) for k, v in tune.fields if k.isupper() and k not in ("X", "K", *IN_FORCE)]
    header += [(k, v) for k in IN_FORCE if (v := tune.setting(k)) is not None]
    if tune.setting("M") is None and tune.setting("L") is None:
        header.append(("L", "1/8"))  # ABC 2.1's unit with no meter; music21 has no default
    header += [(k, v) for k, v in tune.fields if k == "K"]
    return Tune([("X", str(number)), *header], tune.body, tune.number).text()


def to_score(tune: Tune, number: int = 1) -> Any:  # a music21.stream.Score
    """The tune as music21 reads it; RenderError with music21's reason when it cannot."""
    # Imported here: it takes a second and most commands never need it.
    from music21 import converter

    try:
        with _bars_as_written():
            score = converter.parse(music21_text(tune, number), format="abc")
    except Exception as e:  # music21 raises many types for bad ABC; all mean "cannot read"
        raise RenderError(f"music21 cannot read it ({_one_line(e)})") from None
    if score.flatten().notes.first() is None:
        raise RenderError("it has no notes to play")
    if score.highestTime > MAX_QUARTERS:
        raise RenderError(
            f"it lasts {score.highestTime:,.0f} quarter notes, more than {MAX_QUARTERS:,}: "
            "is a note length wrong?"
        )
    return score


@contextmanager
def _bars_as_written() -> Iterator[None]:
    """music21's ABC reader with every bar kept as the tune wrote it.

    After reading, music21's ``reBar`` cuts each bar longer than its meter in two and gives
    the rest a time signature of its own. That is where music21 fails on sampled tunes: the
    meter it then puts back in the next bar is an object already in the stream, so writing
    MIDI raises StreamException "... is already found in this Stream"; and building the
    rest's time signature for a very long note takes minutes. Uncut, the bar plays the same.
    """
    from music21.abcFormat import translate

    rebar = translate.reBar
    translate.reBar = _keep_bars
    try:
        yield
    finally:
        translate.reBar = rebar


def _keep_bars(*args: Any, **kwargs: Any) -> None:
    """``reBar``'s stand-in: the part stays as read."""


def _one_line(e: BaseException) -> str:
    text = " ".join(f"{type(e).__name__}: {e}".split())
    return text if len(text) <= REASON_CHARS else text[: REASON_CHARS - 3] + "..."


def midi_bytes(score: Any, notes: list[str]) -> bytes:
    """The score as a MIDI file, repeats played; once through when music21 cannot follow
    them (a ``|:`` never closed: music21's ExpanderException), said in ``notes``."""
    from music21.midi.translate import music21ObjectToMidiFile
    from music21.repeat import ExpanderException

    try:
        try:
            return music21ObjectToMidiFile(score).writestr()
        except ExpanderException as e:
            notes.append(f"played once through, as music21 cannot follow its repeats ({e})")
            return music21ObjectToMidiFile(score.flatten()).writestr()  # no bars: no repeats
    except Exception as e:  # as in to_score: any type, one tune
        raise RenderError(f"music21 cannot write its MIDI ({_one_line(e)})") from None


def musicxml_bytes(score: Any) -> bytes:
    from music21.musicxml.m21ToXml import GeneralObjectExporter

    try:
        return GeneralObjectExporter(score).parse()
    except Exception as e:  # as in to_score
        raise RenderError(f"music21 cannot write its MusicXML ({_one_line(e)})") from None


def render_tune(
    k: int,
    tune: Tune,
    out_dir: Path,
    musicxml: bool = False,
    sound: tuple[Path, str] | None = None,
    notes: list[str] | None = None,
) -> list[Path]:
    """Write one tune's files: all of them, or none (RenderError or SynthError says why).

    ``sound`` is (soundfont, synthesizer) for a WAV; ``notes`` gathers what was done
    differently from the tune as written.
    """
    score = to_score(tune, k)
    stem = out_dir / tune_stem(k, tune)
    midi = stem.with_suffix(".mid")
    data = midi_bytes(score, [] if notes is None else notes)
    files = {stem.with_suffix(".musicxml"): musicxml_bytes(score)} if musicxml else {}
    write_atomic(midi, data)  # FluidSynth reads the MIDI from its file
    if sound is not None:
        try:
            files[stem.with_suffix(".wav")] = play(midi, *sound)
        except SynthError:
            midi.unlink(missing_ok=True)  # the tune whole or not at all
            raise
    for path, content in files.items():
        write_atomic(path, content)
    return [midi, *files]


def render_tunes(
    tunes: list[Tune],
    out_dir: Path,
    wav: bool = False,
    musicxml: bool = False,
    soundfont: Path | None = None,
) -> Rendered:
    """Write NNN-title.mid (and .wav, .musicxml) for each tune into ``out_dir``.

    A tune that cannot be rendered is skipped, with its number, title and reason, and the
    rest are rendered; only the missing synthesizer or soundfont stops the batch.
    """
    sound = (find_soundfont(soundfont), check_synth()) if wav else None
    out_dir.mkdir(parents=True, exist_ok=True)
    result = Rendered()
    for k, tune in enumerate(tunes, start=1):
        label = f"{k} ({tune.title or 'untitled'})"
        notes: list[str] = []
        # music21 prints its guesses ("assuming C") to stderr; the library prints nothing.
        with redirect_stderr(io.StringIO()) as said:
            try:
                result.written += render_tune(k, tune, out_dir, musicxml, sound, notes)
            except (RenderError, SynthError) as e:
                result.skipped.append((label, str(e)))
                continue
        notes += [" ".join(line.split()) for line in said.getvalue().splitlines()]
        result.notes += [(label, note) for note in dict.fromkeys(notes) if note]
    return result
