"""A backward model (train --reverse) everywhere it reads or writes text: what it writes comes
before the prime and reads left to right; what it scores and records stays in reading order.

Each library check compares a backward model with its forward twin (the same weights, reading
the text reversed), so the only difference under test is the direction.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from charlm.cli import app
from charlm.config.schema import ModelConfig
from charlm.data.tokenizers import CharTokenizer, WordTokenizer
from charlm.evaluation.scoring import token_report
from charlm.generation.generate import GenerateConfig, after_last_stop, generate_text
from charlm.inspection.gradflow import FlowConfig, measure
from charlm.inspection.recording import record
from charlm.models.lm import RNNLM
from tests.helpers import MICRO_ARGS
from tests.helpers.terminal import on_a_terminal

TOK = CharTokenizer("ab c\n")


def _twins(seed: int = 1) -> tuple[RNNLM, RNNLM]:
    torch.manual_seed(seed)
    cfg = ModelConfig(model="gru", vocab_size=TOK.vocab_size, embed_size=3, hidden_size=6)
    forward = RNNLM(cfg).eval()
    backward = RNNLM(dataclasses.replace(cfg, reverse=True)).eval()
    backward.load_state_dict(forward.state_dict())
    return forward, backward


@pytest.mark.parametrize("prime", ["", "ab c", "c\nab"])
def test_samples_precede_the_prime_and_read_left_to_right(prime: str) -> None:
    forward, backward = _twins()
    cfg = GenerateConfig(40, num_samples=3, seed=7)
    got = generate_text(backward, TOK, TOK.encode(prime), cfg)
    twin = generate_text(forward, TOK, TOK.encode(prime[::-1]), cfg)
    assert got == [t[::-1] for t in twin]
    assert all(len(t) == 40 for t in got)


def test_a_stop_cuts_at_the_one_nearest_the_prime() -> None:
    forward, backward = _twins(2)
    stopped = 0
    for seed in range(6):
        cfg = GenerateConfig(200, num_samples=2, seed=seed, stop=("ab", "\n"))
        got = generate_text(backward, TOK, TOK.encode("ca"), cfg)
        twin = generate_text(
            forward, TOK, TOK.encode("ac"), dataclasses.replace(cfg, stop=("ba", "\n"))
        )
        assert got == [t[::-1] for t in twin]
        assert all("ab" not in t and "\n" not in t for t in got)
        stopped += sum(len(t) < 200 for t in got)
    assert stopped  # the stops were met, not only the length


def test_a_word_models_text_joins_the_prime_as_its_tokenizer_would() -> None:
    """The words drawn before the prime are decoded with the prime to their right, so the
    space between the last drawn word and the prime's first is kept."""
    words = WordTokenizer(["the", "king", "queen", ",", "is"])
    torch.manual_seed(3)
    cfg = ModelConfig(model="gru", vocab_size=words.vocab_size, embed_size=3, hidden_size=6)
    backward = RNNLM(dataclasses.replace(cfg, reverse=True)).eval()
    prime = "the king"
    joined = 0
    for seed in range(4):
        texts = generate_text(backward, words, words.encode(prime), GenerateConfig(6, 3, seed=seed))
        for text in texts:
            whole = text + prime
            assert words.decode(words.encode(whole)) == whole  # no "queenthe" run-together
            joined += text.endswith(" ")
    assert joined  # some sample ended on a word, which the space separates


def test_after_last_stop() -> None:
    assert after_last_stop("x.ab.cd", [".", "b"]) == "cd"
    assert after_last_stop("abc", ["z"]) == "abc"
    assert after_last_stop("abc.", ["."]) == ""


