"""The state-change penalty: its arithmetic, that it trains, and that no score includes it."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from charlm.cli import app
from charlm.data.corpus import read_corpus
from charlm.evaluation.scoring import score_tokens
from charlm.training.setup import new_trainer
from charlm.training.state_penalty import state_penalty
from charlm.training.trainer import Trainer
from tests.helpers import MICRO_ARGS, micro_config

# One stream, three steps, two units: norms 5, 1, sqrt(2).
STATES = torch.tensor([[[3.0, 4.0], [0.0, 1.0], [1.0, 1.0]]])


def test_norm_penalty_by_hand() -> None:
    # ((1 - 5)^2 + (sqrt(2) - 1)^2) / 2, times beta 0.5
    expected = 0.5 * (16 + (math.sqrt(2) - 1) ** 2) / 2
    assert float(state_penalty(STATES, 0.5, "norm")) == pytest.approx(expected)


def test_diff_penalty_by_hand() -> None:
    # ||(-3, -3)||^2 = 18 and ||(1, 0)||^2 = 1, averaged, times beta 2
    assert float(state_penalty(STATES, 2.0, "diff")) == pytest.approx(2.0 * 19 / 2)


def test_penalty_averages_over_the_batch_and_ignores_a_one_step_window() -> None:
    two = torch.cat([STATES, torch.zeros_like(STATES)])  # the second stream never changes
    assert float(state_penalty(two, 1.0, "diff")) == pytest.approx(19 / 4)
    assert float(state_penalty(STATES[:, :1], 1.0, "norm")) == 0.0


def _trainer(corpus_file: Path, run_dir: Path, beta: float, kind: str = "norm") -> Trainer:
    config = micro_config(  # float32: the step's loss is compared with the model's own nll
        "gru", state_penalty=beta, state_penalty_kind=kind, reset_prob=0.0, amp="off"
    )
    config = replace(config, model=replace(config.model, dropout=0.0))
    trainer, _ = new_trainer(config, read_corpus(str(corpus_file)), run_dir, seed=4)
    return trainer


@pytest.mark.parametrize("kind", ["norm", "diff"])
def test_the_penalty_trains_but_the_reported_loss_and_scores_leave_it_out(
    corpus_file: Path, tmp_path: Path, kind: str
) -> None:
    plain = _trainer(corpus_file, tmp_path / "plain", 0.0)
    penalised = _trainer(corpus_file, tmp_path / "penalised", 5.0, kind)
    x, y = plain.batcher.window(0)
    with torch.no_grad():  # the same weights and batch: the data loss alone, by the model
        nll = penalised.model(x, penalised.model.init_hidden(x.size(0)), targets=y).nll
    loss_plain, _, _ = plain.train_step(x, y, total_steps=10)
    loss_penalised, _, _ = penalised.train_step(x, y, total_steps=10)
    assert loss_penalised == pytest.approx(float(nll.mean()), rel=1e-6)
    assert loss_plain == pytest.approx(loss_penalised, rel=1e-6)
    assert penalised._penalty > 0
    # The penalty's gradient moved the weights elsewhere.
    w_plain, w_pen = plain.model.rnn.weight_hh_l1, penalised.model.rnn.weight_hh_l1
    assert not torch.allclose(w_plain, w_pen)
    # Validation is the model's data loss alone.
    score = penalised._score_val()
    tc = penalised.config.train
    nats, count = score_tokens(
        penalised.model, penalised.splits.val, tc.eval_batch_size, tc.bptt, penalised.device
    )
    assert score.nats_per_token == pytest.approx(nats / count)


def test_the_penalty_is_logged_apart_and_kept_on_resume(corpus_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["train", str(corpus_file), "--out", str(out), *MICRO_ARGS]
    penalty = ["--state-penalty", "0.5", "--state-penalty-kind", "diff"]
    first = CliRunner().invoke(app, [*args, *penalty, "--max-steps", "6"])
    assert first.exit_code == 0, first.output
    again = CliRunner().invoke(
        app, ["train", "--resume", str(out), "--max-steps", "12", "--state-penalty", "2"]
    )
    assert again.exit_code == 0, again.output
    assert "--state-penalty ignored when resuming" in again.stderr
    train = json.loads((out / "config.json").read_text())["train"]
    assert (train["state_penalty"], train["state_penalty_kind"]) == (0.5, "diff")
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in rows if "grad_norm" in r]
    assert steps[-1]["step"] == 12 and all(r["state_penalty"] > 0 for r in steps)
    assert all("state_penalty" not in r for r in rows if "val_loss" in r)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--state-penalty-kind", "diff"], "needs --state-penalty BETA above 0"),
        (["--model", "jordan", "--dropout", "0.2", "--state-penalty", "0.1"], "needs --dropout 0"),
    ],
)
def test_a_penalty_setting_that_would_do_nothing_or_the_wrong_thing_is_one_line(
    corpus_file: Path, tmp_path: Path, args: list[str], words: str
) -> None:
    result = CliRunner().invoke(
        app, ["train", str(corpus_file), "--out", str(tmp_path / "run"), *args]
    )
    assert result.exit_code != 0 and words in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "run").exists()
