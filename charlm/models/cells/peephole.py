"""The peephole LSTM (Gers, Schraudolph and Schmidhuber 2002): gates that see the cell.

``nn.LSTM`` has no peephole connections, so this module runs the recurrence itself. Its
training speed comes from where the work goes (docs/records/cells.md, "Peephole LSTM"):

- each layer's input projection W_ih x + b for all T steps is one matrix product, outside
  the time loop;
- the loop over time runs without autograd, one matrix product and a few in-place
  elementwise ops a step, keeping the gate activations;
- a hand-written backward walks the steps in reverse with one matrix product a step, and
  computes the gradient of W_hh for the whole window as one large product at the end.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

from charlm.config.schema import ModelConfig
from charlm.models.cells.gates import (
    GATE_BIASES,
    GATES,
    SIGMOID_GATES,
    gate_matrix,
    init_gate_biases,
)
from charlm.models.registry import CellSpec, NumpyLayers, stack_args, stacked_arrays
from charlm.models.timeloop import StepProduct, lstm_step_backward, weight_grad

PeepholeState = tuple[torch.Tensor, torch.Tensor]

EQUATIONS = r"""
Per layer, with $x_t$ its input and $\sigma$ the logistic function; the peephole weights $p$
are diagonal (one per unit):

$$i_t = \sigma(W_i x_t + U_i h_{t-1} + p_i \odot c_{t-1} + b_i) \qquad
f_t = \sigma(W_f x_t + U_f h_{t-1} + p_f \odot c_{t-1} + b_f)$$
$$g_t = \tanh(W_g x_t + U_g h_{t-1} + b_g) \qquad c_t = f_t \odot c_{t-1} + i_t \odot g_t$$
$$o_t = \sigma(W_o x_t + U_o h_{t-1} + p_o \odot c_t + b_o) \qquad h_t = o_t \odot \tanh(c_t)$$

The output gate sees the new cell $c_t$, the input and forget gates the previous one. Gate
biases start as the LSTM's (`--forget-bias`, `--input-bias`).
"""


class PeepholeLSTM(nn.Module):
    """A stack of peephole LSTM layers, shaped like ``nn.LSTM(batch_first=True)``.

    Per layer, the equations of ``EQUATIONS``. The peephole weights p are diagonal (one per
    unit, ``weight_peep_l{k}`` rows i, f, o); the others are stored as ``nn.LSTM`` stores
    them (gates in the order i, f, g, o, two biases), so code that reads an LSTM's weights
    reads these. The state (h, c) is (num_layers, B, H) each; dropout falls between layers,
    as in ``nn.LSTM``.
    """

    # What code written for nn.LSTM asks of it.
    bias = True
    bidirectional = False
    proj_size = 0
    batch_first = True

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        dropout: float = 0.0,
        batch_first: bool = True,
    ) -> None:
        super().__init__()
        if not batch_first:
            raise ValueError("PeepholeLSTM takes batch-first input (B, T, I) only")
        self.input_size, self.hidden_size = input_size, hidden_size
        self.num_layers, self.dropout = num_layers, dropout
        H = hidden_size
        for k in range(num_layers):
            size_in = input_size if k == 0 else H
            self.register_parameter(f"weight_ih_l{k}", nn.Parameter(torch.empty(4 * H, size_in)))
            self.register_parameter(f"weight_hh_l{k}", nn.Parameter(torch.empty(4 * H, H)))
            self.register_parameter(f"bias_ih_l{k}", nn.Parameter(torch.empty(4 * H)))
            self.register_parameter(f"bias_hh_l{k}", nn.Parameter(torch.empty(4 * H)))
            self.register_parameter(f"weight_peep_l{k}", nn.Parameter(torch.empty(3, H)))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # nn.LSTM's initialisation, the peepholes included: uniform in +-1/sqrt(H).
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def layer_weights(self, k: int) -> tuple[torch.Tensor, ...]:
        """Layer k's (W_ih, W_hh, b_ih, b_hh, peep)."""
        names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_peep")
        return tuple(getattr(self, f"{name}_l{k}") for name in names)

    def forward(
        self, x: torch.Tensor, hidden: PeepholeState | None = None
    ) -> tuple[torch.Tensor, PeepholeState]:
        """Input (B, T, I) and state ((L, B, H), (L, B, H)) -> output (B, T, H), new state."""
        B = x.size(0)
        if hidden is None:
            zeros = x.new_zeros(self.num_layers, B, self.hidden_size)
            hidden = (zeros, zeros)
        h0, c0 = hidden
        seq = x.transpose(0, 1)  # (T, B, I): each step's rows are contiguous
        h_last, c_last = [], []
        for k in range(self.num_layers):
            if k > 0 and self.dropout > 0:
                seq = F.dropout(seq, self.dropout, self.training)
            w_ih, w_hh, b_ih, b_hh, peep = self.layer_weights(k)
            xp = F.linear(seq, w_ih, b_ih + b_hh)  # (T, B, 4H), all steps in one product
            seq, c_n = peephole_recurrence(xp, h0[k], c0[k], w_hh, peep)
            h_last.append(seq[-1])
            c_last.append(c_n)
        return seq.transpose(0, 1), (torch.stack(h_last), torch.stack(c_last))


