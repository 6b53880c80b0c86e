"""`charlm complete` and `charlm prime --beam`, as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from charlm.cli import app

runner = CliRunner()


def _run(args: list[str]) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_prime_with_one_beam_is_greedy(trained_run: Path) -> None:
    args = ["prime", str(trained_run), "First", "-n", "40", "-q"]
    assert _run([*args, "-k", "1", "--beam", "1"]) == _run([*args, "--greedy"])


def test_prime_beam_writes_k_hypotheses_with_their_log_probabilities(trained_run: Path) -> None:
    result = runner.invoke(
        app, ["prime", str(trained_run), "First", "-n", "10", "--beam", "4", "-k", "3",
              "--separator", "|", "--temperature", "0.5"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    texts = result.stdout.split("|")
    assert len(texts) == 3 and all(t.startswith("First") and len(t) == 15 for t in texts)
    assert len(set(texts)) == 3
    notes = result.stderr.splitlines()
    assert (
        notes[0] == "warning: --temperature does nothing with --beam: a beam search draws nothing"
    )
    assert [n.split(":")[0] for n in notes[1:]] == ["beam 1", "beam 2", "beam 3"]


def test_complete_lists_next_words_best_first(trained_run: Path) -> None:
    out = _run(["complete", str(trained_run), "First Citizen:\nSpeak, ", "-k", "4", "-q"])
    rows = [line.split("\t") for line in out.splitlines()]
    assert len(rows) == 4
    logprobs = [float(lp) for _, lp in rows]
    assert logprobs == sorted(logprobs, reverse=True) and all(lp < 0 for lp in logprobs)
    assert all(" " not in text[1:] and "\\n" not in text[1:] for text, _ in rows)


def test_complete_json_and_its_own_stop(trained_run: Path) -> None:
    out = _run(["complete", str(trained_run), "Fir", "--stop", ":", "-k", "2", "--json", "-q"])
    doc = json.loads(out)
    assert doc["prime"] == "Fir" and doc["beam"] == 16
    assert len(doc["completions"]) == 2
    assert all(
        ":" not in c["text"] and c["ended"] in ("stop", "length") for c in doc["completions"]
    )


def test_k_above_the_beam_is_one_line(trained_run: Path) -> None:
    result = runner.invoke(app, ["complete", str(trained_run), "Fir", "-k", "5", "--beam", "2"])
    assert result.exit_code == 2 and result.stdout == ""  # options that cannot work
    assert result.stderr == (
        "charlm: error: -k must be between 1 and --beam 2 (got 5): "
        "a beam keeps at most that many hypotheses\n"
    )
