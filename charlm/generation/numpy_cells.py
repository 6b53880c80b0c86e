"""The NumPy fast path: LSTM, GRU, Elman RNN, peephole LSTM and Jordan layers stepped with
preallocated buffers.

Calling ``nn.LSTM`` on one step costs 0.4 to 2 ms on a CPU (more with two threads or a busy
host), nearly all of it per-call overhead. ``NumpyCells`` does the layers' arithmetic with
preallocated NumPy buffers: layer 0's input projection becomes a table lookup
(embedding @ W_ih0 + biases, one row per token), and each upper layer multiplies one matrix
by the concatenated [input, hidden] vector. ``NumpyStepper`` adds a plain ``nn.Linear``
decoder on top; ``charlm.generation.stepping`` checks it against the model before use and falls back
to the torch step for anything else.

It is also the one place the cells' internals are computed: with ``record=True`` it keeps
each layer's gate activations, which ``states()`` returns with h and c after every step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from charlm.config.schema import LSTM_TYPES
from charlm.models.jordan import JordanStack
from charlm.models.lm import RNNLM, Hidden, hidden_arrays
from charlm.models.peephole import PeepholeLSTM

F32 = np.float32

# The gate activations each cell leaves in its gate buffer, in column order (H columns each).
GATES = {
    "lstm": ("input", "forget", "output", "candidate"),  # sigmoid, sigmoid, sigmoid, tanh
    "gru": ("reset", "update", "candidate"),  # sigmoid, sigmoid, tanh
    "rnn": ("pre",),  # the pre-activation W_ih x + b_ih + W_hh h + b_hh
    "peephole": ("input", "forget", "output", "candidate"),  # as the LSTM's
    "jordan": (),  # no gates: its recorded state is h (see NumpyJordanStepper)
}
_KINDS: dict[type, str] = {nn.LSTM: "lstm", nn.GRU: "gru", nn.RNN: "rnn", PeepholeLSTM: "peephole"}


@dataclass
class StepStates:
    """What the recurrent layers computed on the last step: per layer, (B, H) float32 copies."""

    kind: str  # lstm, gru, rnn, peephole or jordan
    h: list[np.ndarray]  # hidden state of each layer
    c: list[np.ndarray]  # LSTM (and peephole) cell state of each layer; empty for GRU and RNN
    gates: dict[str, list[np.ndarray]]  # gate name (GATES[kind]) -> one array per layer


def cell_kind(model: nn.Module) -> str:
    """lstm, gru, rnn, peephole or jordan: which cells the model's recurrent stack is made of
    (an echo-state network's are rnn)."""
    if isinstance(model.rnn, JordanStack):
        return "jordan"
    return _KINDS[type(model.rnn)]


def supports_cells(model: nn.Module) -> bool:
    """An embedding under a stack of unidirectional LSTM/GRU/RNN/peephole layers with biases."""
    rnn = getattr(model, "rnn", None)
    return (
        type(rnn) in _KINDS
        and type(getattr(model, "embed", None)) is nn.Embedding
        and rnn.bias
        and not rnn.bidirectional
        and getattr(rnn, "proj_size", 0) == 0
    )


def supports_fast_path(model: nn.Module) -> bool:
    """The cells above under a plain linear decoder."""
    decoder = getattr(model, "decoder", None)
    return supports_cells(model) and type(decoder) is nn.Linear and decoder.bias is not None


class NumpyCells:
    """The recurrent layers of an LSTM, GRU, tanh/ReLU RNN or peephole model, one step per call.

    State per layer l lives in ``xh[l]`` = [input | hidden] (B, I + H), so an upper layer's
    gates are one matrix product; each layer writes its new hidden state straight into its
    own slot and into the next layer's input slot.
    """

    def __init__(self, model: RNNLM, record: bool = False) -> None:
        rnn = model.rnn
        self.kind = cell_kind(model)
        self.relu = self.kind == "rnn" and rnn.nonlinearity == "relu"
        self.record = record
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
        # Peephole weights (i, f, o) per layer, halved as the sigmoid gates' inputs are.
        self.peep = [
            (0.5 * p[f"weight_peep_l{layer}"]).astype(F32)
            for layer in range(self.L)
            if self.kind == "peephole"
        ]

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
        if self.kind in LSTM_TYPES:
            # Gates (i, f, g, o) reordered to (i, f, o, g), and the sigmoid gates halved:
            # sigmoid(x) = (tanh(x / 2) + 1) / 2, so one tanh covers all four gates.
            # Halving is exact in binary floating point.
            order = np.r_[0 : 2 * H, 3 * H : 4 * H, 2 * H : 3 * H]
            scale = np.r_[np.full(3 * H, 0.5), np.ones(H)]
            w, b = w[:, order] * scale, b[order] * scale
        return w, b

    def start(self, hidden: Hidden, batch: int) -> None:
        """Begin ``batch`` streams from one (num_layers, 1, H) state, copied to each."""
        L, H, B = self.L, self.H, batch
        states = hidden_arrays(hidden, batch)
        self.xh = [np.zeros((B, (0 if k == 0 else H) + H), F32) for k in range(L)]
        for k in range(L):
            self.xh[k][:, -H:] = states[0][k]
            if k > 0:
                self.xh[k][:, :H] = states[0][k - 1]
        self.c = [states[1][k].copy() for k in range(L)] if self.kind in LSTM_TYPES else []
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
            self._cell(k, g, h_out)
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
            for j, name in enumerate(GATES[self.kind])
        }
        h = [xh[:, -H:].copy() for xh in self.xh]
        return StepStates(self.kind, h, [c.copy() for c in self.c], gates)

    def write_states(self, out: dict[str, np.ndarray], row: int) -> None:
        """Write stream 0's h, c and gates after the last step into ``out[name][row]``.

        ``out`` maps "h", "c" (LSTM, peephole) and each gate name to a (rows, L, H) array. The same
        values as ``states()`` without its per-step copies: recording a long text step by
        step, they were a fifth of the time (22 of 94 us a step for a 1x512 LSTM).
        """
        if not self.record:
            raise ValueError("gates are kept only by a stepper made with record=True")
        H = self.H
        names = GATES[self.kind]
        for k in range(self.L):
            out["h"][row, k] = self.xh[k][0, -H:]
            if self.c:
                out["c"][row, k] = self.c[k][0]
            kept = self.kept[k]
            for j, name in enumerate(names):
                out[name][row, k] = kept[0, j * H : (j + 1) * H]

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
        elif self.kind == "peephole":
            self._peephole_cell(layer, g, h)
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

    def _peephole_cell(self, layer: int, g: np.ndarray, h: np.ndarray) -> None:
        """The LSTM's step with the peepholes: i and f see c_{t-1}, o sees the new c_t."""
        H, t, c = self.H, self.t, self.c[layer]
        p = self.peep[layer]  # (3, H): i, f, o, halved
        for j in (0, 1):
            np.multiply(c, p[j], out=t)
            np.add(g[:, j * H : (j + 1) * H], t, out=g[:, j * H : (j + 1) * H])
        i_f, o, cand = g[:, : 2 * H], g[:, 2 * H : 3 * H], g[:, 3 * H :]
        np.tanh(i_f, out=i_f)
        np.multiply(i_f, 0.5, out=i_f)
        np.add(i_f, 0.5, out=i_f)
        np.tanh(cand, out=cand)
        np.multiply(c, g[:, H : 2 * H], out=c)
        np.multiply(g[:, :H], cand, out=t)
        np.add(c, t, out=c)
        np.multiply(c, p[2], out=t)
        np.add(o, t, out=o)
        np.tanh(o, out=o)
        np.multiply(o, 0.5, out=o)
        np.add(o, 0.5, out=o)
        np.tanh(c, out=t)
        np.multiply(o, t, out=h)


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


