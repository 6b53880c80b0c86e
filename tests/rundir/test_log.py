"""metrics.jsonl's train_loss: the mean over the logging interval, not a running mean."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import charlm
from charlm.rundir.log import METRICS, Meter
from charlm.training.events import StepEvent


def test_take_loss_is_the_mean_since_the_last_take() -> None:
    meter = Meter()
    for loss in (4.0, 2.0):
        meter.add(10, loss)
    assert meter.take_loss() == 3.0
    meter.add(10, 1.0)
    meter.add(10, None)  # a skipped step counts tokens, not loss
    assert meter.take_loss() == 1.0
    assert meter.take_loss() is None
    assert meter.tokens == 40


def test_each_rows_train_loss_is_the_mean_of_its_own_steps(tmp_path: Path) -> None:
    corpus = tmp_path / "c.txt"
    corpus.write_text("To be, or not to be, that is the question.\n" * 80)
    events: list[object] = []
    run = charlm.train(
        corpus, out=tmp_path / "run", seed=1, on_event=events.append, hidden_size=16,
        embed_size=8, batch_size=4, bptt=16, max_steps=24, eval_every=40, sample_length=0,
        max_time="none",
    )  # fmt: skip
    losses = {e.step: e.loss for e in events if isinstance(e, StepEvent)}
    rows = [json.loads(line) for line in (run / METRICS).read_text().splitlines()]
    steps = [r for r in rows if "val_loss" not in r]
    assert [r["step"] for r in steps] == [4, 8, 12, 16, 20, 24]  # a tenth of --eval-every
    for row in steps:
        own = [losses[s] for s in range(row["step"] - 3, row["step"] + 1)]
        assert row["train_loss"] == pytest.approx(sum(own) / 4)
    assert all("train_loss" not in r for r in rows if "val_loss" in r)
