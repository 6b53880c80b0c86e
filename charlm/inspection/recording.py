"""One pass over a text, keeping what the network computed at every token.

For ``charlm inspect``: the hidden state h of every layer, an LSTM's cell c and every gate,
read from the recording stepper (``charlm.generation.stepping.make_stepper(record=True)``, so
the cells have one implementation), with the model's next-token distribution at each step reduced to
what the inspector shows (the probability of the actual next token and the top candidates).

The state starts at zero and is carried through the whole text, as ``charlm evaluate
--batch-size 1`` carries it: the first token is context, every later one is scored.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from charlm.generation.stepping import blas_threads, make_stepper
from charlm.models import registry
from charlm.models.lm import RNNLM, as_read

# Steps whose scores are reduced together: vectorised top-k without ever holding (T, V).
CHUNK = 1024


@dataclass
class Recording:
    """Per token t of a text: the network's state after reading token t and those before it
    in its reading direction (a backward model's "before" is to the right; the arrays are
    in reading order either way)."""

    kind: str  # the cell (--model)
    ids: np.ndarray  # (T,) token ids
    states: dict[str, np.ndarray]  # "h", "c" (LSTM) and each gate name -> (T, L, H) float32
    log2_prob: np.ndarray  # (T,) log2 p(token t | tokens read before it); NaN for the first read
    top_ids: np.ndarray  # (T, K) the model's K likeliest tokens at t, given those read before
    top_probs: np.ndarray  # (T, K) their probabilities; NaN at the first read (nothing yet)
    names: tuple[str, ...] = field(init=False)  # the keys of ``states`` in a fixed order

    def __post_init__(self) -> None:
        self.names = tuple(self.states)

    @property
    def layers(self) -> int:
        return self.states["h"].shape[1]

    @property
    def hidden(self) -> int:
        return self.states["h"].shape[2]

    def flipped(self) -> Recording:
        """The same recording with its steps in the opposite order."""
        return Recording(
            self.kind,
            _flip(self.ids),
            {name: _flip(a) for name, a in self.states.items()},
            _flip(self.log2_prob),
            _flip(self.top_ids),
            _flip(self.top_probs),
        )

    @property
    def surprisal(self) -> np.ndarray:
        """Bits per token, -log2 p; NaN for the first token read, which is never predicted."""
        return -self.log2_prob


def state_names(kind: str) -> tuple[str, ...]:
    """The recorded arrays of a cell, in the order the inspector lists them."""
    return registry.get(kind).recorded


@torch.inference_mode()
def record(model: RNNLM, ids: np.ndarray, top: int = 5) -> Recording:
    """Run ``ids`` (at least one token) through ``model`` one step at a time, keeping it all.

    A backward model (``--reverse``) reads them right to left; its recording comes back in
    reading order, each step's state then the one after reading tokens t..T-1, and the
    token with nothing read before it the last."""
    rec = _record(model, as_read(model, np.asarray(ids, dtype=np.int64)), top)
    return rec.flipped() if model.cfg.reverse else rec


def _flip(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a[::-1])


def _record(model: RNNLM, ids: np.ndarray, top: int) -> Recording:
    T = len(ids)
    if T == 0:
        raise ValueError("record needs at least one token")
    stepper = make_stepper(model, record=True)
    stepper.start(model.init_hidden(1, next(model.parameters()).device), 1)
    kind = model.cfg.model
    states = _allocate(kind, T, model.rnn.num_layers, model.rnn.hidden_size)
    k = min(top, model.embed.num_embeddings)
    log2_prob = np.full(T, np.nan)
    top_ids = np.zeros((T, k), np.int64)
    top_probs = np.full((T, k), np.nan)
    scores = np.empty((min(CHUNK, T), model.embed.num_embeddings), np.float32)  # (chunk, V)
    with blas_threads(1):
        for t in range(T):
            out = stepper.step(ids[t : t + 1])  # (1, V): the distribution of token t + 1
            scores[t % CHUNK] = out[0]
            stepper.write_states(states, t)
            if t % CHUNK == CHUNK - 1 or t == T - 1:
                start = t - t % CHUNK
                _reduce(scores[: t - start + 1], ids, start, log2_prob, top_ids, top_probs)
    return Recording(kind, ids, states, log2_prob, top_ids, top_probs)


def _allocate(kind: str, T: int, L: int, H: int) -> dict[str, np.ndarray]:
    return {name: np.empty((T, L, H), np.float32) for name in state_names(kind)}


def _reduce(
    scores: np.ndarray,
    ids: np.ndarray,
    start: int,
    log2_prob: np.ndarray,
    top_ids: np.ndarray,
    top_probs: np.ndarray,
) -> None:
    """Scores after steps start..start+n-1 predict tokens start+1..start+n: fill those rows."""
    n = len(scores)
    # Logits (NumPy path) or log-probabilities (torch path): normalise either way.
    s = scores.astype(np.float64)
    log_p = s - np.logaddexp.reduce(s, axis=1, keepdims=True)  # (n, V)
    k = top_ids.shape[1]
    best = np.argpartition(-log_p, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(log_p, best, axis=1), axis=1)
    best = np.take_along_axis(best, order, axis=1)
    rows = np.arange(start + 1, start + 1 + n)
    inside = rows < len(ids)  # the last step predicts a token past the text
    rows, log_p, best = rows[inside], log_p[inside], best[inside]
    top_ids[rows] = best
    top_probs[rows] = np.exp(np.take_along_axis(log_p, best, axis=1))
    log2_prob[rows] = log_p[np.arange(len(rows)), ids[rows]] / np.log(2)
