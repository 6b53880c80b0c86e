"""Atomic file writes, and the clean-up of what a killed writer left behind.

A write goes to a temporary file beside the target, named ``.<target name>.<random>.tmp``,
is fsynced, given its final mode, then renamed over the target: a crash at any moment leaves
either the old file or the new one. A SIGKILL mid-write leaves the temporary file itself;
``orphans`` finds such files by that naming, so nothing else is ever removed.

Test hook: ``CHARLM_TEST_WRITE_DELAY=SECONDS`` pauses every atomic write halfway through
its data, so a test can kill a process during a checkpoint write. Unset, it costs nothing.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from pathlib import Path
from typing import BinaryIO

from charlm.errors import cannot_write

DELAY_ENV = "CHARLM_TEST_WRITE_DELAY"
# mkstemp's random part: 8 characters from this alphabet (CPython's _RandomNameSequence).
_RANDOM = r"[a-z0-9_]{8}"
_ORPHAN = re.compile(rf"^\.(?P<target>.+)\.{_RANDOM}\.tmp$")


def write_atomic(path: Path, data: bytes, mode: int = 0o666) -> None:
    """Write ``data`` to ``path`` so that a crash leaves either the old file or the new one.

    ``mode`` is masked by the umask, as ``open`` does: mkstemp's private 0600 would
    otherwise stay on the renamed file (a prepared corpus others cannot read).
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:  # no place to put it (a name too long, a file in the way)
        raise _write_failure(path, e) from e
    try:
        with os.fdopen(fd, "wb") as f:
            _write(f, data)
            os.fchmod(f.fileno(), mode & ~_umask())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:  # disk full, permission denied: name the file the caller wanted
        Path(tmp).unlink(missing_ok=True)
        raise _write_failure(path, e) from e
    except BaseException:  # a second Ctrl-C included: the old file stays, no temporary
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_failure(path: Path, e: OSError) -> Exception:
    """An OutputError naming the file the caller wanted; an OSError that is a bug stays one."""
    named = OSError(e.errno, e.strerror, str(path))
    return cannot_write(named) or named


def _write(f: BinaryIO, data: bytes) -> None:
    delay = float(os.environ.get(DELAY_ENV) or 0)
    if delay <= 0:
        f.write(data)
        return
    half = len(data) // 2
    f.write(data[:half])
    f.flush()  # the half-written temporary file is on disk, as a real crash would leave it
    time.sleep(delay)
    f.write(data[half:])


def _umask() -> int:
    # Reading the umask means setting it; no other thread of ours creates files meanwhile.
    mask = os.umask(0)
    os.umask(mask)
    return mask


def orphans(directory: Path) -> list[Path]:
    """Temporary files of ``write_atomic`` in ``directory``.

    Only files named like ours for a target in the same directory: ``.NAME.XXXXXXXX.tmp``.
    Call it only when no writer can be running (the run's lock is held).
    """
    if not directory.is_dir():
        return []
    found = [p for p in directory.iterdir() if _ORPHAN.match(p.name) and p.is_file()]
    return sorted(found)
