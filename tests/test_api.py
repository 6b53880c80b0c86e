"""The Python API: train a run, load it, sample, prime and score, as the command line does."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import charlm
from charlm.cli import app
from charlm.errors import CharlmError, UnknownCharactersError

runner = CliRunner()
MICRO = {
    "hidden_size": 16,
    "embed_size": 8,
    "layers": 1,
    "batch_size": 4,
    "bptt": 16,
    "max_steps": 12,
    "eval_every": 6,
    "sample_length": 20,
    "max_time": "none",
}


@pytest.fixture(scope="module")
def api_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("api")
    corpus = tmp / "corpus.txt"
    corpus.write_text("To be, or not to be, that is the question.\n" * 60)
    events: list[object] = []
    run = charlm.train(corpus, out=tmp / "run", seed=3, on_event=events.append, **MICRO)
    assert (run / "best.safetensors").exists() or (run / "latest.safetensors").exists()
    assert any(type(e).__name__ == "EvalEvent" for e in events)
    return run


def test_sample_equals_the_command_lines(api_run: Path) -> None:
    model = charlm.load(api_run)
    text = model.sample(40, temperature=0.8, seed=5)
    cli = runner.invoke(
        app, ["sample", str(api_run), "--length", "40", "--temperature", "0.8", "--seed", "5"]
    )
    assert cli.exit_code == 0, cli.output
    assert cli.stdout.rstrip("\n") == text
    assert isinstance(model.sample(10, num_samples=3, seed=1), list)


def test_prime_greedy_is_deterministic_and_refuses_unknown_characters(api_run: Path) -> None:
    model = charlm.load(api_run)
    first = model.prime("To be", 30, greedy=True)
    assert first == model.prime("To be", 30, greedy=True) and len(first) == 30
    with pytest.raises(UnknownCharactersError):
        model.prime("To be \u2603", 5)


def test_score_equals_evaluate(api_run: Path, tmp_path: Path) -> None:
    text = "To be, or not to be, that is the question.\n" * 3
    score = charlm.load(api_run).score(text)
    held = tmp_path / "held.txt"
    held.write_text(text)
    cli = runner.invoke(app, ["evaluate", str(api_run), str(held), "--json"])
    assert cli.exit_code == 0, cli.output
    total = json.loads(cli.stdout)["total"]
    assert (total["bits_per_char"], total["perplexity"]) == (score.bits_per_char, score.perplexity)


def test_bad_options_are_charlm_errors(tmp_path: Path) -> None:
    corpus = tmp_path / "c.txt"
    corpus.write_text("abc " * 500)
    with pytest.raises(CharlmError, match="--layers must be greater than 0"):
        charlm.train(corpus, out=tmp_path / "r", layers=0)
    with pytest.raises(CharlmError):
        charlm.load(tmp_path / "no-such-run")


def test_importing_charlm_imports_no_torch() -> None:
    code = "import sys, charlm; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
