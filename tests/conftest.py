"""Shared fixtures: a tiny corpus, micro configs, a trained micro checkpoint."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from charlm.config.schema import DataConfig, ModelConfig, RunConfig, TrainConfig

# Tests share two cores with whatever else runs: one thread keeps them fast and repeatable.
torch.set_num_threads(1)
os.environ.setdefault("NO_COLOR", "1")
os.environ.setdefault("COLUMNS", "120")

SHARED = Path(__file__).resolve().parents[2] / "shared"
TINY_SHAKESPEARE = SHARED / "corpora" / "tinyshakespeare" / "input.txt"

VERSE = """First Citizen:
Before we proceed any further, hear me speak.

All:
Speak, speak.

First Citizen:
You are all resolved rather to die than to famish?

All:
Resolved. resolved.

First Citizen:
First, you know Caius Marcius is chief enemy to the people.
"""


@pytest.fixture
def corpus_text() -> str:
    return VERSE * 12


@pytest.fixture
def corpus_file(tmp_path: Path, corpus_text: str) -> Path:
    path = tmp_path / "verse.txt"
    path.write_text(corpus_text, encoding="utf-8")
    return path


def micro_config(model: str = "lstm", **train: object) -> RunConfig:
    """A model small enough to train for a few steps in well under a second."""
    t = {"batch_size": 4, "bptt": 16, "epochs": 1, "max_time": None, "eval_every": 10,
         "sample_length": 20, "warmup_steps": 2, "lr": 1e-2} | train  # fmt: skip
    return RunConfig(
        model=ModelConfig(model=model, embed_size=8, hidden_size=16, num_layers=2, dropout=0.1),
        data=DataConfig(val_frac=0.1),
        train=TrainConfig(**t),  # type: ignore[arg-type]
    )


MICRO_ARGS = [
    "--hidden-size", "16", "--embed-size", "8", "--layers", "1", "--batch-size", "4",
    "--bptt", "16", "--max-steps", "12", "--eval-every", "6", "--sample-length", "20",
    "--seed", "3", "--max-time", "none",
]  # fmt: skip


@pytest.fixture
def trained_run(tmp_path: Path, corpus_file: Path) -> Path:
    """A run directory holding a micro model trained for a few steps (best + latest)."""
    from typer.testing import CliRunner

    from charlm.cli import app

    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["train", str(corpus_file), "--out", str(out), *MICRO_ARGS])
    assert result.exit_code == 0, result.output
    return out


def straight_and_resumed(make, tmp_path: Path):  # type: ignore[no-untyped-def]
    """A run made by ``make(run_dir)`` trained straight through in ``tmp_path/a``, and the same
    run stopped a few steps into its second half in ``tmp_path/b``, then resumed to the end.

    Returns (straight, resumed, a's and b's latest weights): an exact resume makes them equal.
    """
    from charlm.rundir import checkpoint as ckpt_io
    from charlm.training.setup import resume_trainer

    straight = make(tmp_path / "a")
    total = straight.total_steps()
    straight.run()
    stopped = make(tmp_path / "b")

    def stop_midway(e: object) -> None:
        if getattr(e, "step", None) == total // 2 + 3:
            stopped.stop_requested = True

    assert stopped.run(stop_midway).reason == "interrupted"
    resumed, _ = resume_trainer(tmp_path / "b")
    assert resumed.run().reason == "epochs"
    weights = [ckpt_io.load(tmp_path / run / ckpt_io.LATEST).model for run in ("a", "b")]
    return straight, resumed, weights[0], weights[1]
