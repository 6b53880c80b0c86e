"""`charlm sample` and `charlm prime`: stdout holds only text; options reach the sampler."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from rich.console import Console
from typer.testing import CliRunner

from charlm.cli import app
from charlm.cli import generation as cli_generation
from charlm.generation.load import load_model

REPO = Path(__file__).resolve().parents[2]


def run(*args: str, input: str | None = None):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, list(args), input=input)


def test_sample_writes_only_text_and_repeats_with_a_seed(trained_run: Path) -> None:
    r = run("sample", str(trained_run), "--length", "120", "--seed", "4")
    assert r.exit_code == 0, r.output
    assert len(r.stdout) == 120
    assert r.stderr == ""
    assert run("sample", str(trained_run), "--length", "120", "--seed", "4").stdout == r.stdout
    assert run("sample", str(trained_run), "--length", "120", "--seed", "5").stdout != r.stdout


def test_sample_finds_the_newest_checkpoint(trained_run: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(trained_run.parent)
    (trained_run.parent / "checkpoints").mkdir()
    trained_run.rename(trained_run.parent / "checkpoints" / "run")
    r = run("sample", "--length", "10", "--seed", "1")
    assert r.exit_code == 0, r.output
    assert "using checkpoint checkpoints/run/best.safetensors" in r.stderr
    assert len(r.stdout) == 10


def test_a_missing_checkpoint_is_one_line_naming_the_fix(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    for args in (["sample"], ["sample", "nowhere.safetensors"], ["prime", "x.safetensors", "hi"]):
        r = run(*args)
        assert r.exit_code == 1
        assert r.stdout == ""
        assert r.stderr.count("\n") == 1 and r.stderr.startswith("charlm: error:")
        assert "charlm train" in r.stderr


def test_several_samples_with_a_separator_each_after_the_prime(trained_run: Path) -> None:
    r = run("prime", str(trained_run), "All:", "-n", "30", "-k", "3", "--separator", "\\n==\\n",
            "--seed", "2")  # fmt: skip
    assert r.exit_code == 0, r.output
    parts = r.stdout.split("\n==\n")
    assert len(parts) == 3
    assert all(p.startswith("All:") and len(p) == 4 + 30 for p in parts)
    hidden = run("prime", str(trained_run), "All:", "-n", "30", "-k", "3", "--seed", "2",
                 "--no-show-prime")  # fmt: skip
    assert hidden.stdout.split("\n\n") == [p[4:] for p in parts]


def test_stop_strings_end_samples(trained_run: Path) -> None:
    full = run("sample", str(trained_run), "-n", "400", "--seed", "9").stdout
    stop = full[100:102]
    r = run("sample", str(trained_run), "-n", "400", "--seed", "9", "--stop", stop,
            "--stop", "\\n\\n\\n\\n")  # fmt: skip
    assert r.stdout == full[: full.index(stop)]


def test_unknown_prime_characters_are_reported_with_positions(trained_run: Path) -> None:
    r = run("prime", str(trained_run), "Speak, \u00e9peak \u2713", "-n", "5")
    assert r.exit_code == 1 and r.stdout == ""
    assert "'é' at 7" in r.stderr and "'✓' at 13" in r.stderr and "--unknown skip" in r.stderr
    r = run("prime", str(trained_run), "Speak, \u00e9peak", "-n", "5", "--unknown", "skip")
    assert r.exit_code == 0
    assert r.stdout.startswith("Speak, peak") and len(r.stdout) == len("Speak, peak") + 5
    assert "'é' at 7" in r.stderr


def test_prime_reads_stdin(trained_run: Path) -> None:
    dash = run("prime", str(trained_run), "-", "-n", "20", "--seed", "1", input="First Citizen:\n")
    piped = run("prime", str(trained_run), "-n", "20", "--seed", "1", input="First Citizen:\n")
    arg = run("prime", str(trained_run), "First Citizen:\n", "-n", "20", "--seed", "1")
    assert dash.exit_code == 0, dash.output
    from_file = run("sample", str(trained_run), "--prime-file", "-", "-n", "20", "--seed", "1",
                    input="First Citizen:\n")  # fmt: skip
    assert dash.stdout == piped.stdout == arg.stdout == from_file.stdout
    assert dash.stdout.startswith("First Citizen:\n")


def test_priming_changes_the_continuation(trained_run: Path) -> None:
    a = run("prime", str(trained_run), "First Citizen:", "-n", "50", "--seed", "1",
            "--no-show-prime").stdout  # fmt: skip
    b = run("sample", str(trained_run), "-n", "50", "--seed", "1").stdout
    c = run("sample", str(trained_run), "-n", "50", "--seed", "1", "--prime", "First Citizen:",
            "--no-show-prime").stdout  # fmt: skip
    assert a == c
    assert b  # (a micro model barely remembers: the prime's effect is tested in test_sampling)


def test_empty_prime_samples_from_a_line_start(trained_run: Path) -> None:
    r = run("prime", str(trained_run), "", "-n", "25", "--seed", "3")
    assert r.exit_code == 0
    assert r.stdout == run("sample", str(trained_run), "-n", "25", "--seed", "3").stdout
    assert "the prime is empty" in r.stderr
    r = run("prime", str(trained_run), "", "--json")
    assert r.exit_code == 1 and "empty" in r.stderr


def test_prime_json_gives_per_token_log_probs(trained_run: Path) -> None:
    r = run("prime", str(trained_run), "Speak, speak.", "--json", "--candidates", "3")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    tokens = doc["tokens"]
    assert "".join(t["token"] for t in tokens) == "Speak, speak."
    assert all(t["log_prob"] <= 0 and len(t["top"]) == 3 for t in tokens)
    for t in tokens:  # the candidates are the most likely: none beats them
        assert t["top"][0]["log_prob"] >= t["log_prob"] - 1e-6
    assert len(doc["next"]) == 3
    # The totals count what evaluate counts: every token after the first.
    assert doc["nats"] == pytest.approx(-sum(t["log_prob"] for t in tokens[1:]))


def test_prime_json_scores_the_first_token_from_samples_cold_start(trained_run: Path) -> None:
    """The first token is scored as `sample` would draw it: after a newline, from zero state."""
    doc = json.loads(run("prime", str(trained_run), "Speak", "--json").stdout)
    lm = load_model(trained_run)
    newline = torch.as_tensor(lm.tokenizer.encode("\n"), dtype=torch.long)[None]
    with torch.no_grad():
        log_probs = lm.model(newline).log_probs
    expected = float(log_probs[0, -1, lm.tokenizer.encode("S")[0]])
    assert doc["tokens"][0]["log_prob"] == pytest.approx(expected, abs=1e-5)
    assert doc["tokens"][0]["top"][0]["log_prob"] == pytest.approx(float(log_probs[0, -1].max()))


def test_bad_options_are_one_line_errors(trained_run: Path) -> None:
    for opt in (["--temperature", "0"], ["--top-p", "2"], ["--bias", "-1"], ["--stop", ""]):
        r = run("sample", str(trained_run), *opt)
        assert r.exit_code == 2 and r.stdout == ""  # options that cannot work: usage
        assert r.stderr.startswith("charlm: error: --")


def test_help_states_the_bias_formula() -> None:
    r = run("sample", "--help")
    text = " ".join(r.stdout.replace("\u2502", " ").split())  # without the box borders
    assert "exp((1 + B) * logit)" in text and "temperature 1/(1+B)" in text


def test_stdout_holds_only_text_while_a_progress_bar_draws(trained_run: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    plain = run("sample", str(trained_run), "-n", "300", "--seed", "6").stdout
    # A terminal on stderr, stdout a pipe: the bar draws, as for `charlm sample > file`.
    monkeypatch.setattr(cli_generation, "stderr_is_terminal", lambda: True)
    monkeypatch.setattr(cli_generation, "err", Console(stderr=True, force_terminal=True))
    r = run("sample", str(trained_run), "-n", "300", "--seed", "6")
    assert r.exit_code == 0
    assert r.stdout == plain
    assert "sampling" in r.stderr  # the bar was there, on stderr


def subprocess_env() -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("PYTHONUNBUFFERED", None)  # stdout buffered, as it normally is into a pipe
    return env


def test_a_closed_pipe_ends_quietly(trained_run: Path) -> None:
    env = subprocess_env()
    proc = subprocess.Popen(
        [sys.executable, "-m", "charlm", "sample", str(trained_run), "-n", "1000000"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.read(10)
    proc.stdout.close()  # as `| head -c 10` does
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 0
    assert len(first) == 10
    assert "Traceback" not in err and "Error" not in err


def test_sampling_options_reach_the_sampler(trained_run: Path) -> None:
    def out(*opts: str) -> str:
        r = run("sample", str(trained_run), "-n", "60", "--seed", "8", *opts)
        assert r.exit_code == 0, r.output
        return r.stdout

    greedy = out("--greedy")
    assert out("--top-k", "1") == greedy
    assert out("--top-p", "0.000001") == greedy
    assert out("--bias", "3") == out("--temperature", "0.25")
    assert out("--temperature", "3") != out()


def test_text_arrives_while_sampling_goes_on(trained_run: Path) -> None:
    """Flushed as produced: the first characters come out long before the sample ends (an
    unflushed pipe would hold all 6,000, less than its 8 KB buffer, until the exit)."""
    env = subprocess_env()
    proc = subprocess.Popen(
        [sys.executable, "-m", "charlm", "sample", str(trained_run), "-n", "6000", "-q"],
        stdout=subprocess.PIPE, env=env,
    )  # fmt: skip
    assert proc.stdout is not None
    first = proc.stdout.read1(65536)  # type: ignore[attr-defined]  # what has come so far
    rest = proc.stdout.read()
    assert proc.wait(timeout=120) == 0
    assert 0 < len(first) < 6000
    assert len(first) + len(rest) == 6000


def test_without_a_seed_the_chosen_one_is_named_and_repeats(trained_run: Path) -> None:
    r = run("sample", str(trained_run), "--length", "60")
    assert r.exit_code == 0, r.output
    seed = int(r.stderr.split("seed ")[1].split()[0])
    again = run("sample", str(trained_run), "--length", "60", "--seed", str(seed))
    assert again.stdout == r.stdout
