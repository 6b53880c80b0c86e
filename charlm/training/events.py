"""What a training run reports as it goes: plain dataclasses, no torch."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from charlm.rundir.progress import TrainState


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
