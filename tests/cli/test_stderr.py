"""A stderr whose reader went away (`2>&1 | head -2`) stops the reports, not the work."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from charlm.cli.stderr import DroppingStderr
from tests.helpers import MICRO_ARGS

REPO = Path(__file__).resolve().parents[2]


def charlm_with_stderr_closed(*args: str) -> tuple[int, bytes]:
    """Run charlm in a subprocess whose stderr pipe is closed before it writes anything."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "charlm", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env,
    )  # fmt: skip
    assert proc.stderr is not None and proc.stdout is not None
    proc.stderr.close()  # the reader is gone: every write to stderr now fails with EPIPE
    out = proc.stdout.read()
    return proc.wait(timeout=300), out


def test_training_runs_with_stderr_closed_from_the_start(tmp_path: Path, corpus_file: Path) -> None:
    run = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "charlm", "train", str(corpus_file), "--out", str(run), *MICRO_ARGS],
        stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, preexec_fn=lambda: os.close(2),
        env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=300,
    )  # fmt: skip  # 2>&-
    assert proc.returncode == 0
    assert (run / "latest.safetensors").is_file()


def test_training_goes_on_when_stderr_goes_away(tmp_path: Path, corpus_file: Path) -> None:
    run = tmp_path / "run"
    code, out = charlm_with_stderr_closed("train", str(corpus_file), "--out", str(run), *MICRO_ARGS)
    assert code == 0
    assert out == b""
    assert (run / "latest.safetensors").is_file()  # trained to the end and saved
    assert len((run / "metrics.jsonl").read_text().splitlines()) >= 2


@pytest.mark.parametrize(
    "command",
    [["sample", "-n", "200", "--seed", "4"], ["prime", "First", "-n", "50", "--seed", "4"]],
)
def test_generation_keeps_its_stdout_when_stderr_goes_away(
    trained_run: Path, command: list[str]
) -> None:
    name, *rest = command
    code, out = charlm_with_stderr_closed(name, str(trained_run), *rest)
    assert code == 0
    want = subprocess.run(
        [sys.executable, "-m", "charlm", name, str(trained_run), *rest],
        capture_output=True, env={**os.environ, "PYTHONPATH": str(REPO)}, check=True,
    ).stdout  # fmt: skip
    assert out == want and len(out) > 0


def test_evaluate_keeps_its_stdout_when_stderr_goes_away(
    trained_run: Path, corpus_file: Path
) -> None:
    code, out = charlm_with_stderr_closed("evaluate", str(trained_run), str(corpus_file), "--json")
    assert code == 0
    assert b'"bits_per_char"' in out


class _Gone(io.StringIO):
    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


def test_the_first_failed_write_silences_that_stream_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    file = DroppingStderr()
    monkeypatch.setattr(sys, "stderr", _Gone())
    assert file.write("lost") == 4  # no exception
    assert file.gone
    fresh = io.StringIO()
    monkeypatch.setattr(sys, "stderr", fresh)  # a new stderr (another test) is used again
    file.write("seen")
    assert fresh.getvalue() == "seen"