def test_a_recording_comes_back_in_reading_order() -> None:
    forward, backward = _twins(3)
    ids = np.array(TOK.encode("ab cab\nba"))
    got, twin = record(backward, ids), record(forward, ids[::-1].copy())
    np.testing.assert_array_equal(got.ids, ids)
    assert np.isnan(got.log2_prob[-1]) and not np.isnan(got.log2_prob[:-1]).any()
    np.testing.assert_allclose(got.log2_prob[:-1], twin.log2_prob[1:][::-1], atol=1e-5)
    for name in got.names:
        np.testing.assert_allclose(got.states[name], twin.states[name][::-1], atol=1e-5)
    np.testing.assert_array_equal(got.top_ids[:-1], twin.top_ids[1:][::-1])


def test_gradient_flow_reads_the_text_as_the_model_does() -> None:
    forward, backward = _twins(4)
    ids = TOK.encode("ab c\nc ab\n" * 12)
    cfg = FlowConfig(max_lag=6, positions=5, carry_in=4)
    got, twin = measure(backward, ids, cfg, "b"), measure(forward, ids[::-1].copy(), cfg, "f")
    assert [c.mean_norm for c in got.curves] == [c.mean_norm for c in twin.curves]
    plain = measure(forward, ids, cfg, "f")
    assert [c.mean_norm for c in got.curves] != [c.mean_norm for c in plain.curves]


def test_the_prime_report_scores_each_token_from_its_right() -> None:
    forward, backward = _twins(4)
    got = token_report(backward, TOK, "ab cb", top=3)
    twin = token_report(forward, TOK, "bc ba", top=3)
    assert "".join(r["token"] for r in got["tokens"]) == "ab cb"
    assert [r["log_prob"] for r in got["tokens"]] == [r["log_prob"] for r in twin["tokens"]][::-1]
    assert got["previous"] == twin["next"] and "next" not in got
    assert got["nats"] == pytest.approx(twin["nats"])


@pytest.fixture
def backward_run(tmp_path: Path, corpus_file: Path) -> Path:
    out = tmp_path / "back"
    r = CliRunner().invoke(app, ["train", str(corpus_file), "--out", str(out), *MICRO_ARGS,
                                 "--reverse", "-q"])  # fmt: skip
    assert r.exit_code == 0, r.output
    return out


def test_the_commands_on_a_backward_run(backward_run: Path) -> None:
    run = CliRunner()
    r = run.invoke(app, ["prime", str(backward_run), "Speak.", "-n", "30", "--seed", "2", "-q"])
    assert r.exit_code == 0, r.output
    assert r.stdout.endswith("Speak.") and len(r.stdout) == 36
    r = run.invoke(app, ["sample", str(backward_run), "-n", "20", "--num-samples", "2",
                         "--separator", "|", "--prime", "All:", "--seed", "2", "-q"])  # fmt: skip
    parts = r.stdout.split("|")
    assert r.exit_code == 0 and len(parts) == 2 and all(p.endswith("All:") for p in parts)
    r = run.invoke(app, ["prime", str(backward_run), "Speak", "--json", "-q"])
    doc = json.loads(r.stdout)
    assert "previous" in doc and "".join(t["token"] for t in doc["tokens"]) == "Speak"
    r = run.invoke(app, ["inspect", "surprisal", str(backward_run), "Speak, speak.", "--json"])
    rows = json.loads(r.stdout)["tokens"]
    assert rows[-1]["bits"] is None and all(t["bits"] is not None for t in rows[:-1])
    r = run.invoke(app, ["complete", str(backward_run), "Spe"])
    assert r.exit_code == 1 and "--reverse" in r.stderr and "forward run" in r.stderr


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_a_backward_sample_shows_a_bar_on_a_terminal_until_its_text_appears(
    backward_run: Path, trained_run: Path
) -> None:
    """Its text comes whole at the end, so the bar is the only sign of work; a forward
    sample streams its text to the terminal instead."""
    args = ("--prime", "Speak.", "--length", "400", "--seed", "1")
    shown = on_a_terminal("sample", str(backward_run), *args, stderr_too=True).decode()
    assert "sampling" in shown and shown.rstrip("\n").endswith("Speak.")
    streamed = on_a_terminal("sample", str(trained_run), *args, stderr_too=True).decode()
    assert "sampling" not in streamed and streamed.startswith("Speak.")
