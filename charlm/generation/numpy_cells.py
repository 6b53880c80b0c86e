"""The NumPy fast path: the recurrent layers stepped with preallocated buffers.

Calling ``nn.LSTM`` on one step costs 0.4 to 2 ms on a CPU (more with two threads or a busy
host), nearly all of it per-call overhead. ``NumpyCells`` does the layers' arithmetic with
preallocated NumPy buffers: layer 0's input projection becomes a table lookup
(embedding @ W_ih0 + biases, one row per token), and each upper layer multiplies one matrix
by the concatenated [input, hidden] vector; each cell's own step (``CellSpec.numpy_layers``,
plain NumPy in its module) turns the product into the new state. ``NumpyStepper`` adds a
plain ``nn.Linear`` decoder on top; a cell that steps through the decoder brings its whole
step (``CellSpec.numpy_network``), which ``NumpyNetworkStepper`` drives.
``charlm.generation.stepping`` checks either against the model before use and falls back to
the torch step for anything else.

It is also the one place the cells' internals are computed: with ``record=True`` it keeps
each layer's gate activations, which ``states()`` returns with h and c after every step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from torch import nn

from charlm.models import registry
from charlm.models.lm import RNNLM, Hidden, hidden_arrays

F32 = np.float32


@dataclass
class StepStates:
    """What the recurrent layers computed on the last step: per layer, (B, H) float32 copies."""

    kind: str  # the cell (--model)
    h: list[np.ndarray]  # hidden state of each layer
    c: list[np.ndarray]  # the cell state of each layer, for cells with one; else empty
    gates: dict[str, list[np.ndarray]]  # gate name (CellSpec.gates) -> one array per layer


def supports_cells(model: nn.Module) -> bool:
    """An embedding under a stack of unidirectional layers with biases whose cell has a
    NumPy step."""
    rnn = getattr(model, "rnn", None)
    cfg = getattr(model, "cfg", None)
    return (
        cfg is not None
        and registry.get(cfg.model).numpy_layers is not None
        and type(getattr(model, "embed", None)) is nn.Embedding
        and getattr(rnn, "bias", True)
        and not getattr(rnn, "bidirectional", False)
        and getattr(rnn, "proj_size", 0) == 0
    )


def _plain_decoder(model: nn.Module) -> bool:
    decoder = getattr(model, "decoder", None)
    return type(decoder) is nn.Linear and decoder.bias is not None


def supports_fast_path(model: nn.Module) -> bool:
    """The cells above under a plain linear decoder."""
    return supports_cells(model) and _plain_decoder(model)


def supports_network_path(model: nn.Module) -> bool:
    """A cell stepped through the decoder, with a NumPy step, between an embedding and a
    plain linear decoder."""
    cfg = getattr(model, "cfg", None)
    return (
        cfg is not None
        and registry.get(cfg.model).numpy_network is not None
        and type(getattr(model, "embed", None)) is nn.Embedding
        and _plain_decoder(model)
    )


class NumpyCells:
    """The recurrent layers of a model whose cell has a NumPy step, one step per call.

    State per layer l lives in ``xh[l]`` = [input | hidden] (B, I + H), so an upper layer's
    gates are one matrix product; each layer writes its new hidden state straight into its
    own slot and into the next layer's input slot.
    """

    def __init__(self, model: RNNLM, record: bool = False) -> None:
        rnn = model.rnn
        self.spec = registry.get(model.cfg.model)
        layers = self.spec.numpy_layers
        if layers is None:
            raise ValueError(f"--model {self.spec.name} has no NumPy step of its layers")
        self.step_layer = layers.step
        self.record = record
        self.L, self.H = rnn.num_layers, rnn.hidden_size
        emb = model.embed.weight.detach().double().cpu().numpy()
        self.W: list[np.ndarray] = []  # (I + H, G) per layer; layer 0: (H, G)
        self.b: list[np.ndarray] = []  # (G,) bias added after the product
        self.extra: list[object] = []  # what else each layer's step reads (peepholes, ...)
        for layer in range(self.L):
            w, b, extra = layers.prepare(rnn, layer)
            if layer == 0:
                # The input part of layer 0 depends only on the token: tabulate it.
                n_in = w.shape[0] - self.H
                self.table = (emb @ w[:n_in] + b).astype(F32)
                w, b = w[n_in:], np.zeros_like(b)
            self.W.append(np.ascontiguousarray(w, dtype=F32))
            self.b.append(b.astype(F32))
            self.extra.append(extra)

    def start(self, hidden: Hidden, batch: int) -> None:
        """Begin ``batch`` streams from one (num_layers, 1, H) state, copied to each."""
        L, H, B = self.L, self.H, batch
        states = hidden_arrays(hidden, batch)
        self.xh = [np.zeros((B, (0 if k == 0 else H) + H), F32) for k in range(L)]
        for k in range(L):
            self.xh[k][:, -H:] = states[0][k]
            if k > 0:
                self.xh[k][:, :H] = states[0][k - 1]
        self.c = [states[1][k].copy() for k in range(L)] if "c" in self.spec.states else []
        G = self.W[0].shape[1]
        self.g, self.tmp = np.empty((B, G), F32), np.empty((B, G), F32)
        self.t = np.empty((B, H), F32)
        # Each layer's gates, kept when recording: the gate buffer is reused by every layer.
        self.kept = [np.zeros((B, G), F32) for _ in range(L)] if self.record else []

    def advance(self, ids: np.ndarray) -> np.ndarray:
        """Feed one token per stream (B,); return the top layer's new hidden state (B, H).

        The returned array is a view of the state buffer: read it before the next call.
        """
        g, H = self.g, self.H
        np.take(self.table, ids, axis=0, out=g)
        np.dot(self.xh[0], self.W[0], out=self.tmp)
        np.add(g, self.tmp, out=g)
        for k in range(self.L):
            if k > 0:
                np.dot(self.xh[k], self.W[k], out=g)
                np.add(g, self.b[k], out=g)
            h_out = self.xh[k][:, -H:]
            c = self.c[k] if self.c else None
            self.step_layer(g, h_out, c, self.t, self.extra[k])
            if self.record:
                np.copyto(self.kept[k], g)
            if k + 1 < self.L:
                self.xh[k + 1][:, :H] = h_out
        return self.xh[-1][:, -H:]

    def states(self) -> StepStates:
        """h, c and the gates of every layer after the last step (gates need ``record=True``)."""
        if not self.record:
            raise ValueError("gates are kept only by a stepper made with record=True")
        H = self.H
        gates = {
            name: [kept[:, j * H : (j + 1) * H].copy() for kept in self.kept]
            for j, name in enumerate(self.spec.gates)
        }
        h = [xh[:, -H:].copy() for xh in self.xh]
        return StepStates(self.spec.name, h, [c.copy() for c in self.c], gates)

    def write_states(self, out: dict[str, np.ndarray], row: int) -> None:
        """Write stream 0's h, c and gates after the last step into ``out[name][row]``.

        ``out`` maps "h", "c" (cells with one) and each gate name to a (rows, L, H) array. The
        same values as ``states()`` without its per-step copies: recording a long text step by
        step, they were a fifth of the time (22 of 94 us a step for a 1x512 LSTM).
        """
        if not self.record:
            raise ValueError("gates are kept only by a stepper made with record=True")
        H = self.H
        names = self.spec.gates
        for k in range(self.L):
            out["h"][row, k] = self.xh[k][0, -H:]
            if self.c:
                out["c"][row, k] = self.c[k][0]
            kept = self.kept[k]
            for j, name in enumerate(names):
                out[name][row, k] = kept[0, j * H : (j + 1) * H]


class NumpyStepper:
    """The exact fast path: ``NumpyCells`` under a plain ``nn.Linear`` decoder.

    ``step`` returns logits (B, V); ``states`` what the layers computed (with ``record``).
    """

    def __init__(self, model: RNNLM, record: bool = False) -> None:
        self.cells = NumpyCells(model, record)
        self.W_dec = np.ascontiguousarray(model.decoder.weight.detach().cpu().numpy().T, F32)
        self.b_dec = model.decoder.bias.detach().cpu().numpy().astype(F32)

    def start(self, hidden: Hidden, batch: int) -> None:
        self.cells.start(hidden, batch)
        self.logits = np.empty((batch, self.W_dec.shape[1]), F32)

    def step(self, ids: np.ndarray) -> np.ndarray:
        h = self.cells.advance(ids)
        np.dot(h, self.W_dec, out=self.logits)
        np.add(self.logits, self.b_dec, out=self.logits)
        return self.logits

    def states(self) -> StepStates:
        return self.cells.states()

    def write_states(self, out: dict[str, np.ndarray], row: int) -> None:
        self.cells.write_states(out, row)


class NumpyNetworkStepper:
    """The NumPy step of a cell that steps through the decoder (``CellSpec.numpy_network``),
    as a stepper: with ``record`` it keeps each layer's h (its states that are H wide; the
    carried state is what the returned logits make of it)."""

    def __init__(self, model: RNNLM, record: bool = False) -> None:
        spec = registry.get(model.cfg.model)
        if spec.numpy_network is None:
            raise ValueError(f"--model {spec.name} has no NumPy step through its decoder")
        self.net = spec.numpy_network(model)
        self.kind, self.record = spec.name, record

    def start(self, hidden: Hidden, batch: int) -> None:
        """Begin ``batch`` streams from one stream's state, copied to each."""
        self.net.start(hidden_arrays(hidden, batch))

    def step(self, ids: np.ndarray) -> np.ndarray:
        """Feed one token per stream (B,); return logits (B, V), a buffer the next call reuses."""
        return self.net.step(ids)

    def states(self) -> StepStates:
        if not self.record:
            raise ValueError("states are kept only by a stepper made with record=True")
        return StepStates(self.kind, [h.copy() for h in self.net.h], [], {})

    def write_states(self, out: dict[str, np.ndarray], row: int) -> None:
        if not self.record:
            raise ValueError("states are kept only by a stepper made with record=True")
        out["h"][row] = self.net.h[:, 0]
