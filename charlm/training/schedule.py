"""The learning-rate schedule: warm-up, then cosine, constant or plateau cuts."""

from __future__ import annotations

import math
from dataclasses import dataclass

from charlm.config.schema import PLATEAU_FACTOR, TrainConfig
from charlm.rundir.progress import TrainState


@dataclass(frozen=True)
class Schedule:
    """The rate of each step, from the run's settings and its saved progress.

    It keeps nothing of its own: a rollback's ``lr_scale`` and the plateau cuts live in the
    TrainState, so a resumed run goes on at the rate it stopped at.
    """

    train: TrainConfig

    def rate(self, state: TrainState, progress: float) -> float:
        """Linear warm-up, then cosine decay to lr * min_lr_frac at the end of the run.

        ``progress`` (0..1) is the share of whichever bound comes first, so a --max-time
        run is annealed properly when its time runs out; only cosine reads it.
        """
        tc = self.train
        base = tc.lr * state.lr_scale
        warm = min(1.0, (state.step + 1) / tc.warmup_steps) if tc.warmup_steps else 1.0
        if tc.schedule == "constant":
            return base * warm
        if tc.schedule == "plateau":
            return warm * max(base * tc.min_lr_frac, base / PLATEAU_FACTOR**state.plateau_cuts)
        floor = base * tc.min_lr_frac
        cos = 0.5 * (1.0 + math.cos(math.pi * progress))
        return warm * (floor + (base - floor) * cos)

    def stalled(self, state: TrainState) -> str:
        """Under --schedule plateau, a validation score that did not improve cuts the rate.

        Counts the cut in ``state`` and returns what to tell the user ('' when the rate did
        not change). Every rank sees the same (summed) score, so the ranks cut together.
        """
        if self.train.schedule != "plateau":
            return ""
        before = self.rate(state, 0.0)
        state.plateau_cuts += 1
        after = self.rate(state, 0.0)
        if after >= before:  # already at the floor
            return ""
        return (
            f"step {state.step}: validation did not improve; learning rate "
            f"{before:.3g} -> {after:.3g} (--schedule plateau)"
        )
