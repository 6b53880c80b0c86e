"""What test modules share: micro models and runs (here), sample texts, and helpers by topic.

Test modules import from this package, never from one another or from conftest.py, which
holds only fixtures.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from charlm.config.schema import DataConfig, ModelConfig, RunConfig, TrainConfig

if TYPE_CHECKING:
    from charlm.training.trainer import Trainer

Weights = dict[str, torch.Tensor]


def micro_config(model: str = "lstm", **train: object) -> RunConfig:
    """A model small enough to train for a few steps in well under a second."""
    t = {"batch_size": 4, "bptt": 16, "epochs": 1, "max_time": None, "eval_every": 10,
         "sample_length": 20, "warmup_steps": 2, "lr": 1e-2} | train  # fmt: skip
    return RunConfig(
        model=ModelConfig(model=model, embed_size=8, hidden_size=16, num_layers=2, dropout=0.1),
        data=DataConfig(val_frac=0.1),
        train=TrainConfig(**t),  # type: ignore[arg-type]
    )


# `charlm train` options for the same kind of micro run, from the command line.
MICRO_ARGS = [
    "--hidden-size", "16", "--embed-size", "8", "--layers", "1", "--batch-size", "4",
    "--bptt", "16", "--max-steps", "12", "--eval-every", "6", "--sample-length", "20",
    "--seed", "3", "--max-time", "none",
]  # fmt: skip


def straight_and_resumed(
    make: Callable[[Path], Trainer], tmp_path: Path
) -> tuple[Trainer, Trainer, Weights, Weights]:
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
