"""Commands run on a pseudo-terminal, for what a user at a terminal sees."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def charlm_env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(REPO), NO_COLOR="1")


def rest_of(leader: int) -> bytes:
    """Everything a terminal shows until it closes with its process."""
    seen = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the terminal closed with the process
            return seen
        if not chunk:
            return seen
        seen += chunk


def on_a_terminal(*args: str, stderr_too: bool = False) -> bytes:
    """What a charlm command shows on a terminal holding its stdout (and its stderr too, if
    ``stderr_too``; else stderr is discarded). Line ends as written ("\\r\\n" read as "\\n")."""
    leader, follower = os.openpty()
    command = [sys.executable, "-m", "charlm", *args]
    stderr = follower if stderr_too else subprocess.DEVNULL
    proc = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=follower, stderr=stderr, env=charlm_env()
    )
    os.close(follower)
    try:
        seen = rest_of(leader)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(leader)
    return seen.replace(b"\r\n", b"\n")
