"""nn.LSTM's layers trained by charlm's own time loop: faster for wide layers in bf16 on a CPU.

Under bf16 autocast on a CPU with AVX512-BF16, oneDNN's fused LSTM trains a narrow net fast and
falls behind as the layer widens, where a loop of oneDNN products keeps its pace (measured, by
width, in docs/records/defaults.md, "The LSTM's own loop in bf16"). So a model whose LSTM layers
are 1,024 units or wider and train in bf16 on a CPU runs them here (``uses_loop``); everything
else, and evaluation, runs nn.LSTM.
The weights stay nn.LSTM's, so checkpoints, sampling and the fast path do not change; hooks
registered on the nn.LSTM module do not see the loop's forwards.

The loop is the peephole loop's (peephole.py) without the peepholes:

- each layer's input projection for all T steps is one product, outside the loop;
- the forward keeps the gate activations, c_t and tanh(c_t) of every step, the recurrent
  product in bf16 against a weight packed once per window, the gates and the cell in float32;
- the backward walks the steps in reverse with one product a step and computes W_hh's
  gradient for the whole window as one large product.

In float32 or float64 (the tests) the same code runs its products in that precision.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

from charlm.models.timeloop import StepProduct, lstm_step_backward, weight_grad

# From this many units on the loop beat nn.LSTM in bf16 on one thread, on a quiet host too
# (docs/records/defaults.md, "The LSTM's own loop in bf16").
LOOP_FROM_HIDDEN = 1024

LSTMState = tuple[torch.Tensor, torch.Tensor]


def uses_loop(rnn: nn.Module, x: torch.Tensor) -> bool:
    """Whether this training forward of ``rnn`` on ``x`` runs the loop instead of nn.LSTM."""
    return (
        type(rnn) is nn.LSTM
        and rnn.training
        and torch.is_grad_enabled()
        and x.device.type == "cpu"
        and torch.is_autocast_enabled("cpu")
        and torch.get_autocast_dtype("cpu") == torch.bfloat16
        and rnn.hidden_size >= LOOP_FROM_HIDDEN
        and rnn.proj_size == 0
        and rnn.bias
        and rnn.batch_first
        and not rnn.bidirectional
    )


def lstm_forward(
    rnn: nn.LSTM, x: torch.Tensor, hidden: LSTMState | None = None
) -> tuple[torch.Tensor, LSTMState]:
    """What ``rnn(x, hidden)`` returns (batch first): output (B, T, H), state (h, c) (L, B, H).

    The products run in x's precision, or bf16 under CPU autocast; the state comes back in
    float32 (or x's precision, if wider).
    """
    B, L, H = x.size(0), rnn.num_layers, rnn.hidden_size
    if hidden is None:
        zeros = x.new_zeros(L, B, H, dtype=_state_dtype(x))
        hidden = (zeros, zeros)
    h0, c0 = hidden
    seq = x.transpose(0, 1)  # (T, B, I): each step's rows contiguous
    h_last, c_last = [], []
    for k in range(L):
        if k > 0 and rnn.dropout > 0:
            seq = F.dropout(seq, rnn.dropout, rnn.training)
        w_ih, w_hh, b_ih, b_hh = (getattr(rnn, f"{n}_l{k}") for n in _NAMES)
        xp = F.linear(seq, w_ih, b_ih + b_hh)  # (T, B, 4H): all steps in one product
        seq, c_n = _Recurrence.apply(xp, h0[k], c0[k], w_hh)
        h_last.append(seq[-1])
        c_last.append(c_n)
    return seq.transpose(0, 1), (torch.stack(h_last), torch.stack(c_last))


_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def _state_dtype(x: torch.Tensor) -> torch.dtype:
    return torch.float64 if x.dtype == torch.float64 else torch.float32


class _Recurrence(torch.autograd.Function):
    """One layer over time: projected inputs (T, B, 4H), h0, c0 (B, H), W_hh -> hs, c_T.

    The gates are ordered as nn.LSTM orders them (input, forget, cell, output). The
    products take the inputs' precision (bf16 under autocast); the rest is float32, or
    float64 when the inputs are.
    """

    @staticmethod
    def forward(
        ctx: Any, xp: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor, w_hh: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.autocast("cpu", enabled=False):  # the precisions here are chosen by hand
            hs, cs, saved = _Recurrence._loop(xp, h0, c0, w_hh)
        ctx.save_for_backward(*saved)
        ctx.dtypes = xp.dtype, h0.dtype, c0.dtype  # the gradients go back in these
        return hs, cs[-1].clone()

    @staticmethod
    def _loop(
        xp: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor, w_hh: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, ...]]:
        T, B, G = xp.shape
        H = G // 4
        low, work = xp.dtype, _state_dtype(xp)
        xp = xp.to(work)  # so each step's sum is taken in float32, not rounded to bf16
        gates = torch.empty_like(xp)  # activations i, f, g, o
        hs = gates.new_empty(T, B, H)
        cs, tcs = gates.new_empty(T, B, H), gates.new_empty(T, B, H)  # c_t, tanh(c_t)
        h_in = w_hh.new_empty(T + 1, B, H, dtype=low)  # h_{t-1} in the products' precision
        h_in[0].copy_(h0)
        recur = StepProduct(w_hh.to(low), B)  # h @ W_hh^T
        c0 = c = c0.to(work)
        for t in range(T):
            a = gates[t]
            torch.add(xp[t], recur(h_in[t]), out=a)
            a[:, : 2 * H].sigmoid_()
            a[:, 3 * H :].sigmoid_()
            i, f, g, o = a.chunk(4, 1)
            g.tanh_()
            c_new = cs[t]
            torch.mul(f, c, out=c_new)
            c_new.addcmul_(i, g)
            torch.tanh(c_new, out=tcs[t])
            torch.mul(o, tcs[t], out=hs[t])
            h_in[t + 1].copy_(hs[t])
            c = c_new
        return hs, cs, (gates, h_in, cs, tcs, c0, w_hh)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, d_hs: torch.Tensor | None, d_cn: torch.Tensor | None) -> tuple:
        gates, h_in, cs, tcs, c0, w_hh = ctx.saved_tensors
        T, B, G = gates.shape
        H = G // 4
        d_pre = torch.empty_like(gates)  # gradient of the gate pre-activations
        # the gradient in the products' precision: d_pre itself unless that is bf16
        in_dtype = ctx.dtypes[0]  # the products'
        low = in_dtype != d_pre.dtype
        d_low = d_pre.new_empty(T, B, G, dtype=in_dtype) if low else d_pre
        dh = cs.new_zeros(B, H)  # from step t + 1 through W_hh
        dc = d_cn.to(cs.dtype) if d_cn is not None else cs.new_zeros(B, H)
        back = StepProduct(w_hh.to(in_dtype).t(), B)  # d_pre @ W_hh
        tmp = cs.new_empty(B, H)
        for t in range(T - 1, -1, -1):
            if d_hs is not None:
                dh = dh + d_hs[t]
            c_prev = cs[t - 1] if t else c0
            dc = lstm_step_backward(dh, dc, gates[t], d_pre[t], c_prev, tcs[t], tmp)
            if low:
                d_low[t].copy_(d_pre[t])
            dh = back(d_low[t]).to(cs.dtype)  # (B, H)
        d_w_hh = weight_grad(d_low.reshape(T * B, G), h_in[:T].reshape(T * B, H))
        _, h_dtype, c_dtype = ctx.dtypes
        return d_low, dh.to(h_dtype), dc.to(c_dtype), d_w_hh.to(w_hh.dtype)
