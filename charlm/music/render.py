"""Turning ABC tunes into files a person can hear or read: MIDI, WAV and MusicXML.

music21 reads the ABC and writes MIDI and MusicXML; FluidSynth, with a General MIDI
soundfont from Debian's packages, plays the MIDI into a WAV file. Each tune is written on
its own, so one tune music21 cannot read costs only that tune.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from charlm.music.abc import Tune
from charlm.text.reading import InputError

SOUNDFONTS = (
    Path("/usr/share/sounds/sf2/default-GM.sf2"),
    Path("/usr/share/sounds/sf2/FluidR3_GM.sf2"),
    Path("/usr/share/sounds/sf2/TimGM6mb.sf2"),
)
SAMPLE_RATE = 44100


@dataclass
class Rendered:
    written: list[Path] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (tune, music21's reason)


def tune_stem(k: int, tune: Tune) -> str:
    """A file name for the k-th tune: its number and a slug of its title."""
    slug = re.sub(r"[^a-z0-9]+", "-", tune.title.lower()).strip("-")[:40]
    return f"{k:03d}-{slug}" if slug else f"{k:03d}"


def to_score(tune: Tune):  # -> music21.stream.Score
    """The tune as music21 reads it; InputError with music21's reason when it cannot."""
    from music21 import (
        converter,
    )  # imported here: it takes a second and most commands never need it

    try:
        return converter.parse(tune.text(), format="abc")
    except Exception as e:  # music21 raises many types for bad ABC; all mean "cannot read"
        raise InputError(f"music21 cannot read it ({type(e).__name__}: {e})") from None


def find_soundfont(given: Path | None) -> Path:
    if given is not None:
        if not given.is_file():
            raise InputError(f"{given}: no such soundfont; give a .sf2 file")
        return given
    for path in SOUNDFONTS:
        if path.is_file():
            return path
    raise InputError(
        "no General MIDI soundfont found: install one (apt-get install timgm6mb-soundfont) "
        "or pass --soundfont FILE.sf2"
    )


def check_synth() -> str:
    synth = shutil.which("fluidsynth")
    if synth is None:
        raise InputError(
            "--wav needs FluidSynth: install it (apt-get install fluidsynth, or "
            "'make install-extras'), or leave out --wav"
        )
    return synth


def midi_to_wav(midi: Path, wav: Path, soundfont: Path, synth: str) -> None:
    cmd = [synth, "-ni", "-q", "-g", "0.8", "-r", str(SAMPLE_RATE), "-F", str(wav)]
    done = subprocess.run([*cmd, str(soundfont), str(midi)], capture_output=True, text=True)
    if done.returncode != 0 or not wav.is_file():
        raise InputError(f"FluidSynth failed on {midi.name}: {done.stderr.strip()[:200]}")


def render_tunes(
    tunes: list[Tune],
    out_dir: Path,
    wav: bool = False,
    musicxml: bool = False,
    soundfont: Path | None = None,
) -> Rendered:
    """Write NNN-title.mid (and .wav, .musicxml) for each tune into ``out_dir``."""
    synth = check_synth() if wav else ""
    font = find_soundfont(soundfont) if wav else None
    out_dir.mkdir(parents=True, exist_ok=True)
    result = Rendered()
    for k, tune in enumerate(tunes, start=1):
        stem = tune_stem(k, tune)
        try:
            score = to_score(tune)
        except InputError as e:
            result.skipped.append((f"{k} ({tune.title or 'untitled'})", str(e)))
            continue
        midi = out_dir / f"{stem}.mid"
        score.write("midi", fp=str(midi))
        result.written.append(midi)
        if musicxml:
            result.written.append(
                Path(score.write("musicxml", fp=str(out_dir / f"{stem}.musicxml")))
            )
        if font is not None:
            midi_to_wav(midi, out_dir / f"{stem}.wav", font, synth)
            result.written.append(out_dir / f"{stem}.wav")
    return result
