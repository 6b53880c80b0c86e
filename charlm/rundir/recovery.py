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

# The header RunLog.sample writes before each sample.


def tidy(run_dir: Path, step: int) -> list[str]:
    """Remove a dead writer's temporary files; cut the logs back to ``step`` (the checkpoint's).

    Nothing is touched while another live process holds the run's lock: its temporary
    files may be writes in progress, and its logs are its own.
    """
    if not run_dir.is_dir() or runlock.live_owner(run_dir) is not None:
        return []
    notes = [note for note in [remove_orphans(run_dir)] if note]
    rows, samples = trim_metrics(run_dir / METRICS, step), trim_samples(run_dir / SAMPLES, step)
    if rows or samples:
        notes.append(
            f"the logs went past the checkpoint (step {step}): dropped {rows} row(s) of "
            f"{METRICS} and {samples} of {SAMPLES}, for steps that are trained again now"
        )
    return notes


def remove_orphans(run_dir: Path) -> str:
    """Delete temporary files a killed write left; a note saying so, or ''."""
    found = atomic.orphans(run_dir)
    size = 0
    for path in found:
        size += path.stat().st_size
        path.unlink(missing_ok=True)
    if not found:
        return ""
    names = ", ".join(p.name for p in found)
    return (
        f"removed {len(found)} temporary file(s) left by an interrupted write "
        f"({size / 1e6:.1f} MB): {names}"
    )


def trim_metrics(path: Path, step: int) -> int:
    """Keep the rows up to ``step``; a row cut short by the crash goes too. Rows dropped."""
    if not path.exists():
        return 0
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    kept = [line for line in lines if (s := _row_step(line)) is not None and s <= step]
    if len(kept) < len(lines):
        atomic.write_atomic(path, "".join(kept).encode("utf-8"))
    return len(lines) - len(kept)


def _row_step(line: str) -> int | None:
    if not line.endswith("\n"):
        return None  # the last row, half written when the process died
    try:
        row = json.loads(line)
    except ValueError:
        return None
    step = row.get("step") if isinstance(row, dict) else None
    return step if isinstance(step, int) else None


def trim_samples(path: Path, step: int) -> int:
    """Cut samples.txt before the first sample after ``step``. Samples dropped."""
    if not path.exists():
        return 0
    text = path.read_text(encoding="utf-8")
    headers = list(SAMPLE_HEADER.finditer(text))
    later = [m for m in headers if int(m.group(1)) > step]
    if not later:
        return 0
    # Samples are appended in step order, so everything from the first later one goes.
    atomic.write_atomic(path, text[: later[0].start()].encode("utf-8"))
    return len(headers) - headers.index(later[0])
