"""When a run stops: --max-steps, --epochs, --max-time, --patience, or an interrupt."""

from __future__ import annotations

from dataclasses import dataclass

from charlm.config.schema import TrainConfig
from charlm.rundir.progress import TrainState


@dataclass(frozen=True)
class StopRules:
    """The run's bounds, judged against its saved progress; the reasons are FinishEvent's."""

    train: TrainConfig

    def finished(self, state: TrainState) -> str:
        """Why the run has nothing left to do under its bounds ('' while it has)."""
        if self.steps_done(state):
            return "max_steps"
        if self.epochs_done(state):
            return "epochs"
        if self.late(state):
            return "max_time"
        if self.out_of_patience(state):
            return "patience"
        return ""

    def after_step(self, state: TrainState, interrupted: bool, late: bool) -> str:
        """Why to stop after this step ('' to go on). ``interrupted`` and ``late`` come in
        agreed over the ranks, so every rank stops at the same step."""
        if interrupted:
            return "interrupted"
        if self.steps_done(state):
            return "max_steps"
        return "max_time" if late else ""

    def steps_done(self, state: TrainState) -> bool:
        return bool(self.train.max_steps and state.step >= self.train.max_steps)

    def epochs_done(self, state: TrainState) -> bool:
        return state.epoch >= self.train.epochs

    def late(self, state: TrainState) -> bool:
        return bool(self.train.max_time and state.elapsed >= self.train.max_time)

    def out_of_patience(self, state: TrainState) -> bool:
        patience = self.train.patience
        return patience is not None and state.evals_since_best >= patience

    def total_steps(self, steps_per_epoch: int) -> int:
        """The steps the schedule plans for: the epochs, or --max-steps if fewer."""
        steps = self.train.epochs * steps_per_epoch
        return min(steps, self.train.max_steps) if self.train.max_steps else steps

    def progress(self, state: TrainState, total_steps: int) -> float:
        """The share of the run done (0..1): of its steps, or of its time if further on."""
        p = state.step / total_steps
        if self.train.max_time:
            p = max(p, state.elapsed / self.train.max_time)
        return min(p, 1.0)