def supports_jordan_path(model: nn.Module) -> bool:
    """A Jordan stack (``charlm.models.jordan``) between an embedding and a plain linear decoder."""
    decoder = getattr(model, "decoder", None)
    return (
        type(getattr(model, "rnn", None)) is JordanStack
        and type(getattr(model, "embed", None)) is nn.Embedding
        and type(decoder) is nn.Linear
        and decoder.bias is not None
    )


class NumpyJordanStepper:
    """A Jordan network's step (``charlm.models.jordan``) in NumPy, softmax and context included.

    The decoder is inside the recurrence, so this one class holds the layers, the decoder
    and the context units s (B, V); layer 1's input part is a table, one row per token, as
    in ``NumpyCells``. With ``record`` it keeps each layer's h (the only state it has
    that is H wide; the context, V wide, is what the returned logits make of it).
    """

    def __init__(self, model: RNNLM, record: bool = False) -> None:
        rnn = model.rnn
        self.record, self.decay = record, rnn.decay
        self.L, self.H = rnn.num_layers, rnn.hidden_size

        def array(p: torch.Tensor) -> np.ndarray:
            return p.detach().double().cpu().numpy()

        first = rnn.inputs[0]
        self.table = array(model.embed.weight) @ array(first.weight).T + array(first.bias)
        self.table = self.table.astype(F32)  # (vocab, H)
        self.W = [np.ascontiguousarray(array(m.weight).T, F32) for m in rnn.inputs[1:]]
        self.b = [array(m.bias).astype(F32) for m in rnn.inputs[1:]]
        self.U = np.ascontiguousarray(array(rnn.context.weight).T, F32)  # (V, L * H)
        self.W_dec = np.ascontiguousarray(array(model.decoder.weight).T, F32)  # (H, V)
        self.b_dec = array(model.decoder.bias).astype(F32)

    def start(self, hidden: Hidden, batch: int) -> None:
        """Begin ``batch`` streams from one (1, 1, V) context, copied to each."""
        self.s = hidden_arrays(hidden, batch)[0][0].copy()  # (B, V)
        B, H, V = batch, self.H, self.W_dec.shape[1]
        self.u = np.empty((B, self.L * H), F32)
        self.h = np.zeros((self.L, B, H), F32)
        self.logits, self.y = np.empty((B, V), F32), np.empty((B, V), F32)
        self.norm = np.empty((B, 1), F32)

    def step(self, ids: np.ndarray) -> np.ndarray:
        """Feed one token per stream (B,); return logits (B, V), a buffer the next call reuses."""
        H, h = self.H, self.h
        np.dot(self.s, self.U, out=self.u)  # every layer's U^l s_t
        np.take(self.table, ids, axis=0, out=h[0])
        np.add(h[0], self.u[:, :H], out=h[0])
        np.tanh(h[0], out=h[0])
        for k in range(1, self.L):
            np.dot(h[k - 1], self.W[k - 1], out=h[k])
            h[k] += self.b[k - 1]
            h[k] += self.u[:, k * H : (k + 1) * H]
            np.tanh(h[k], out=h[k])
        np.dot(h[-1], self.W_dec, out=self.logits)
        np.add(self.logits, self.b_dec, out=self.logits)
        self._update_context()
        return self.logits

    def _update_context(self) -> None:
        """s <- mu * s + softmax(logits)."""
        y = self.y
        np.max(self.logits, axis=1, keepdims=True, out=self.norm)
        np.subtract(self.logits, self.norm, out=y)
        np.exp(y, out=y)
        np.sum(y, axis=1, keepdims=True, out=self.norm)
        np.divide(y, self.norm, out=y)
        if self.decay:
            np.multiply(self.s, F32(self.decay), out=self.s)
            np.add(self.s, y, out=self.s)
        else:
            np.copyto(self.s, y)

    def states(self) -> StepStates:
        if not self.record:
            raise ValueError("states are kept only by a stepper made with record=True")
        return StepStates("jordan", [h.copy() for h in self.h], [], {})

    def write_states(self, out: dict[str, np.ndarray], row: int) -> None:
        if not self.record:
            raise ValueError("states are kept only by a stepper made with record=True")
        out["h"][row] = self.h[:, 0]