def peephole_recurrence(
    xp: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor, w_hh: torch.Tensor, peep: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """One layer over time: projected inputs (T, B, 4H), h0 and c0 (B, H) -> hs (T, B, H), c_T."""
    return _Recurrence.apply(xp, h0, c0, w_hh, peep)


class _Recurrence(torch.autograd.Function):
    """The time loop with a hand-written backward (the equations of ``PeepholeLSTM``).

    Forward keeps, per step, the gate activations (i, f, g, o), c_t and tanh(c_t); backward
    needs nothing else. Under CUDA autocast the recurrence runs in float32.
    """

    @staticmethod
    @torch.amp.custom_fwd(device_type="cuda", cast_inputs=torch.float32)
    def forward(
        ctx: Any,
        xp: torch.Tensor,
        h0: torch.Tensor,
        c0: torch.Tensor,
        w_hh: torch.Tensor,
        peep: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        T, B, G = xp.shape
        H = G // 4
        gates = torch.empty_like(xp)  # (T, B, 4H) activations i, f, g, o
        hs = xp.new_empty(T, B, H)
        cs, tcs = xp.new_empty(T, B, H), xp.new_empty(T, B, H)  # c_t and tanh(c_t)
        p_i, p_f, p_o = peep.unbind(0)
        recur = StepProduct(w_hh, B)  # h @ W_hh^T
        h0, c0 = h0.contiguous(), c0.contiguous()  # a carried state may be a strided view
        h, c = h0, c0
        for t in range(T):
            a = gates[t]
            torch.add(xp[t], recur(h), out=a)
            a[:, :H].addcmul_(c, p_i)
            a[:, H : 2 * H].addcmul_(c, p_f)
            a[:, : 2 * H].sigmoid_()
            i, f, g, o = a.chunk(4, 1)
            g.tanh_()
            c_new = cs[t]
            torch.mul(f, c, out=c_new)
            c_new.addcmul_(i, g)
            o.addcmul_(c_new, p_o).sigmoid_()
            torch.tanh(c_new, out=tcs[t])
            torch.mul(o, tcs[t], out=hs[t])
            h, c = hs[t], c_new
        ctx.save_for_backward(gates, hs, cs, tcs, h0, c0, w_hh, peep)
        return hs, cs[-1].clone()

    @staticmethod
    @once_differentiable
    @torch.amp.custom_bwd(device_type="cuda")
    def backward(ctx: Any, d_hs: torch.Tensor | None, d_cn: torch.Tensor | None) -> tuple:
        gates, hs, cs, tcs, h0, c0, w_hh, peep = ctx.saved_tensors
        T, B, G = gates.shape
        H = G // 4
        d_pre = torch.empty_like(gates)  # (T, B, 4H): gradient of the gate pre-activations
        dh = h0.new_zeros(B, H)  # from step t + 1 through W_hh
        dc = d_cn.clone() if d_cn is not None else c0.new_zeros(B, H)
        back = StepProduct(w_hh.t(), B)  # d_pre @ W_hh
        tmp = h0.new_empty(B, H)
        for t in range(T - 1, -1, -1):
            if d_hs is not None:
                dh = dh + d_hs[t]
            c_prev = cs[t - 1] if t else c0
            dc = lstm_step_backward(dh, dc, gates[t], d_pre[t], c_prev, tcs[t], tmp, peep)
            dh = back(d_pre[t])  # (B, H)
        h_prev = torch.cat([h0[None], hs[:-1]])  # (T, B, H)
        c_prev_all = torch.cat([c0[None], cs[:-1]])
        d_w_hh = weight_grad(d_pre.reshape(T * B, G), h_prev.reshape(T * B, H))  # (4H, H)
        d_peep = torch.stack(
            [
                (d_pre[..., :H] * c_prev_all).sum((0, 1)),
                (d_pre[..., H : 2 * H] * c_prev_all).sum((0, 1)),
                (d_pre[..., 3 * H :] * cs).sum((0, 1)),
            ]
        )
        return d_pre, dh, dc, d_w_hh, d_peep


class PeepholeCell(nn.Module):
    """One step of one peephole layer with autograd throughout, named like ``nn.LSTMCell``.

    For code that steps layer by layer (gradients through time); the weights are copied
    from a ``PeepholeLSTM`` layer: ``weight_ih``, ``weight_hh``, ``bias_ih``, ``bias_hh``,
    ``weight_peep``.
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True) -> None:
        super().__init__()
        H = hidden_size
        self.weight_ih = nn.Parameter(torch.empty(4 * H, input_size))
        self.weight_hh = nn.Parameter(torch.empty(4 * H, H))
        self.bias_ih = nn.Parameter(torch.zeros(4 * H))
        self.bias_hh = nn.Parameter(torch.zeros(4 * H))
        self.weight_peep = nn.Parameter(torch.zeros(3, H))
        bound = 1.0 / math.sqrt(H)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def forward(self, x: torch.Tensor, state: PeepholeState | None = None) -> PeepholeState:
        """x (B, I), (h, c) each (B, H) (zeros when None, as for nn.LSTMCell) -> the new (h, c)."""
        if state is None:
            zeros = x.new_zeros(x.size(0), self.weight_hh.size(1))
            state = (zeros, zeros)
        h, c = state
        pre = F.linear(x, self.weight_ih, self.bias_ih) + F.linear(h, self.weight_hh, self.bias_hh)
        a_i, a_f, a_g, a_o = pre.chunk(4, 1)
        p_i, p_f, p_o = self.weight_peep.unbind(0)
        i = torch.sigmoid(a_i + p_i * c)
        f = torch.sigmoid(a_f + p_f * c)
        c_new = f * c + i * torch.tanh(a_g)
        o = torch.sigmoid(a_o + p_o * c_new)
        return o * torch.tanh(c_new), c_new


def build(cfg: ModelConfig) -> nn.Module:
    return PeepholeLSTM(**stack_args(cfg))


def numpy_prepare(rnn: nn.Module, layer: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The LSTM's gate matrix; the peephole weights (i, f, o) halved as the sigmoid gates'
    inputs are."""
    w, b = gate_matrix(*stacked_arrays(rnn, layer), rnn.hidden_size)
    peep = getattr(rnn, f"weight_peep_l{layer}").detach().double().cpu().numpy()
    return w, b, (0.5 * peep).astype(np.float32)


def numpy_step(g: np.ndarray, h: np.ndarray, c: np.ndarray, t: np.ndarray, p: np.ndarray) -> None:
    """The LSTM's step with the peepholes ``p`` (3, H): i and f see c_{t-1}, o the new c_t."""
    H = h.shape[1]
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


SPEC = CellSpec(
    name="peephole",
    title="peephole LSTM",
    help="LSTM, gates see c",
    equations=EQUATIONS,
    build=build,
    states=("h", "c"),
    gates=GATES,
    sigmoid_gates=SIGMOID_GATES,
    numpy_layers=NumpyLayers(numpy_prepare, numpy_step),
    flow_cell=PeepholeCell,
    options=GATE_BIASES,
    init=init_gate_biases,
    no_onnx="its time loop is a custom autograd function writing its buffers in place, "
    "which neither torch exporter traces",
)
