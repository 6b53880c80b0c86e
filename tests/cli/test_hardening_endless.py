"""Endless, huge and non-regular input: every command that reads a file ends at once, in one
line naming the real reason, under a memory cap (reading /dev/zero whole grew ~1 GB/s until
the host ran out, then was called "out of memory: lower --batch-size")."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

CAP = 1536 << 20  # address space: charlm starts in well under this; /dev/zero would pass it


def _capped() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (CAP, CAP))


def charlm(args: list[str], cwd: Path, stdin: object = subprocess.DEVNULL) -> tuple[int, str]:
    """Exit code and stderr of charlm run in a process of its own, memory capped."""
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}
    done = subprocess.run(
        [sys.executable, "-m", "charlm", *args],
        cwd=cwd, stdin=stdin, capture_output=True, text=True, timeout=120,
        preexec_fn=_capped, env=env,
    )  # fmt: skip
    return done.returncode, done.stderr


def refused(code: int, stderr: str, *phrases: str) -> None:
    lines = stderr.strip().splitlines()
    assert code == 1 and len(lines) == 1 and lines[0].startswith("charlm: error:"), stderr
    assert "memory" not in lines[0], lines[0]
    for phrase in phrases:
        assert phrase in lines[0], lines[0]


COMMANDS = {
    "train": ["train", "{f}", "--out", "r"],
    "evaluate": ["evaluate", "{run}", "{f}"],
    "prepare": ["prepare", "{f}", "-o", "out.txt"],
    "music-check": ["music", "check", "{f}"],
    "music-render": ["music", "render", "{f}", "-o", "tunes"],
    "inspect-units": ["inspect", "units", "{run}", "-f", "{f}"],
    "inspect-surprisal": ["inspect", "surprisal", "{run}", "-f", "{f}"],
    "sample-prime-file": ["sample", "{run}", "--prime-file", "{f}", "--length", "5"],
    "checkpoint": ["sample", "{f}"],
}


@pytest.mark.parametrize("command", list(COMMANDS))
def test_dev_zero_is_refused_as_a_device(command: str, trained_run: Path, tmp_path: Path) -> None:
    args = [a.format(f="/dev/zero", run=trained_run) for a in COMMANDS[command]]
    refused(*charlm(args, tmp_path), "/dev/zero is a character device")
    assert not {"r", "out.txt", "tunes"} & {p.name for p in tmp_path.iterdir()}


@pytest.mark.parametrize("command", ["train", "evaluate", "checkpoint"])
def test_a_named_pipe_nobody_writes_is_refused_not_waited_on(
    command: str, trained_run: Path, tmp_path: Path
) -> None:
    fifo = tmp_path / ("pipe.safetensors" if command == "checkpoint" else "pipe")
    os.mkfifo(fifo)
    args = [a.format(f=fifo, run=trained_run) for a in COMMANDS[command]]
    refused(*charlm(args, tmp_path), "is a named pipe")


def test_endless_binary_on_stdin_is_refused_at_its_first_chunk(tmp_path: Path) -> None:
    with open("/dev/zero", "rb") as zero:
        refused(*charlm(["train", "-", "--out", "r"], tmp_path, zero), "stdin", "binary")


def test_an_executable_is_called_binary(tmp_path: Path) -> None:
    refused(*charlm(["train", sys.executable, "--out", "r"], tmp_path), "binary")


def test_a_play_that_is_not_text_or_not_a_file_is_one_line(tmp_path: Path) -> None:
    plays = tmp_path / "plays"
    plays.mkdir()
    (plays / "macbeth.md").write_bytes(b"FIRST WITCH.\nWhen shall we three meet again\xff\n")
    args = ["prepare", "shakespeare", "--plays-dir", str(plays), "--plays"]
    refused(*charlm([*args, "macbeth"], tmp_path), "macbeth.md is not valid utf-8")
    os.mkfifo(plays / "hamlet.md")
    refused(*charlm([*args, "hamlet"], tmp_path), "hamlet.md is a named pipe")
