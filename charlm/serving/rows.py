"""The model state of every open stream, one row each: rows join and leave between steps.

A stepper (``charlm.generation.stepping``) starts a batch from one state copied to every
row, which is what `sample --num-samples` needs. A server's streams each bring their own
state (their own prompt) and leave at their own time, so ``RowBatch`` keeps the rows and
reloads the stepper's buffers whenever the set of rows changes; between changes it steps as
fast as the stepper does.
"""

from __future__ import annotations

import numpy as np
import torch

from charlm.generation.numpy_cells import NumpyStepper
from charlm.generation.stepping import TorchStepper, make_stepper
from charlm.models.lm import RNNLM, Hidden, hidden_arrays, hidden_from_tensors, hidden_tensors

# A row's state as ``hidden_arrays`` lays it out: per state (h, then an LSTM's c) (L, B, X).
States = list[np.ndarray]


class RowBatch:
    """Rows of model state stepped together; ``step`` returns next-token scores (B, V).

    The NumPy fast path when the model has one, else the model itself (``TorchStepper``):
    both hold their state in arrays this class can read and write row by row.
    """

    def __init__(self, model: RNNLM) -> None:
        stepper = make_stepper(model)
        # A cell stepped through its decoder keeps its state inside its own NumPy network;
        # the torch step reproduces it with a state this class can move.
        self.stepper = stepper if isinstance(stepper, NumpyStepper) else TorchStepper(model)
        self.size = 0  # rows held

    def add(self, hidden: Hidden, copies: int) -> None:
        """Append ``copies`` rows, each starting from ``hidden`` (one stream's state)."""
        new = hidden_arrays(hidden, copies)
        self._load(self._joined(new) if self.size else new)

    def keep(self, rows: np.ndarray) -> None:
        """Keep only the rows at these indices (in this order)."""
        if len(rows) == 0:
            self.size = 0
            return
        self._load([s[:, rows] for s in self._saved()])

    def step(self, ids: np.ndarray) -> np.ndarray:
        """Feed one token per row (B,); the scores (B, V), a buffer the next call reuses."""
        return self.stepper.step(ids)

    def _joined(self, new: States) -> States:
        return [
            np.concatenate([old, add], axis=1) for old, add in zip(self._saved(), new, strict=True)
        ]

    def _saved(self) -> States:
        """Every row's current state, copied out of the stepper."""
        s = self.stepper
        if isinstance(s, NumpyStepper):
            cells, H = s.cells, s.cells.H
            h = np.stack([xh[:, -H:] for xh in cells.xh])
            return [h, np.stack(cells.c)] if cells.c else [h]
        return [t.numpy().copy() for t in hidden_tensors(s.hidden)]

    def _load(self, states: States) -> None:
        """Make the stepper hold exactly these rows (its buffers sized for them)."""
        s, B = self.stepper, states[0].shape[1]
        self.size = B
        tensors = [torch.from_numpy(np.ascontiguousarray(x)) for x in states]
        if not isinstance(s, NumpyStepper):
            s.hidden = hidden_from_tensors(tensors)
            return
        # start() sizes every buffer for B rows from row 0; then each row gets its own state,
        # laid out as NumpyCells keeps it: layer k's [input | hidden], the input being layer
        # k - 1's hidden.
        s.start(hidden_from_tensors([t[:, :1] for t in tensors]), B)
        cells, H = s.cells, s.cells.H
        for k, xh in enumerate(cells.xh):
            xh[:, -H:] = states[0][k]
            if k > 0:
                xh[:, :H] = states[0][k - 1]
        for k, c in enumerate(cells.c):
            c[...] = states[1][k]
