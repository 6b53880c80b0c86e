"""Stepping a model one token at a time, fast: the engine behind sampling.

Calling ``nn.LSTM`` on one step costs 0.4 to 2 ms on a CPU (more with two threads or a busy
host), nearly all of it per-call overhead.
``NumpyStepper`` does the same arithmetic with preallocated NumPy buffers: layer 0's input
projection becomes a table lookup (embedding @ W_ih0 + biases, one row per token), and each
upper layer multiplies one matrix by the concatenated [input, hidden] vector. It applies
only to a plain ``nn.Linear`` decoder over ``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN`` layers, and
checks itself against the model before it is used; ``TorchStepper`` covers anything else
(e.g. an adaptive softmax) through ``RNNLM.log_probs``.

Both take a batch of token ids (B,) and return scores (B, V) whose softmax is the model's
next-token distribution (logits, or log-probabilities for the torch path).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Protocol

import numpy as np
import torch
from threadpoolctl import threadpool_limits
from torch import nn

from charlm.model import RNNLM, Hidden, hidden_from_tensors, hidden_tensors

F32 = np.float32


class Stepper(Protocol):
    def start(self, hidden: Hidden, batch: int) -> None:
        """Begin ``batch`` streams from one (num_layers, 1, H) state, copied to each."""
        ...

    def step(self, ids: np.ndarray) -> np.ndarray:
        """Feed one token per stream (B,); return next-token scores (B, V)."""
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
        log_probs, hidden = model.log_probs(ids[None, start : start + chunk], hidden)
        log_probs = log_probs[0].float().cpu()
        if on_chunk is not None:
            on_chunk(start, log_probs)
    return log_probs[-1].numpy(), hidden  # type: ignore[return-value]


def _repeat(hidden: Hidden, batch: int) -> list[np.ndarray]:
    tensors = hidden_tensors(hidden)
    return [np.ascontiguousarray(h[:, :1].float().cpu().numpy().repeat(batch, 1)) for h in tensors]


class TorchStepper:
    """The general path: the model itself, one step per call."""

    def __init__(self, model: RNNLM) -> None:
        self.model = model.eval()
        self.device = next(model.parameters()).device
        self.hidden: Hidden | None = None

    def start(self, hidden: Hidden, batch: int) -> None:
        self.hidden = hidden_from_tensors(
            [torch.from_numpy(h).to(self.device) for h in _repeat(hidden, batch)]
        )

    @torch.inference_mode()
    def step(self, ids: np.ndarray) -> np.ndarray:
        x = torch.as_tensor(ids, dtype=torch.long, device=self.device)[:, None]
        log_probs, self.hidden = self.model.log_probs(x, self.hidden)
        return log_probs[:, -1].float().cpu().numpy()


class NumpyStepper:
    """The exact fast path for LSTM, GRU and tanh/ReLU RNN layers with a linear decoder.

    State per layer l lives in ``xh[l]`` = [input | hidden] (B, I + H), so an upper layer's
    gates are one matrix product; each layer writes its new hidden state straight into its
    own slot and into the next layer's input slot.
    """

    def __init__(self, model: RNNLM) -> None:
        rnn = model.rnn
        self.kind = {nn.LSTM: "lstm", nn.GRU: "gru", nn.RNN: "rnn"}[type(rnn)]
        self.relu = self.kind == "rnn" and rnn.nonlinearity == "relu"
        self.L, self.H = rnn.num_layers, rnn.hidden_size
        p = {k: v.detach().double().cpu().numpy() for k, v in rnn.named_parameters()}
        emb = model.embed.weight.detach().double().cpu().numpy()
        self.W: list[np.ndarray] = []  # (I + H, G) per layer; layer 0: (H, G)
        self.b: list[np.ndarray] = []  # (G,) bias added after the product
        for layer in range(self.L):
            w_ih, w_hh = p[f"weight_ih_l{layer}"], p[f"weight_hh_l{layer}"]
            b_ih, b_hh = p[f"bias_ih_l{layer}"], p[f"bias_hh_l{layer}"]
            w, b = self._prepare(w_ih, w_hh, b_ih, b_hh)
            if layer == 0:
                # The input part of layer 0 depends only on the token: tabulate it.
                self.table = (emb @ w[: w_ih.shape[1]] + b).astype(F32)
                w, b = w[w_ih.shape[1] :], np.zeros_like(b)
            self.W.append(np.ascontiguousarray(w, dtype=F32))
            self.b.append(b.astype(F32))
        self.W_dec = np.ascontiguousarray(model.decoder.weight.detach().cpu().numpy().T, F32)
        self.b_dec = model.decoder.bias.detach().cpu().numpy().astype(F32)
        self.batch = 0

    def _prepare(
        self, w_ih: np.ndarray, w_hh: np.ndarray, b_ih: np.ndarray, b_hh: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Stack [W_ih; W_hh]^T into one (I + H, G) matrix with the biases folded in."""
        H = self.H
        if self.kind == "gru":
            # n = tanh(W_in x + b_in + r * (W_hn h + b_hn)): the h part of n stays apart,
            # so the product has 4H columns: r, z (summed), n from x, n from h.
            n_in = w_ih.shape[1]
            w = np.zeros((n_in + H, 4 * H))
            w[:n_in, : 3 * H] = w_ih.T
            w[n_in:, : 2 * H] = w_hh[: 2 * H].T
            w[n_in:, 3 * H :] = w_hh[2 * H :].T
            b = np.concatenate([b_ih[: 2 * H] + b_hh[: 2 * H], b_ih[2 * H :], b_hh[2 * H :]])
            return w, b
        w, b = np.concatenate([w_ih.T, w_hh.T]), b_ih + b_hh
        if self.kind == "lstm":
            # Gates (i, f, g, o) reordered to (i, f, o, g), and the sigmoid gates halved:
            # sigmoid(x) = (tanh(x / 2) + 1) / 2, so one tanh covers all four gates.
            # Halving is exact in binary floating point.
            order = np.r_[0 : 2 * H, 3 * H : 4 * H, 2 * H : 3 * H]
            scale = np.r_[np.full(3 * H, 0.5), np.ones(H)]
            w, b = w[:, order] * scale, b[order] * scale
        return w, b

    def start(self, hidden: Hidden, batch: int) -> None:
        L, H, B = self.L, self.H, batch
        states = _repeat(hidden, batch)
        self.batch = B
        self.xh = [np.zeros((B, (0 if k == 0 else H) + H), F32) for k in range(L)]
        for k in range(L):
            self.xh[k][:, -H:] = states[0][k]
            if k > 0:
                self.xh[k][:, :H] = states[0][k - 1]
        self.c = [states[1][k].copy() for k in range(L)] if self.kind == "lstm" else []
        G = self.W[0].shape[1]
        self.g, self.tmp = np.empty((B, G), F32), np.empty((B, G), F32)
        self.t = np.empty((B, H), F32)
        self.logits = np.empty((B, self.W_dec.shape[1]), F32)

    def step(self, ids: np.ndarray) -> np.ndarray:
        g, H = self.g, self.H
        np.take(self.table, ids, axis=0, out=g)
        np.dot(self.xh[0], self.W[0], out=self.tmp)
        np.add(g, self.tmp, out=g)
        for k in range(self.L):
            if k > 0:
                np.dot(self.xh[k], self.W[k], out=g)
                np.add(g, self.b[k], out=g)
            h_out = self.xh[k][:, -H:]
            self._cell(k, g, h_out)
            if k + 1 < self.L:
                self.xh[k + 1][:, :H] = h_out
        np.dot(self.xh[-1][:, -H:], self.W_dec, out=self.logits)
        np.add(self.logits, self.b_dec, out=self.logits)
        return self.logits

    def _cell(self, layer: int, g: np.ndarray, h: np.ndarray) -> None:
        """Gate pre-activations ``g`` -> new hidden state written into ``h`` (in place)."""
        H, t = self.H, self.t
        if self.kind == "lstm":
            np.tanh(g, out=g)
            s = g[:, : 3 * H]  # i, f, o as tanh(x / 2): make them sigmoids
            np.multiply(s, 0.5, out=s)
            np.add(s, 0.5, out=s)
            c = self.c[layer]
            np.multiply(c, g[:, H : 2 * H], out=c)
            np.multiply(g[:, :H], g[:, 3 * H :], out=t)
            np.add(c, t, out=c)
            np.tanh(c, out=t)
            np.multiply(g[:, 2 * H : 3 * H], t, out=h)
        elif self.kind == "gru":
            rz = g[:, : 2 * H]
            np.negative(rz, out=rz)
            np.exp(rz, out=rz)
            np.add(rz, 1.0, out=rz)
            np.reciprocal(rz, out=rz)  # sigmoid
            n = g[:, 2 * H : 3 * H]
            np.multiply(g[:, :H], g[:, 3 * H :], out=t)  # r * (W_hn h + b_hn)
            np.add(n, t, out=n)
            np.tanh(n, out=n)
            # h' = (1 - z) * n + z * h = n + z * (h - n)
            np.subtract(h, n, out=t)
            np.multiply(t, g[:, H : 2 * H], out=t)
            np.add(n, t, out=h)
        elif self.relu:
            np.maximum(g, 0.0, out=h)
        else:
            np.tanh(g, out=h)


def supports_fast_path(model: nn.Module) -> bool:
    """A plain linear decoder over a stack of unidirectional LSTM/GRU/RNN layers."""
    rnn, decoder = getattr(model, "rnn", None), getattr(model, "decoder", None)
    return (
        type(rnn) in (nn.LSTM, nn.GRU, nn.RNN)
        and type(decoder) is nn.Linear
        and decoder.bias is not None
        and type(getattr(model, "embed", None)) is nn.Embedding
        and rnn.bias
        and not rnn.bidirectional
        and getattr(rnn, "proj_size", 0) == 0
    )


def make_stepper(model: RNNLM, fast: bool = True) -> Stepper:
    """The NumPy path when it applies and reproduces the model; otherwise the torch path."""
    if fast and supports_fast_path(model):
        stepper = NumpyStepper(model)
        if _agrees(stepper, model):
            return stepper
    return TorchStepper(model)


def _agrees(stepper: NumpyStepper, model: RNNLM, steps: int = 4) -> bool:
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
