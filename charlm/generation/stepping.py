"""Stepping a model one token at a time: the stepper protocol, priming, choosing a stepper.

A stepper takes a batch of token ids (B,) and returns scores (B, V) whose softmax is the
model's next-token distribution (logits, or log-probabilities for the torch path). Made
with ``record=True``, it also returns after each step what the recurrent layers computed
(h, the LSTM cell c, the gates), always from ``charlm.generation.numpy_cells.NumpyCells``: the one
implementation of the cells' internals, whichever stepper drives the output layer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Protocol

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from charlm.generation.numpy_cells import (
    NumpyCells,
    NumpyNetworkStepper,
    NumpyStepper,
    StepStates,
    supports_cells,
    supports_fast_path,
    supports_network_path,
)
from charlm.models.lm import RNNLM, Hidden, hidden_arrays, hidden_from_tensors


class Stepper(Protocol):
    def start(self, hidden: Hidden, batch: int) -> None:
        """Begin ``batch`` streams from one (num_layers, 1, H) state, copied to each."""
        ...

    def step(self, ids: np.ndarray) -> np.ndarray:
        """Feed one token per stream (B,); return next-token scores (B, V)."""
        ...

    def states(self) -> StepStates:
        """Per layer h, c and gates after the last step; only for ``record=True``."""
        ...

    def write_states(self, out: dict[str, np.ndarray], row: int) -> None:
        """Stream 0's ``states()`` written into ``out[name][row]`` (L, H), without copies."""
        ...


@contextmanager
def blas_threads(n: int) -> Iterator[None]:
    """Limit NumPy's BLAS to ``n`` threads for a while.

    A one-row matrix product is memory-bound: a second BLAS thread only adds hand-off cost,
    and on a busy 2-core machine it measured 5-10x slower than one thread.
    """
    with threadpool_limits(limits=n, user_api="blas"):
        yield


ChunkCallback = Callable[[int, torch.Tensor], None]


@torch.inference_mode()
def run_prime(
    model: RNNLM,
    ids: np.ndarray | Sequence[int],
    on_chunk: ChunkCallback | None = None,
    chunk: int = 4096,
) -> tuple[np.ndarray, Hidden]:
    """Run ``ids`` (at least one) through the model: last log-probabilities (V,) and state.

    Batched over time in chunks (so a long prime costs little and never holds a (T, V)
    array); ``on_chunk(start, log_probs)`` sees each chunk's (t, V) log-probabilities.
    """
    if len(ids) == 0:
        raise ValueError("run_prime needs at least one token")
    model.eval()
    device = next(model.parameters()).device
    ids = torch.as_tensor(np.asarray(ids, dtype=np.int64), device=device)
    hidden: Hidden | None = None
    for start in range(0, len(ids), chunk):
        out = model(ids[None, start : start + chunk], hidden)
        log_probs, hidden = out.log_probs[0].cpu(), out.hidden
        if on_chunk is not None:
            on_chunk(start, log_probs)
    return log_probs[-1].numpy(), hidden  # type: ignore[return-value]


class TorchStepper:
    """The general path: the model itself, one step per call.

    Recording, the layers step through ``NumpyCells`` instead (so their gates can be read)
    and the model's own output layer, e.g. an adaptive softmax, gives the scores.
    """

    def __init__(self, model: RNNLM, record: bool = False) -> None:
        if record and not supports_cells(model):
            raise ValueError(
                "the NumPy steps that record states do not reproduce this model's layers"
            )
        self.model = model.eval()
        self.device = next(model.parameters()).device
        self.hidden: Hidden | None = None
        self.cells = NumpyCells(model, record=True) if record else None

    def start(self, hidden: Hidden, batch: int) -> None:
        if self.cells is not None:
            self.cells.start(hidden, batch)
            return
        self.hidden = hidden_from_tensors(
            [torch.from_numpy(h).to(self.device) for h in hidden_arrays(hidden, batch)]
        )

    @torch.inference_mode()
    def step(self, ids: np.ndarray) -> np.ndarray:
        if self.cells is not None:
            h = torch.from_numpy(self.cells.advance(ids)).to(self.device)  # (B, H)
            return self.model.log_probs_from(h[:, None])[:, -1].cpu().numpy()
        x = torch.as_tensor(ids, dtype=torch.long, device=self.device)[:, None]
        out = self.model(x, self.hidden)
        self.hidden = out.hidden
        return out.log_probs[:, -1].cpu().numpy()

    def states(self) -> StepStates:
        if self.cells is None:
            raise ValueError("states are kept only by a stepper made with record=True")
        return self.cells.states()

    def write_states(self, out: dict[str, np.ndarray], row: int) -> None:
        if self.cells is None:
            raise ValueError("states are kept only by a stepper made with record=True")
        self.cells.write_states(out, row)


def make_stepper(model: RNNLM, fast: bool = True, record: bool = False) -> Stepper:
    """The NumPy path when it applies and reproduces the model; otherwise the torch path.

    ``record=True`` keeps each step's states and gates for ``Stepper.states``.
    """
    if fast and supports_fast_path(model):
        stepper = NumpyStepper(model, record)
        if _agrees(stepper, model):
            return stepper
    if (fast or record) and supports_network_path(model):  # its one implementation of states
        network = NumpyNetworkStepper(model, record)
        if _agrees(network, model):
            return network
    torch_stepper = TorchStepper(model, record)
    if record and not _agrees(torch_stepper, model):
        # Recording steps the layers through NumpyCells, which would not be this model.
        raise ValueError("cannot record states: the model's forward pass is not the cells'")
    return torch_stepper


def _agrees(stepper: Stepper, model: RNNLM, steps: int = 4) -> bool:
    """Guard against a model change the fast path does not know about: compare a few steps."""
    ids = np.arange(steps + 1) % model.embed.num_embeddings
    rows: list[torch.Tensor] = []
    run_prime(model, ids, on_chunk=lambda _, lp: rows.append(lp))
    log_probs = torch.cat(rows).numpy()
    stepper.start(model.init_hidden(1, next(model.parameters()).device), 1)
    for t in range(steps + 1):
        logits = stepper.step(ids[t : t + 1]).astype(np.float64)
        mine = logits - np.logaddexp.reduce(logits, axis=-1, keepdims=True)
        if not np.allclose(mine[0], log_probs[t], atol=1e-3):
            return False
    return True
