"""The cells section's plumbing: parameter matching, its rows, and the rows it keeps.

Nothing trains for real here: a fake runner stands in for `charlm train`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bench import cells
from charlm.cli import app
from charlm.config.schema import ModelConfig
from charlm.models import registry
from charlm.models.lm import RNNLM, count_parameters

BASE = ModelConfig(vocab_size=20, embed_size=8, hidden_size=40)  # a micro "default preset"


@pytest.mark.parametrize("model", registry.names())
def test_each_model_is_matched_to_the_default_count_within_ten_percent(model: str) -> None:
    target = count_parameters(RNNLM(BASE))
    hidden = cells.matched_hidden_size(BASE, model, target)
    total = cells.counts(BASE, model, hidden)[1]
    assert abs(total - target) <= 0.1 * target
    # No hidden size one away is nearer: the solution is the best match, not just a close one.
    for other in (hidden - 1, hidden + 1):
        assert abs(cells.counts(BASE, model, other)[1] - target) >= abs(total - target)
    if model == "lstm":
        assert hidden == BASE.hidden_size


def test_the_plan_counts_trained_and_fixed_weights_and_skips_the_esn_penalty() -> None:
    rows = {r["row"]: r for r in cells.plan(BASE, ["lstm", "esn"])}
    assert set(rows) == {"lstm", "lstm+penalty", "esn"}
    assert rows["esn"]["trained_params"] == rows["esn"]["hidden_size"] * 20 + 20  # the read-out
    assert rows["esn"]["total_params"] > 5 * rows["esn"]["trained_params"]
    assert rows["lstm"]["trained_params"] == rows["lstm"]["total_params"]
    assert rows["lstm+penalty"]["state_penalty"] == cells.PENALTY[1]


def test_a_row_is_a_command_charlm_accepts(corpus_text: str, tmp_path: Path, monkeypatch) -> None:
    corpus = tmp_path / "corpus.txt"  # one default-preset batch window of training text
    corpus.write_text(corpus_text * 3, encoding="utf-8")
    monkeypatch.setattr(cells, "CORPUS", corpus)
    row = {r["row"]: r for r in cells.plan(BASE, ["gru"])}["gru+penalty"]
    cmd = cells.command(row, "20s", tmp_path / "run")
    assert cmd[1:4] == ["-m", "charlm", "train"]
    result = CliRunner().invoke(app, [*cmd[3:], "--dry-run"])
    assert result.exit_code == 0, result.output
    config = json.loads(result.stdout)["config"]
    assert config["model"]["model"] == "gru"
    assert config["model"]["hidden_size"] == row["hidden_size"]
    assert config["data"]["val_frac"] == 0.1 and config["train"]["threads"] == 1
    assert config["train"]["max_time"] == 20.0 and config["train"]["seed"] == 1
    assert config["train"]["state_penalty"] == cells.PENALTY[1]
    assert config["train"]["state_penalty_kind"] == cells.PENALTY[0]


def test_summary_takes_the_best_evaluation_and_the_training_speed() -> None:
    metrics = [
        {"step": 10, "grad_norm": 1.0, "tokens_seen": 500, "tokens_per_s": 100.0},
        {"step": 20, "val_loss": 2.0, "val_bpc": 2.9, "tokens_seen": 1000, "tokens_per_s": 100.0},
        {"step": 40, "val_loss": 1.5, "val_bpc": 2.2, "tokens_seen": 2000, "tokens_per_s": 500.0},
        {"step": 50, "val_loss": 1.7, "val_bpc": 2.5, "tokens_seen": 2500, "tokens_per_s": 250.0},
    ]
    got = cells.summary(metrics)
    # 2,500 tokens in 10 s + 2 s + 2 s of training
    assert got == {"val_nats_per_char": 1.5, "val_bits_per_char": 2.2, "at_step": 40,
                   "steps": 50, "tokens_per_s": round(2500 / 14, 1)}  # fmt: skip
    assert "error" in cells.summary(metrics[:1])


class FakeTrain:
    """Stands in for `charlm train`: records which rows ran, returns made-up figures."""

    def __init__(self) -> None:
        self.ran: list[tuple[str, str]] = []

    def __call__(self, row: dict[str, Any], budget: str) -> dict[str, Any]:
        self.ran.append((row["row"], budget))
        return {"val_nats_per_char": 1.0 + len(self.ran) / 100, "tokens_per_s": 10.0}


def test_rows_are_kept_and_only_missing_ones_run(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(cells, "default_model", lambda vocab: BASE)
    fake = FakeTrain()
    monkeypatch.setenv("CHARLM_BENCH_CELLS", "esn,lstm")
    cells.run(results=tmp_path, runner=fake)
    assert sorted(fake.ran) == [("esn", "10m"), ("lstm", "10m"), ("lstm+penalty", "10m")]
    cells.run(results=tmp_path, runner=fake)
    assert len(fake.ran) == 3  # all held: nothing ran again
    monkeypatch.setenv("CHARLM_BENCH_CELLS", "gru")
    monkeypatch.setenv("CHARLM_BENCH_JOBS", "2")
    result = cells.run(results=tmp_path, runner=fake)
    assert sorted(fake.ran[3:]) == [("gru", "10m"), ("gru+penalty", "10m")]
    kept = json.loads((tmp_path / "cells.json").read_text())
    names = ["lstm", "lstm+penalty", "gru", "gru+penalty", "esn"]
    assert [r["row"] for r in kept["rows"]] == names == [r["row"] for r in result["rows"]]
    # --quick rows are kept apart: they never stand in for the 10-minute ones.
    cells.run(quick=True, results=tmp_path, runner=fake)
    assert fake.ran[5:] == [("gru", "5s")]  # --quick: without the penalty only
    kept = json.loads((tmp_path / "cells.json").read_text())
    assert len(kept["rows"]) == 5 and len(kept["quick_rows"]) == 1
    monkeypatch.setenv("CHARLM_BENCH_FRESH", "1")
    cells.run(results=tmp_path, runner=fake)
    assert len(fake.ran) == 8  # asked to: the held gru rows ran again


def test_an_unknown_model_name_is_refused(monkeypatch) -> None:
    monkeypatch.setenv("CHARLM_BENCH_CELLS", "lstm,transformer")
    with pytest.raises(ValueError, match="transformer"):
        cells.chosen_models()


def test_rows_can_be_picked_by_name(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(cells, "default_model", lambda vocab: BASE)
    fake = FakeTrain()
    monkeypatch.setenv("CHARLM_BENCH_CELLS", "gru,lstm")
    monkeypatch.setenv("CHARLM_BENCH_ROWS", "lstm,gru+penalty")
    cells.run(results=tmp_path, runner=fake)
    assert sorted(fake.ran) == [("gru+penalty", "10m"), ("lstm", "10m")]


def test_the_tdnn_row_has_the_ngram_of_its_order_beside_it(
    corpus_text: str, tmp_path: Path, monkeypatch
) -> None:
    from charlm.data.corpus import split_text
    from charlm.data.tokenizers import CharTokenizer
    from charlm.evaluation.baseline import score_ngram
    from charlm.evaluation.ngram import count_ngrams

    corpus = tmp_path / "corpus.txt"
    corpus.write_text(corpus_text)
    monkeypatch.setattr(cells, "CORPUS", corpus)
    monkeypatch.setattr(cells, "default_model", lambda vocab: BASE)
    monkeypatch.setenv("CHARLM_BENCH_CELLS", "tdnn")
    got = cells.run(results=tmp_path, runner=FakeTrain())["ngram_beside_tdnn"]
    assert got["order"] == BASE.window + 1
    assert json.loads((tmp_path / "cells.json").read_text())["ngram_beside_tdnn"] == got
    # The same figure along evaluate --baseline's path: fitted on the training split, the
    # held-out text scored as the RNN's is.
    train, _, val = split_text(corpus_text, 0.1, 0.0)
    tok = CharTokenizer.train(corpus_text)
    model = count_ngrams(tok.encode(train), tok.vocab_size, got["order"]).model(got["order"])
    want = score_ngram(model, tok, val)
    assert got["val_nats_per_char"] == pytest.approx(want.nats / want.chars, abs=2e-4)
