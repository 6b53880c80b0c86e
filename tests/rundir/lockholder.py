"""A run directory's lock held by another live process, for the tests that need one."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from charlm.rundir import lock as runlock


@contextmanager
def held_elsewhere(run_dir: Path, *, leave_child: bool = False) -> Iterator[int]:
    """``run_dir``'s lock taken by a forked process; yields its pid, killed afterwards.

    ``leave_child``: the holder forks a child and then dies without releasing (os._exit);
    the pid yielded is the child's, still alive, which shared the lock at its birth.
    """
    ctx = multiprocessing.get_context("fork")
    pids = ctx.SimpleQueue()
    proc = ctx.Process(target=_hold, args=(run_dir, pids, leave_child), daemon=True)
    proc.start()
    pid = pids.get()
    try:
        if leave_child:
            proc.join()
        yield pid
    finally:
        proc.kill()
        proc.join()
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _hold(run_dir: Path, pids: multiprocessing.SimpleQueue, leave_child: bool) -> None:
    runlock.acquire(run_dir)
    if leave_child and os.fork() != 0:
        os._exit(0)  # the holder dies without releasing
    # The holder, or its child: fork's handlers have run by the time it gives its pid.
    pids.put(os.getpid())
    time.sleep(120)
