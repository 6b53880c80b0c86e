"""The one atomic writer: orphans of a killed writer are tidied, a live writer's never are."""

from __future__ import annotations

import multiprocessing
import os
import signal
import tempfile
import time
from pathlib import Path

import pytest

from charlm.errors import OutputError
from charlm.rundir import atomic


def _paused_writer(path: Path, delay: float) -> multiprocessing.Process:
    """A forked process inside write_atomic(path), paused halfway through its data."""
    os.environ[atomic.DELAY_ENV] = str(delay)
    try:
        proc = multiprocessing.get_context("fork").Process(
            target=atomic.write_atomic, args=(path, b"new" * 1000)
        )
        proc.start()
    finally:
        del os.environ[atomic.DELAY_ENV]
    end = time.monotonic() + 30
    while not atomic.orphans(path.parent):
        assert time.monotonic() < end, "the writer never started"
        time.sleep(0.005)
    return proc


def test_a_live_writers_temporary_file_is_left_and_a_dead_ones_removed(tmp_path: Path) -> None:
    target = tmp_path / "s.npz"
    target.write_bytes(b"old")
    proc = _paused_writer(target, delay=30)
    try:
        (tmp,) = atomic.orphans(tmp_path)
        assert atomic.remove_orphans(tmp_path) == []  # it is being written
        atomic.write_atomic(tmp_path / "other.txt", b"x")  # another target: not touched
        assert tmp.exists()
        os.kill(proc.pid, signal.SIGKILL)
        proc.join()
        assert target.read_bytes() == b"old" and tmp.exists()  # the old file, and an orphan
        atomic.write_atomic(target, b"next")  # the next write of the target tidies it
        assert target.read_bytes() == b"next"
        assert atomic.orphans(tmp_path) == []
    finally:
        proc.kill()


def test_a_write_finishing_normally_leaves_nothing_and_removes_a_dead_orphan(
    tmp_path: Path,
) -> None:
    dead = tmp_path / ".out.txt.abcdefgh.tmp"
    dead.write_bytes(b"half")
    others = [tmp_path / ".notes.txt.abcdefgh.tmp", tmp_path / "out.txt.tmp"]
    for p in others:
        p.write_bytes(b"not ours to remove")
    atomic.write_atomic(tmp_path / "out.txt", b"done")
    assert sorted(tmp_path.iterdir()) == sorted([tmp_path / "out.txt", *others])
    assert atomic.remove_orphans(tmp_path) == [(others[0], 18)]  # when told to, all dead ones


def test_a_temporary_file_tidied_before_its_writer_locked_it_is_made_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The one moment a tidy can take a live writer's file: between mkstemp and flock.
    real, calls = tempfile.mkstemp, []

    def tidied_at_once(*args, **kwargs):  # type: ignore[no-untyped-def]
        fd, name = real(*args, **kwargs)
        calls.append(name)
        if len(calls) == 1:
            assert atomic.remove_orphans(Path(name).parent) == [(Path(name), 0)]
        return fd, name

    monkeypatch.setattr(tempfile, "mkstemp", tidied_at_once)
    atomic.write_atomic(tmp_path / "a.txt", b"whole")
    assert len(calls) == 2 and (tmp_path / "a.txt").read_bytes() == b"whole"
    assert atomic.orphans(tmp_path) == []


def test_a_tool_writing_by_name_replaces_the_file_only_when_done(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "er" / "t.wav"  # missing parents are made
    with atomic.replacing(target) as tmp:
        tmp.write_bytes(b"RIFF....")
        assert not target.exists()
    assert target.read_bytes() == b"RIFF...."
    with pytest.raises(RuntimeError), atomic.replacing(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("the tool failed")
    assert target.read_bytes() == b"RIFF...." and atomic.orphans(target.parent) == []


def test_a_parent_that_is_a_file_is_one_output_error(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputError, match=r"cannot write .*f/x.txt.*a file is in the way"):
        atomic.write_atomic(tmp_path / "f" / "x.txt", b"y")
