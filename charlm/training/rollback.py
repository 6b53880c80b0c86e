"""Non-finite losses: skip the update; after several in a row, roll back at half the rate."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch

from charlm.errors import TrainingError
from charlm.rundir.progress import TrainState

MAX_BAD_STEPS = 5  # consecutive non-finite steps before rolling back
MAX_ROLLBACKS = 8  # then the learning rate is 1/256 of its start: give up, say what to change


@dataclass
class Rollback:
    """The last good weights and optimizer state, and the count of bad steps since.

    The rate is halved through ``TrainState.lr_scale``, which the schedule reads and the
    checkpoint keeps; the target itself lives only in memory, so a resumed run takes the
    weights it resumes from as its first target.
    """

    lr: float  # the run's --lr, named in the advice when rolling back stops helping
    bad_steps: int = 0
    target: dict[str, Any] | None = None

    def remember(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
        """Take these weights as the target: after an improving evaluation."""
        self.target = {
            "model": {k: v.clone() for k, v in model.state_dict().items()},
            "optimizer": copy.deepcopy(optimizer.state_dict()),
        }

    def start(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
        """A target before any evaluation: the weights the run starts (or resumes) from."""
        if self.target is None:
            self.remember(model, optimizer)

    def good_step(self) -> None:
        self.bad_steps = 0

    def bad_step(
        self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, state: TrainState
    ) -> str:
        """Count a non-finite step; at MAX_BAD_STEPS in a row restore the target and halve
        the rate. Returns what to tell the user ('' when nothing was rolled back)."""
        self.bad_steps += 1
        if self.bad_steps < MAX_BAD_STEPS or self.target is None:
            return ""
        if state.lr_scale <= 0.5**MAX_ROLLBACKS:
            raise TrainingError(
                f"the loss stayed NaN or infinite after {MAX_ROLLBACKS} rollbacks: lower "
                f"--lr (now {self.lr:g}) or --grad-clip, or check the corpus"
            )
        model.load_state_dict(self.target["model"])
        optimizer.load_state_dict(self.target["optimizer"])
        state.lr_scale *= 0.5
        self.bad_steps = 0
        return (
            f"step {state.step + 1}: {MAX_BAD_STEPS} non-finite losses in a row: rolled "
            f"back to the last good weights, learning rate x{state.lr_scale:g}"
        )
