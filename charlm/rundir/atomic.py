"""Atomic file writes, and the clean-up of what a killed writer left behind.

Every file charlm writes goes through here. A write goes to a temporary file beside the
target, named ``.<target name>.<random>.tmp``, is fsynced, given its final mode, then renamed
over the target: a crash at any moment leaves either the old file or the new one. The
parent directory is made when it is missing (as ``train --out`` makes the run directory):
the one rule for every output path.

A SIGKILL mid-write leaves the temporary file itself. Its writer holds an exclusive
``flock`` on it from its creation to its rename; the kernel drops that lock when the
process ends, however it ends. So a temporary file nobody holds is an orphan, and one
somebody holds is a write in progress that tidying passes by. A lock, not a pid in the
name: a pid is reused, and means nothing to another container or host sharing the
directory. (On a file system that does not share flock between machines, do not write
one directory from two machines at once.)

Who tidies: every write removes the orphans of its own target, wherever it writes (it is
about to replace that file anyway); commands that own a directory (a run directory, its
n-gram cache) remove every orphan in it. Other files in a user's directory are never
touched, even when named like ours.

Not through here, on purpose: the append-only logs (metrics.jsonl, samples.txt), whose cut
last line recovery tidies; the run lock, written in place (``charlm.rundir.lock``); the token
cache, which builds a whole directory and renames it, tidying killed builders' directories by
the same lock rule (``charlm.data.token_cache``).

Test hook: ``CHARLM_TEST_WRITE_DELAY=SECONDS`` pauses every atomic write halfway through
its data, so a test can kill a process during a write. Unset, it costs nothing.
"""

from __future__ import annotations

import fcntl
import os
import re
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
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
    with replacing(path, mode) as tmp, open(tmp, "wb") as f:
        _write(f, data)


@contextmanager
def replacing(path: Path, mode: int = 0o666) -> Iterator[Path]:
    """A temporary path beside ``path``, for writers that need a file name (HDF5, music21,
    FluidSynth): written inside the block, it replaces ``path`` when the block ends; on an
    error it is removed and the old file stays. Failures name ``path``, as OutputError."""
    fd, tmp = _create(path)
    try:
        yield tmp
        os.fchmod(fd, mode & ~_umask())
        os.fsync(fd)  # the file's data, whichever descriptor wrote it
        os.replace(tmp, path)  # still locked: a tidy cannot take it meanwhile
    except OSError as e:  # disk full, permission denied: name the file the caller wanted
        tmp.unlink(missing_ok=True)
        raise _write_failure(path, e) from e
    except BaseException:  # a second Ctrl-C included: the old file stays, no temporary
        tmp.unlink(missing_ok=True)
        raise
    finally:
        os.close(fd)


def _create(path: Path) -> tuple[int, Path]:
    """A new temporary file for ``path``, locked; the target's orphans removed first."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_orphans(path.parent, path.name)
        while True:
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            if _try_lock(fd, wait=True) and os.fstat(fd).st_nlink == 0:
                os.close(fd)  # tidied away between its creation and our lock: make another
                continue
            return fd, Path(tmp)
    except OSError as e:  # no place to put it (a name too long, a file in the way)
        raise _write_failure(path, e) from e


def _try_lock(fd: int, wait: bool = False) -> bool:
    """Take ``fd``'s exclusive flock; False when another holds it, or flock is unsupported."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except OSError:  # BlockingIOError: held; others: a file system without flock
        return False
    return True


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


def orphans(directory: Path, target: str | None = None) -> list[Path]:
    """Temporary files of ``write_atomic`` in ``directory`` (of ``target`` alone, if named),
    whether a live writer still holds them or not: ``remove_orphans`` tells them apart."""
    if not directory.is_dir():
        return []
    found = [
        p
        for p in directory.iterdir()
        if (m := _ORPHAN.match(p.name)) and target in (None, m["target"]) and p.is_file()
    ]
    return sorted(found)


def remove_orphans(directory: Path, target: str | None = None) -> list[tuple[Path, int]]:
    """Delete the temporary files no live writer holds; (path, size) of each removed."""
    removed = []
    for path in orphans(directory, target):
        size = _remove_if_dead(path)
        if size is not None:
            removed.append((path, size))
    return removed


def _remove_if_dead(path: Path) -> int | None:
    """Unlink ``path`` if no process holds its lock; its size then, else None."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:  # gone meanwhile (renamed into place), or not ours to open
        return None
    try:
        if not _try_lock(fd):
            return None  # a write in progress
        st = os.fstat(fd)
        if os.stat(path, follow_symlinks=False).st_ino != st.st_ino:
            return None  # the name now points at another file: leave it
        path.unlink()
        return st.st_size
    except OSError:
        return None
    finally:
        os.close(fd)
