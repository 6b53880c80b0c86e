"""`charlm evaluate` and score_text: the same loss as training, per file and in total."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from charlm.cli import app
from charlm.config.schema import ModelConfig
from charlm.data.corpus import split_text
from charlm.data.tokenizers import CharTokenizer
from charlm.errors import InputError
from charlm.evaluation.scoring import score_text, score_tokens
from charlm.generation.load import load_model
from charlm.models.lm import RNNLM
from charlm.rundir.checkpoint import load


def run(*args: str, input: str | None = None):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, list(args), input=input)


def test_evaluate_agrees_with_the_training_validation_loss(
    trained_run: Path, corpus_text: str, tmp_path: Path
) -> None:
    ck = load(trained_run / "best.safetensors")
    data = ck.config.data
    val = tmp_path / "val.txt"
    val.write_text(split_text(corpus_text, data.val_frac, data.test_frac)[2], encoding="utf-8")
    r = run("evaluate", str(trained_run), str(val), "--json")
    assert r.exit_code == 0, r.output
    total = json.loads(r.stdout)["total"]
    assert total["nats_per_token"] == pytest.approx(ck.state["best_val"], rel=1e-6)
    rows = [json.loads(line) for line in (trained_run / "metrics.jsonl").read_text().splitlines()]
    best = [row for row in rows if row.get("val_loss") == ck.state["best_val"]][-1]
    assert total["bits_per_char"] == pytest.approx(best["val_bpc"], rel=1e-6)


def test_batch_size_and_bptt_do_not_change_the_score_much(
    trained_run: Path, corpus_file: Path
) -> None:
    lm = load_model(trained_run)
    text = corpus_file.read_text()
    one = score_text(lm.model, lm.tokenizer, text, batch_size=1, bptt=1000)
    many = score_text(lm.model, lm.tokenizer, text, batch_size=16, bptt=7)
    assert one.tokens == many.tokens == len(text) - 1
    # Only the 16 stripe starts lose their context: a small difference.
    assert many.nats_per_token == pytest.approx(one.nats_per_token, rel=0.02)


def test_scoring_carries_the_hidden_state_like_one_long_pass() -> None:
    torch.manual_seed(0)
    model = RNNLM(ModelConfig(vocab_size=11, embed_size=4, hidden_size=8, num_layers=2)).eval()
    tokens = np.random.default_rng(0).integers(0, 11, size=300).astype(np.uint8)
    nats, count = score_tokens(model, tokens, batch_size=1, bptt=13)
    with torch.no_grad():
        nll = model(torch.as_tensor(tokens[None, :-1], dtype=torch.long),
                    targets=torch.as_tensor(tokens[None, 1:], dtype=torch.long)).nll  # fmt: skip
    assert count == 299
    assert nats == pytest.approx(float(nll.sum()), rel=1e-5)


def test_files_and_total_in_the_table_and_json(trained_run: Path, tmp_path: Path) -> None:
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("First Citizen:\nSpeak, speak.\n" * 5)
    b.write_text("All:\nResolved. \u00e9resolved \u00e9.\n")  # two characters never seen
    r = run("evaluate", str(trained_run), str(a), str(b), "--json", "--unknown", "skip")
    assert r.exit_code == 0, r.output
    assert "2 character(s) not in the model's vocabulary" in r.stderr and "skipped" in r.stderr
    doc = json.loads(r.stdout)
    fa, fb = doc["files"]
    assert fa["chars"] == len(a.read_text()) and fa["oov_chars"] == 0
    assert fb["oov_chars"] == 2 and fb["oov_char_rate"] == pytest.approx(2 / len(b.read_text()))
    assert fb["tokens"] == len(b.read_text()) - 2
    total = doc["total"]
    assert total["chars"] == fa["chars"] + fb["chars"]
    assert total["nats"] == pytest.approx(fa["nats"] + fb["nats"])
    assert total["bits_per_char"] == pytest.approx(
        total["nats"] / (total["scored_chars"] * np.log(2))
    )
    assert total["perplexity"] == pytest.approx(np.exp(total["nats_per_token"]))
    for word in ("bits/char", "perplexity", "a.txt", "b.txt", "total", "OOV", "2 ("):
        assert word in r.stderr


def test_unseen_characters_follow_one_rule_with_prime_and_inspect(
    trained_run: Path, tmp_path: Path
) -> None:
    """Refused by default in one line naming --unknown skip, as prime and inspect refuse them;
    with skip, dropped with a warning and counted in the table, never shown as 0.00%."""
    text = tmp_path / "rare.txt"
    text.write_text("First Citizen:\nSpeak, speak.\n" * 400 + "\u2603\n")  # one in 12,000
    r = run("evaluate", str(trained_run), str(text))
    assert r.exit_code == 1 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and "pass --unknown skip to drop them" in r.stderr
    inspect = run("inspect", "surprisal", str(trained_run), "--file", str(text))
    assert inspect.exit_code == 1
    assert inspect.stderr.split("has ")[1] == r.stderr.split("has ")[1]  # one wording
    skipped = run("evaluate", str(trained_run), str(text), "--unknown", "skip")
    assert skipped.exit_code == 0, skipped.output
    assert "warning:" in skipped.stderr and "they are skipped" in skipped.stderr
    assert "1 (0.01%)" in skipped.stderr and "0.00%" not in skipped.stderr


def test_evaluate_reads_stdin(trained_run: Path, corpus_file: Path) -> None:
    text = corpus_file.read_text()
    piped = run("evaluate", str(trained_run), "--json", "-q", input=text)
    dash = run("evaluate", str(trained_run), "-", "--json", "-q", input=text)
    named = run("evaluate", str(trained_run), str(corpus_file), "--json", "-q")
    assert piped.exit_code == 0, piped.output
    assert piped.stderr == ""
    scores = [json.loads(r.stdout)["total"]["nats"] for r in (piped, dash, named)]
    assert scores[0] == scores[1] == pytest.approx(scores[2])


def test_too_little_text_is_an_error(trained_run: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("F")
    r = run("evaluate", str(trained_run), str(empty))
    assert r.exit_code == 1 and r.stdout == ""
    assert r.stderr.startswith("charlm: error:") and "too little to score" in r.stderr
    r = run("evaluate", str(trained_run), str(tmp_path / "missing.txt"))
    assert r.exit_code == 1 and "no such file" in r.stderr


class UnkTokenizer(CharTokenizer):
    """A tokenizer with an unknown token, as a word tokenizer has."""

    unk_id = 0


def test_unknown_tokens_are_counted() -> None:
    tok = UnkTokenizer("?abc")  # id 0 is "?"
    torch.manual_seed(0)
    model = RNNLM(ModelConfig(vocab_size=4, embed_size=4, hidden_size=8)).eval()
    score = score_text(model, tok, "ab?c?abc")
    assert score.oov_tokens == 2 and score.oov_token_rate == pytest.approx(2 / 8)
    with pytest.raises(InputError):
        score_text(model, tok, "")
