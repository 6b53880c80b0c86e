"""One training per run directory: a lock file naming its owner (host and process id).

Two runs writing the same checkpoints would overwrite each other's work. The lock is a
file created exclusively; a lock whose owner is gone (a crash, a kill -9) is taken over,
so a dead run never blocks its directory for good.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from charlm.errors import RunLockedError

LOCK_NAME = ".charlm.lock"


@contextmanager
def run_lock(run_dir: Path) -> Iterator[Path]:
    """Hold the run directory's lock for the duration of the block."""
    path = acquire(run_dir)
    try:
        yield path
    finally:
        release(path)


def acquire(run_dir: Path) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / LOCK_NAME
    owner = {"pid": os.getpid(), "host": socket.gethostname()}
    for _ in range(2):  # the second try follows the removal of a stale lock
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = read_owner(path)
            if holder is not None and not is_stale(holder):
                raise RunLockedError(_locked_message(run_dir, path, holder)) from None
            path.unlink(missing_ok=True)
            continue
        with os.fdopen(fd, "w") as f:
            json.dump(owner, f)
        return path
    raise RunLockedError(f"{run_dir} is being locked by another training at this moment: retry")


def release(path: Path) -> None:
    """Remove the lock, but only our own: a takeover by another process is left alone."""
    holder = read_owner(path)
    if holder is not None and holder.get("pid") == os.getpid() and _same_host(holder):
        path.unlink(missing_ok=True)


def read_owner(path: Path) -> dict | None:
    """The lock's owner; None when the file is gone or unreadable (a crash mid-write)."""
    try:
        holder = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return holder if isinstance(holder, dict) and isinstance(holder.get("pid"), int) else None


def is_stale(holder: dict) -> bool:
    """True when the owner ran on this host and its process no longer exists."""
    if not _same_host(holder):
        return False  # cannot look at another machine's processes
    try:
        os.kill(holder["pid"], 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, under another user
        return False
    return False


def _same_host(holder: dict) -> bool:
    return holder.get("host") == socket.gethostname()


def _locked_message(run_dir: Path, path: Path, holder: dict) -> str:
    where = f"process {holder['pid']} on {holder.get('host', '?')}"
    hint = "wait for it or stop it" if _same_host(holder) else f"if that run is gone, delete {path}"
    return f"{run_dir} is in use by another training ({where}): {hint}, or use another --out"
