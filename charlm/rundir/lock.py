"""One training per run directory: a kernel lock on a file in it.

Two runs writing the same checkpoints would overwrite each other's work. A training holds
``flock`` on ``.charlm.lock`` while it runs; the kernel drops the lock when the process ends,
however it ends (a crash, a kill -9), so a dead run never blocks its directory and a reused
pid is never taken for its owner. The file also names the owner (pid and host), for the
message a second run sees, and a clean exit removes it.

A lock file naming another host is never taken over: not every network file system shares
flock between machines (NFS mounted ``nolock``, sshfs), so this host cannot tell whether
that run is alive.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from charlm.errors import RunLockedError

LOCK_NAME = ".charlm.lock"
# is_held takes the lock for a moment to look: acquire tries again before it refuses.
_TRIES, _PAUSE = 5, 0.05
_held: dict[Path, int] = {}  # the lock files this process holds -> their descriptors


@contextmanager
def run_lock(run_dir: Path) -> Iterator[Path]:
    """Hold the run directory's lock for the duration of the block."""
    path = acquire(run_dir)
    try:
        yield path
    finally:
        release(path)


def acquire(run_dir: Path) -> Path:
    """Lock ``run_dir`` for this process; RunLockedError naming the owner if another has it."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / LOCK_NAME
    for _ in range(_TRIES):
        fd = _lock(path)
        if fd is None:
            time.sleep(_PAUSE)
            continue
        holder = _parse(os.pread(fd, 4096, 0))
        if holder is not None and not _same_host(holder):
            os.close(fd)
            raise RunLockedError(_locked_message(run_dir, path, holder))
        # Written in place, not through the atomic writer: the lock lives on this very
        # file, and a torn write costs only the owner's name in a message.
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname()}).encode(), 0)
        _held[_key(path)] = fd
        return path
    holder = read_owner(path)
    if holder is None:  # its owner is still writing its name
        raise RunLockedError(f"{run_dir} is being locked by another training at this moment: retry")
    raise RunLockedError(_locked_message(run_dir, path, holder))


def release(path: Path) -> None:
    """Remove the lock file and unlock; a file someone made anew meanwhile is left alone."""
    fd = _held.pop(_key(path), None)
    if fd is None:
        return
    try:
        if _is_open_as(fd, path):  # removed while still locked: no one can lock a file gone
            path.unlink(missing_ok=True)
    finally:
        os.close(fd)


def is_held(run_dir: Path) -> bool:
    """True while a live training (this process included) holds ``run_dir``'s lock."""
    path = run_dir / LOCK_NAME
    if _key(path) in _held:
        return True
    holder = read_owner(path)
    if holder is not None and not _same_host(holder):
        return True  # as acquire does: another machine's run cannot be seen to have ended
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False  # no lock file: no training
    try:  # a shared lock, for a moment: it fails while a training holds the exclusive one
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def held_by_another(run_dir: Path) -> bool:
    """True while a training other than this process holds ``run_dir``'s lock."""
    return _key(run_dir / LOCK_NAME) not in _held and is_held(run_dir)


def read_owner(path: Path) -> dict | None:
    """The owner the lock file names; None when it is gone or unreadable (a crash mid-write)."""
    try:
        return _parse(path.read_bytes())
    except OSError:
        return None


def _lock(path: Path) -> int | None:
    """A descriptor holding ``path``'s lock; None while another process holds it."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        if _is_open_as(fd, path):
            return fd
        os.close(fd)  # its owner removed it between our open and our lock: open the new one


def _is_open_as(fd: int, path: Path) -> bool:
    """True when ``path`` still names the file open as ``fd``."""
    try:
        named = os.stat(path)
    except FileNotFoundError:
        return False
    opened = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (opened.st_dev, opened.st_ino)


def _parse(data: bytes) -> dict | None:
    try:
        holder = json.loads(data)
    except ValueError:
        return None
    return holder if isinstance(holder, dict) and isinstance(holder.get("pid"), int) else None


def _key(path: Path) -> Path:
    return path.resolve()


def _same_host(holder: dict) -> bool:
    return holder.get("host") == socket.gethostname()


def _forget_in_child() -> None:
    """A forked child shares its parent's locks: it closes its copies, so the lock ends with
    the parent, not with the last child still running."""
    for fd in _held.values():
        os.close(fd)
    _held.clear()


os.register_at_fork(after_in_child=_forget_in_child)


def _locked_message(run_dir: Path, path: Path, holder: dict) -> str:
    where = f"process {holder['pid']} on {holder.get('host', '?')}"
    if _same_host(holder):
        hint = (
            f"wait for it or stop it (kill {holder['pid']}); if no training runs there, "
            f"the lock is stale: delete {path}"
        )
    else:
        hint = f"if that run is gone, delete {path}"
    return f"{run_dir} is in use by another training ({where}): {hint}, or use another --out"
