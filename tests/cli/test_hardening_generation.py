"""Awkward generation requests: odd primes, zero lengths, long stops, closed stdin/stdout.

test_cli_generate.py covers unknown characters among known ones, an empty `prime`, and a
reader that closes the pipe early (`| head`) for `sample`; these are the rest.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from charlm.cli import app
from tests.helpers.results import one_line_error

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


def invoke(*args: str, input: str | None = None):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args), input=input)


def test_a_prime_of_only_unknown_characters(trained_run: Path) -> None:
    one_line_error(invoke("prime", str(trained_run), "\u00e9\u00e8\u2713", "-n", "5"),
                   "'é' at 0", "'✓' at 2", "--unknown skip")  # fmt: skip
    r = invoke("prime", str(trained_run), "\u00e9\u00e8\u2713", "-n", "7", "--unknown", "skip",
               "--seed", "2")  # fmt: skip
    assert r.exit_code == 0, r.output
    # Nothing is left: it samples as if unprimed, and says both things on stderr.
    assert r.stdout == invoke("sample", str(trained_run), "-n", "7", "--seed", "2").stdout
    assert "they are skipped" in r.stderr and "the prime is empty" in r.stderr


def test_an_empty_prime_option_samples_unprimed(trained_run: Path) -> None:
    r = invoke("sample", str(trained_run), "--prime", "", "-n", "9", "--seed", "4")
    assert r.exit_code == 0
    assert r.stdout == invoke("sample", str(trained_run), "-n", "9", "--seed", "4").stdout


def test_an_empty_prime_file_samples_unprimed(trained_run: Path, tmp_path: Path) -> None:
    (tmp_path / "empty.txt").write_text("")
    r = invoke("prime", str(trained_run), "--file", str(tmp_path / "empty.txt"), "-n", "6")
    assert r.exit_code == 0 and len(r.stdout) == 6


@pytest.mark.parametrize(
    ("args", "stdout"),
    [
        (["sample", "-n", "0"], ""),
        (["sample", "-n", "0", "-k", "3", "--separator", "|"], "||"),
        (["prime", "All:", "-n", "0"], "All:"),
        (["prime", "All:", "-n", "0", "--no-show-prime"], ""),
    ],
)
def test_length_zero_writes_no_new_text(trained_run: Path, args: list[str], stdout: str) -> None:
    r = invoke(args[0], str(trained_run), *args[1:])
    assert r.exit_code == 0, r.output
    assert r.stdout == stdout and "Traceback" not in r.stderr


def test_a_stop_string_longer_than_the_sample_never_matches(trained_run: Path) -> None:
    plain = invoke("sample", str(trained_run), "-n", "12", "--seed", "5").stdout
    r = invoke("sample", str(trained_run), "-n", "12", "--seed", "5", "--stop", "x" * 200)
    assert r.exit_code == 0 and r.stdout == plain and len(plain) == 12


def test_a_stop_string_equal_to_the_prime_does_not_end_the_sample(trained_run: Path) -> None:
    """Stops apply to the new text: a prime that contains the stop string still samples."""
    r = invoke("prime", str(trained_run), "All:", "-n", "10", "--stop", "All:", "--seed", "1")
    assert r.exit_code == 0 and r.stdout.startswith("All:") and len(r.stdout) > len("All:")


def _charlm(args: list[str], redirect: str) -> subprocess.CompletedProcess[bytes]:
    """Run charlm in a shell with a file descriptor closed (`<&-` or `>&-`)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = " ".join([sys.executable, "-m", "charlm", *(f"'{a}'" for a in args), redirect])
    return subprocess.run(["bash", "-c", cmd], capture_output=True, env=env, timeout=120)


@pytest.mark.parametrize(
    ("args", "phrase"),
    [
        (["prime", "{run}", "-"], "stdin is closed: pipe text in"),
        (["evaluate", "{run}", "-"], "stdin is closed"),
    ],
)
def test_closed_stdin_is_one_line(trained_run: Path, args: list[str], phrase: str) -> None:
    p = _charlm([a.format(run=trained_run) for a in args], "<&-")
    assert p.returncode == 1 and p.stdout == b""
    assert p.stderr.decode().strip() == p.stderr.decode().strip().splitlines()[0]
    assert phrase in p.stderr.decode()


def test_closed_stdout_is_one_line(trained_run: Path, corpus_file: Path) -> None:
    """Started with no stdout at all (`>&-`): nowhere to write, so say so and fail."""
    for args in (["sample", str(trained_run), "-n", "5"],
                 ["evaluate", str(trained_run), str(corpus_file), "--json", "-q"]):  # fmt: skip
        p = _charlm(args, ">&-")
        assert p.returncode == 1, p.stderr
        assert p.stderr.decode() == (
            "charlm: error: stdout is closed: redirect it to a file (> out.txt) or a pipe\n"
        )


def test_dry_run_into_a_reader_that_is_gone_ends_quietly(corpus_file: Path) -> None:
    """`charlm train --dry-run | true`: the reader exits before the JSON is written."""
    p = _charlm(["train", str(corpus_file), "--dry-run", "--bptt", "8", "-q"],
                "| true; exit ${PIPESTATUS[0]}")  # fmt: skip
    assert p.returncode == 0 and p.stderr == b""


def test_json_into_a_pipe_closed_early_ends_quietly(trained_run: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "charlm", "prime", str(trained_run), "All:" * 3000, "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.read(20)
    proc.stdout.close()  # as `| head -c 20` does, before the JSON is all written
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 0
    assert first.startswith(b'{"prime": "All:')
    assert "Traceback" not in err and "Error" not in err
