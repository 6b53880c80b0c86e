"""The run lock is the kernel's: it ends with its owner, whatever the lock file says."""

from __future__ import annotations

import fcntl
import json
import os
import socket
from pathlib import Path

import pytest

from charlm.rundir import lock as runlock
from tests.rundir.lockholder import held_elsewhere


def test_a_killed_owner_frees_the_directory_though_its_file_stays(tmp_path: Path) -> None:
    with held_elsewhere(tmp_path) as pid:
        assert runlock.is_held(tmp_path) and runlock.held_by_another(tmp_path)
    # held_elsewhere ends its holder with SIGKILL: no handler ran, nothing was released
    assert runlock.read_owner(tmp_path / runlock.LOCK_NAME)["pid"] == pid  # left behind
    assert not runlock.is_held(tmp_path)
    with runlock.run_lock(tmp_path) as path:
        assert runlock.read_owner(path) == {"pid": os.getpid(), "host": socket.gethostname()}
        assert runlock.is_held(tmp_path) and not runlock.held_by_another(tmp_path)
    assert not path.exists()  # a clean exit leaves no lock file


def test_a_file_naming_a_live_process_that_holds_no_lock_is_taken_over(tmp_path: Path) -> None:
    """A pid reused after a crash (here: our parent, alive) names no owner: no lock is held."""
    path = tmp_path / runlock.LOCK_NAME
    path.write_text(json.dumps({"pid": os.getppid(), "host": socket.gethostname()}))
    assert not runlock.is_held(tmp_path)
    assert runlock.acquire(tmp_path) == path
    assert runlock.read_owner(path)["pid"] == os.getpid()
    runlock.release(path)
    assert not path.exists()


def test_the_lock_not_the_file_refuses(tmp_path: Path) -> None:
    """An owner that has not written its name yet still holds the directory."""
    with held_elsewhere(tmp_path):
        (tmp_path / runlock.LOCK_NAME).write_text("")
        with pytest.raises(runlock.RunLockedError) as info:
            runlock.acquire(tmp_path)
    assert str(info.value) == (
        f"{tmp_path} is being locked by another training at this moment: retry"
    )


def test_a_forked_child_does_not_keep_a_dead_owners_lock(tmp_path: Path) -> None:
    with held_elsewhere(tmp_path, leave_child=True) as child:
        os.kill(child, 0)  # alive, the parent that took the lock gone
        assert not runlock.is_held(tmp_path)
        runlock.release(runlock.acquire(tmp_path))


def test_a_look_at_the_lock_does_not_refuse_a_training(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`plot --follow` takes the lock shared for a moment to look: acquire waits it out."""
    path = tmp_path / runlock.LOCK_NAME
    path.touch()
    looking = os.open(path, os.O_RDONLY)
    fcntl.flock(looking, fcntl.LOCK_SH)
    monkeypatch.setattr(runlock.time, "sleep", lambda seconds: os.close(looking))
    with runlock.run_lock(tmp_path):
        assert runlock.is_held(tmp_path)
    assert not runlock.is_held(tmp_path)
