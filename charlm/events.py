"""What a training run reports, and the progress it saves: plain dataclasses, no torch."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class TrainState:
    """Progress that, with weights, optimizer, hidden and random state, makes a run resumable."""

    seed: int
    step: int = 0
    epoch: int = 0
    window: int = 0  # next window of the current epoch
    tokens_seen: int = 0
    elapsed: float = 0.0  # seconds of training so far, across resumes
    best_val: float | None = None
    evals_since_best: int = 0
    lr_scale: float = 1.0  # lowered after a rollback from non-finite losses
    corpus: str = ""
    corpus_sha256: str = ""
    world_size: int = 1  # data-parallel ranks; the checkpoint holds all their hidden state


@dataclass
class StepEvent:
    step: int
    epoch: int
    loss: float
    lr: float
    grad_norm: float
    tokens_seen: int
    tokens_per_s: float
    progress: float  # 0..1 of the run's bound (steps, epochs or time)
    elapsed: float


@dataclass
class EvalEvent:
    step: int
    val_loss: float  # nats per token
    val_bpc: float
    best_val: float
    improved: bool
    sample: str


@dataclass
class InfoEvent:
    message: str


@dataclass
class FinishEvent:
    reason: str  # epochs, max_steps, max_time, patience, interrupted
    state: TrainState
    run_dir: Path


Callback = Callable[[Any], None]


def ignore(event: Any) -> None:
    """The callback that reports nothing: the default, and ranks other than 0."""
