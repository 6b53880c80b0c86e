"""A run's saved progress: what, with the weights, optimizer and random state, resumes it."""

from __future__ import annotations

from dataclasses import dataclass


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
    plateau_cuts: int = 0  # evaluations that did not improve, under --schedule plateau
    corpus: str | list[str] = ""  # a file or '-'; or the sources joined (charlm.text.sources)
    corpus_sha256: str = ""
    world_size: int = 1  # data-parallel ranks; the checkpoint holds all their hidden state
    init_from: str = ""  # the checkpoint a fine-tuning run started from
    averaged_steps: int = 0  # steps in the running mean of the weights (--average-from)

    @property
    def epoch_number(self) -> int:
        """The epoch the last step belongs to, counted from 1 as the display and --epochs do.

        ``epoch`` counts finished epochs, so it is one behind during an epoch and right at its end.
        """
        return self.epoch if self.window == 0 and self.epoch > 0 else self.epoch + 1
