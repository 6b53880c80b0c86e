"""Playing a MIDI file into a WAV file with FluidSynth and a General MIDI soundfont.

FluidSynth writes raw samples to a pipe and the WAV header is added here: no file of
FluidSynth's own is left behind by a kill (the WAV goes through the atomic writer), and the
length is checked as it plays.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tempfile
import wave
from pathlib import Path

from charlm.errors import InputError

SOUNDFONTS = (
    Path("/usr/share/sounds/sf2/default-GM.sf2"),
    Path("/usr/share/sounds/sf2/FluidR3_GM.sf2"),
    Path("/usr/share/sounds/sf2/TimGM6mb.sf2"),
)
SAMPLE_RATE = 44100
FRAME_BYTES = 4  # FluidSynth's output: two channels of 16-bit samples
# A tune that plays longer than this has a slip in it (a tempo of one beat a minute, a note
# of 999 beats), and its WAV would fill memory: it is stopped there and skipped.
MAX_SECONDS = 600
MESSAGE_CHARS = 160  # of what FluidSynth says, on the reason's one line


class SynthError(InputError):
    """FluidSynth could not play one tune; the message says why. The batch goes on."""


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


def play(midi: Path, soundfont: Path, synth: str) -> bytes:
    """The WAV file of ``midi`` as FluidSynth plays it, at most ``MAX_SECONDS`` long."""
    raw = ["-T", "raw", "-O", "s16", "-E", "little", "-F", "/dev/stdout"]
    cmd = [synth, "-ni", "-q", "-g", "0.8", "-r", str(SAMPLE_RATE), *raw, str(soundfont)]
    limit = MAX_SECONDS * SAMPLE_RATE * FRAME_BYTES
    with (
        tempfile.TemporaryFile() as err,  # a file, not a pipe: it cannot fill and stall
        subprocess.Popen([*cmd, str(midi)], stdout=subprocess.PIPE, stderr=err) as run,
    ):
        assert run.stdout is not None
        audio = run.stdout.read(limit + 1)
        if len(audio) > limit:
            run.kill()
            raise SynthError(
                f"it plays longer than {MAX_SECONDS // 60} minutes: is the tempo (Q:) or a "
                "note length wrong?"
            )
        if run.wait() != 0 or not audio:
            err.seek(0)
            said = " ".join(err.read().decode("utf-8", "replace").split())[:MESSAGE_CHARS]
            raise SynthError(f"FluidSynth could not play it ({said or 'no sound'})")
    return _wav(audio)


def _wav(audio: bytes) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(FRAME_BYTES // 2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(audio)
    return out.getvalue()
