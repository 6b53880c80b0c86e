"""After a crash: make a run directory tell the truth before training goes on.

A SIGKILL can land mid-checkpoint (leaving a temporary file as large as the checkpoint)
or between checkpoints (leaving log rows for steps the resumed run will train again).
``tidy`` removes the first and cuts the second, and returns what it did as notes for the
caller to say; it never prints.
"""

from __future__ import annotations

import json
from pathlib import Path

from charlm.rundir import atomic
from charlm.rundir import lock as runlock
from charlm.rundir.log import METRICS, SAMPLE_HEADER, SAMPLES


def tidy(run_dir: Path, step: int) -> list[str]:
    """Remove a dead writer's temporary files; cut the logs back to ``step`` (the checkpoint's).

    Nothing is touched while another live process holds the run's lock: its temporary
    files may be writes in progress, and its logs are its own. The logs are read as bytes:
    a write cut short leaves what no decoder accepts, and recovery must not fail on it.
    """
    if not run_dir.is_dir() or runlock.held_by_another(run_dir):
        return []
    notes = [note for note in [remove_orphans(run_dir)] if note]
    rows, samples = trim_metrics(run_dir / METRICS, step), trim_samples(run_dir / SAMPLES, step)
    if rows or samples:
        notes.append(
            f"the logs went past the checkpoint (step {step}): dropped {rows} row(s) of "
            f"{METRICS} and {samples} of {SAMPLES}, for steps that are trained again now"
        )
    nuls = cut_nul_tail(run_dir / SAMPLES)
    if nuls:
        notes.append(
            f"cut {nuls} NUL byte(s) from the end of {SAMPLES} (a write the disk never finished)"
        )
    return notes


def remove_orphans(run_dir: Path) -> str:
    """Delete temporary files a killed write left; a note saying so, or ''."""
    removed = atomic.remove_orphans(run_dir)
    if not removed:
        return ""
    size = sum(n for _, n in removed)
    names = ", ".join(p.name for p, _ in removed)
    return (
        f"removed {len(removed)} temporary file(s) left by an interrupted write "
        f"({size / 1e6:.1f} MB): {names}"
    )


def trim_metrics(path: Path, step: int) -> int:
    """Keep the rows up to ``step``; a row cut short by the crash, or unreadable, goes too.
    Rows dropped."""
    if not path.exists():
        return 0
    lines = path.read_bytes().splitlines(keepends=True)
    kept = [line for line in lines if (s := _row_step(line)) is not None and s <= step]
    if len(kept) < len(lines):
        atomic.write_atomic(path, b"".join(kept))
    return len(lines) - len(kept)


def _row_step(line: bytes) -> int | None:
    if not line.endswith(b"\n"):
        return None  # the last row, half written when the process died
    try:
        row = json.loads(line)  # bytes: UTF-8, and bytes that are not fail as ValueError
    except ValueError:
        return None
    step = row.get("step") if isinstance(row, dict) else None
    return step if isinstance(step, int) else None


def trim_samples(path: Path, step: int) -> int:
    """Cut samples.txt before the first sample after ``step``. Samples dropped."""
    if not path.exists():
        return 0
    data = path.read_bytes()
    # surrogateescape: any bytes become text and turn back into the very same bytes.
    text = data.decode("utf-8", "surrogateescape")
    headers = list(SAMPLE_HEADER.finditer(text))
    later = [m for m in headers if int(m.group(1)) > step]
    if not later:
        return 0
    # Samples are appended in step order, so everything from the first later one goes.
    atomic.write_atomic(path, text[: later[0].start()].encode("utf-8", "surrogateescape"))
    return len(headers) - headers.index(later[0])


def cut_nul_tail(path: Path) -> int:
    """Drop the NUL bytes a power loss leaves at a file's end (its size grew, its data never
    came); the next append would bury them mid-file. Bytes cut."""
    if not path.exists():
        return 0
    data = path.read_bytes()
    kept = data.rstrip(b"\x00")
    if len(kept) < len(data):
        atomic.write_atomic(path, kept)
    return len(data) - len(kept)
