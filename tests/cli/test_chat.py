"""`charlm chat`: in a pseudo-terminal as a person uses it (pexpect), and from a pipe."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pexpect
from typer.testing import CliRunner

from charlm.cli import app

ROOT = Path(__file__).resolve().parents[2]


def _spawn(run: Path, *args: str) -> pexpect.spawn:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1", "TERM": "dumb"}
    child = pexpect.spawn(
        sys.executable, ["-m", "charlm", "chat", str(run), "--seed", "1", *args],
        env=env, encoding="utf-8", timeout=60, dimensions=(24, 100),
    )  # fmt: skip
    child.expect("Ctrl-D ends")
    return child


def _say(child: pexpect.spawn, line: str) -> None:
    """Type a line once the prompt is up: keys typed before prompt_toolkit reads are lost."""
    child.expect_exact("> ")
    child.sendline(line)


def _ctrl_d(child: pexpect.spawn) -> None:
    """Ctrl-D ends the session. Typed while the terminal is still in line mode (before
    prompt_toolkit switches it to raw keys) the tty itself takes it, so it is typed again."""
    for _ in range(20):
        child.sendcontrol("d")
        if child.expect([pexpect.EOF, pexpect.TIMEOUT], timeout=1) == 0:
            return
    raise AssertionError("Ctrl-D did not end the session")


def test_a_session_keeps_its_state_and_ctrl_c_stops_only_the_reply(
    trained_run: Path, tmp_path: Path
) -> None:
    child = _spawn(trained_run, "--length", "100000", "--stop", "\\x00")  # an endless reply
    _say(child, "First")
    child.expect(r"\S{20}")  # the model is writing
    child.sendintr()  # Ctrl-C: the reply stops, the session does not
    _say(child, "/state")
    child.expect(r"\n([\d,]+) tokens read")
    read = int(child.match.group(1).replace(",", ""))
    assert read > len("First\n") + 20
    saved = tmp_path / "transcript.txt"
    _say(child, f"/save {saved}")
    child.expect("saved the transcript")
    _say(child, "/reset")
    child.expect("nothing read")
    _say(child, "/state")
    child.expect(r"\n0 tokens read")
    child.expect_exact("> ")
    _ctrl_d(child)
    child.close()
    assert child.exitstatus == 0
    text = saved.read_text()
    assert text.startswith("First\n") and len(text) == read  # a character model: one per token


def test_from_a_pipe_each_line_is_answered(trained_run: Path) -> None:
    lines = "First\n/temperature 0.5\n/temperature 0\nSecond\n"
    result = CliRunner().invoke(
        app, ["chat", str(trained_run), "--seed", "1", "-n", "12", "-q"], input=lines
    )
    assert result.exit_code == 0, result.output
    replies = result.stdout.splitlines()
    assert len(replies) >= 2
    assert result.stderr == "charlm: error: /temperature takes a number above 0 (got '0')\n"
