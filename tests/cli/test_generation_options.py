"""sample and prime: --encoding, one prime-file option, and no option silently doing nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from charlm.cli import app
from charlm.cli.common import info
from tests.helpers.terminal import charlm_env, on_a_terminal, rest_of


def run(*args: str, input: str | None = None):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, list(args), input=input)


@pytest.fixture
def latin1_prime(tmp_path: Path) -> Path:
    path = tmp_path / "prime.txt"
    path.write_bytes("All: speak, café".encode("latin-1"))  # 0xe9 is not UTF-8
    return path


@pytest.mark.parametrize("command", ["sample", "prime"])
@pytest.mark.parametrize("name", ["--prime-file", "--file", "-f"])
def test_prime_file_names_and_encoding_in_both_commands(
    trained_run: Path, latin1_prime: Path, command: str, name: str
) -> None:
    r = run(command, str(trained_run), name, str(latin1_prime), "-n", "5", "--seed", "1")
    assert r.exit_code == 1
    # One line naming the user's encoding (not utf-8-sig) and the option that fixes it.
    assert r.stderr.count("\n") == 1
    assert "is not valid utf-8:" in r.stderr and "--encoding" in r.stderr
    r = run(command, str(trained_run), name, str(latin1_prime), "--encoding", "latin-1",
            "-n", "5", "--seed", "1", "--unknown", "skip")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("All: speak, caf")  # é is not in the model: skipped
    assert len(r.stdout) == len("All: speak, caf") + 5


def test_the_two_prime_file_names_together_are_refused(
    trained_run: Path, latin1_prime: Path
) -> None:
    r = run("sample", str(trained_run), "--file", str(latin1_prime), "--prime-file", "x.txt")
    assert r.exit_code == 1
    assert r.stderr.startswith("charlm: error:") and "give one" in r.stderr


def test_prime_reads_stdin_in_the_encoding_given(trained_run: Path) -> None:
    r = CliRunner().invoke(
        app,
        ["prime", str(trained_run), "-", "--encoding", "latin-1", "-n", "3", "--seed", "1"],
        input="All:".encode("latin-1"),
    )
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("All:") and len(r.stdout) == 7


def test_greedy_names_no_seed_and_warns_about_what_it_ignores(trained_run: Path) -> None:
    r = run("sample", str(trained_run), "--greedy", "-n", "20")
    assert r.exit_code == 0, r.output
    assert "seed" not in r.stderr  # nothing drawn at random: no seed to repeat
    r = run("sample", str(trained_run), "--greedy", "--temperature", "0.5", "--seed", "3",
            "-n", "20")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "warning: --temperature, --seed do nothing with --greedy" in r.stderr
    # ... and they really do nothing: the same text as greedy alone.
    assert r.stdout == run("sample", str(trained_run), "--greedy", "-n", "20").stdout


def test_bias_with_temperature_warns_with_the_temperature_they_make(trained_run: Path) -> None:
    r = run("sample", str(trained_run), "--bias", "1", "--temperature", "0.5", "-n", "30",
            "--seed", "2")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "together they act as --temperature 0.25" in r.stderr
    # The warning tells the truth: the same draws as that temperature alone.
    alone = run("sample", str(trained_run), "--temperature", "0.25", "-n", "30", "--seed", "2")
    assert r.stdout == alone.stdout
    quiet = run("sample", str(trained_run), "--bias", "1", "--temperature", "0.5", "-n", "3",
                "--seed", "2", "-q")  # fmt: skip
    assert quiet.stderr == ""


def test_plain_options_warn_about_nothing(trained_run: Path) -> None:
    r = run("sample", str(trained_run), "--bias", "1", "--top-k", "3", "-n", "10", "--seed", "2")
    assert r.exit_code == 0, r.output
    assert "warning" not in r.stderr


def test_prime_json_says_which_sampling_options_it_ignores(trained_run: Path) -> None:
    r = run("prime", str(trained_run), "All:", "--json", "-n", "50", "--seed", "1")
    assert r.exit_code == 0, r.output
    assert (
        "warning: --length, --seed only shape the samples, and --json samples nothing" in r.stderr
    )
    assert json.loads(r.stdout)["prime"] == "All:"
    assert "warning" not in run("prime", str(trained_run), "All:", "--json").stderr
    # One option: the verb agrees with it; --no-show-prime is ignored too (the JSON holds it).
    one = run("prime", str(trained_run), "All:", "--json", "--no-show-prime")
    assert "warning: --show-prime only shapes the samples" in one.stderr


def test_prime_text_says_candidates_need_json(trained_run: Path) -> None:
    r = run("prime", str(trained_run), "All:", "--candidates", "3", "-n", "5", "--seed", "1")
    assert r.exit_code == 0, r.output
    assert "warning: --candidates only shapes the --json report" in r.stderr
    assert r.stdout.startswith("All:")
    assert "--candidates" not in run("prime", str(trained_run), "All:", "--json").stderr


def test_the_stderr_console_prints_emoji_codes_and_brackets_as_they_are(capsys) -> None:  # type: ignore[no-untyped-def]
    info("run :x: in [bold]runs[/bold] :smile:")
    assert capsys.readouterr().err == "run :x: in [bold]runs[/bold] :smile:\n"


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_ctrl_c_during_sample_says_interrupted_on_a_line_of_its_own(trained_run: Path) -> None:
    """stdout and stderr on one terminal: the text's line is ended before the message."""
    leader, follower = os.openpty()
    command = [sys.executable, "-m", "charlm", "sample", str(trained_run), "-n", "100000000"]
    proc = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=follower, stderr=follower, env=charlm_env()
    )
    os.close(follower)
    seen = b""
    try:
        while len(seen) < 2000:  # until the text is flowing
            seen += os.read(leader, 4096)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 130
        seen += rest_of(leader)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(leader)
    lines = seen.decode("utf-8", "replace").replace("\r\n", "\n").split("\n")
    assert "charlm: interrupted" in lines, lines[-3:]


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
@pytest.mark.parametrize("command", [["sample"], ["prime", "All:"], ["sample", "-n", "2"]])
def test_text_on_a_terminal_ends_its_line_once_and_a_pipe_gets_it_as_sampled(
    trained_run: Path, command: list[str]
) -> None:
    args = [command[0], str(trained_run), *command[1:], "--seed", "1", "-q"]
    piped = run(*args, "--length", "30").stdout
    shown = on_a_terminal(*args, "--length", "30").decode()
    assert shown == (piped if piped.endswith("\n") else piped + "\n")


def test_evaluate_table_shows_file_names_with_brackets_and_colons(
    trained_run: Path, tmp_path: Path
) -> None:
    odd = tmp_path / "[b]:x:.txt"
    odd.write_text("All:\nSpeak, speak.\n", encoding="utf-8")
    r = run("evaluate", str(trained_run), str(odd))
    assert r.exit_code == 0, r.output
    assert "[b]:x:.txt" in r.stderr
