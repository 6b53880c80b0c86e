"""One training per run directory: a lock file naming its owner.

Two runs writing the same checkpoints would overwrite each other's work. The lock is a
file created exclusively; a lock whose owner is gone (a crash, a kill -9) is taken over,
so a dead run never blocks its directory for good.

The owner is a process id plus what makes it unique: the host, the boot (Linux's boot id)
and the process's start time. A pid alone is reused, after a reboot or in a container that
restarts, and a lock naming a reused pid would otherwise block the directory forever.
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
    owner = identity(os.getpid())
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
    if holder is not None and is_ours(holder):
        path.unlink(missing_ok=True)


def identity(pid: int) -> dict:
    """What names process ``pid`` uniquely; boot id and start time are absent off Linux."""
    owner: dict = {"pid": pid, "host": socket.gethostname()}
    boot, started = boot_id(), start_time(pid)
    if boot is not None:
        owner["boot_id"] = boot
    if started is not None:
        owner["start_time"] = started
    return owner


def is_ours(holder: dict) -> bool:
    mine = holder.get("pid") == os.getpid() and _same_host(holder)
    return mine and not _another_process(holder)


def live_owner(run_dir: Path) -> dict | None:
    """The live process other than this one that holds ``run_dir``'s lock, if any."""
    holder = read_owner(run_dir / LOCK_NAME)
    if holder is None or is_ours(holder) or is_stale(holder):
        return None
    return holder


def read_owner(path: Path) -> dict | None:
    """The lock's owner; None when the file is gone or unreadable (a crash mid-write)."""
    try:
        holder = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return holder if isinstance(holder, dict) and isinstance(holder.get("pid"), int) else None


def is_stale(holder: dict) -> bool:
    """True when the owner ran on this host and its process no longer exists.

    A process with the owner's pid that started at another time, or in another boot, is
    not the owner: its pid was reused.
    """
    if not _same_host(holder):
        return False  # cannot look at another machine's processes
    if _another_process(holder):
        return True
    try:
        os.kill(holder["pid"], 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, under another user
        return False
    return False


def _same_host(holder: dict) -> bool:
    return holder.get("host") == socket.gethostname()


def _another_process(holder: dict) -> bool:
    """True when the holder's pid now names a process other than the one that locked.

    Only fields the lock recorded are compared (an older lock has neither), and only
    facts this machine can read: unknown is never taken for "another".
    """
    boot, started = holder.get("boot_id"), holder.get("start_time")
    if boot is not None and boot_id() not in (None, boot):
        return True  # rebooted since: every process of that boot is gone
    now = start_time(holder["pid"])
    return started is not None and now is not None and now != started


def boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip() or None
    except OSError:
        return None


def start_time(pid: int) -> int | None:
    """When ``pid`` started, in clock ticks since boot (field 22 of /proc/PID/stat)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces: split after it.
    fields = stat[stat.rfind(")") + 2 :].split()
    try:
        return int(fields[19])  # field 22 overall is the 20th after the name
    except (IndexError, ValueError):
        return None


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
