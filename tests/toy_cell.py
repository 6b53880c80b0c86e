"""A toy cell defined outside charlm, to show that a registered cell needs nothing else: a
minimal gated tanh unit, its stack, its one-step cell, its NumPy step and its equations.

    z_t = sigmoid(W_z x_t + b_iz + U_z h_{t-1} + b_hz)       update gate
    n_t = tanh(W_n x_t + b_in + U_n h_{t-1} + b_hn)          candidate
    h_t = (1 - z_t) * h_{t-1} + z_t * n_t

The weights are stored as nn.RNN stores them (``weight_ih_l{k}`` (2H, I) with the rows of z,
then n), so the registry's ``stacked_arrays`` and gradient flow's cells read them as any other.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from charlm.config.schema import ModelConfig
from charlm.models.registry import CellSpec, NumpyLayers, stacked_arrays

NAME = "toy"


def _step(x: torch.Tensor, h: torch.Tensor, weights: tuple[torch.Tensor, ...]) -> torch.Tensor:
    w_ih, w_hh, b_ih, b_hh = weights
    z_pre, n_pre = (x @ w_ih.T + b_ih + h @ w_hh.T + b_hh).chunk(2, dim=-1)
    z = torch.sigmoid(z_pre)
    return (1 - z) * h + z * torch.tanh(n_pre)


class ToyStack(nn.Module):
    """Gated tanh layers, shaped like ``nn.RNN(batch_first=True)``; plain autograd."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int, dropout: float) -> None:
        super().__init__()
        self.hidden_size, self.num_layers, self.dropout = hidden_size, num_layers, dropout
        H = hidden_size
        for k in range(num_layers):
            size_in = input_size if k == 0 else H
            self.register_parameter(f"weight_ih_l{k}", nn.Parameter(torch.empty(2 * H, size_in)))
            self.register_parameter(f"weight_hh_l{k}", nn.Parameter(torch.empty(2 * H, H)))
            self.register_parameter(f"bias_ih_l{k}", nn.Parameter(torch.empty(2 * H)))
            self.register_parameter(f"bias_hh_l{k}", nn.Parameter(torch.empty(2 * H)))
        bound = 1.0 / math.sqrt(H)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def forward(
        self, x: torch.Tensor, hidden: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if hidden is None:
            hidden = x.new_zeros(self.num_layers, x.size(0), self.hidden_size)
        seq, last = x, []
        for k in range(self.num_layers):
            if k > 0:
                seq = nn.functional.dropout(seq, self.dropout, self.training)
            names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
            weights = tuple(getattr(self, f"{n}_l{k}") for n in names)
            h, outs = hidden[k], []
            for t in range(seq.size(1)):
                h = _step(seq[:, t], h, weights)
                outs.append(h)
            seq = torch.stack(outs, dim=1)
            last.append(h)
        return seq, torch.stack(last)


class ToyCell(nn.Module):
    """One step of one layer, named like ``nn.RNNCell``: for gradient flow."""

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        H = hidden_size
        self.weight_ih = nn.Parameter(torch.zeros(2 * H, input_size))
        self.weight_hh = nn.Parameter(torch.zeros(2 * H, H))
        self.bias_ih = nn.Parameter(torch.zeros(2 * H))
        self.bias_hh = nn.Parameter(torch.zeros(2 * H))

    def forward(self, x: torch.Tensor, h: torch.Tensor | None = None) -> torch.Tensor:
        h = x.new_zeros(x.size(0), self.weight_hh.size(1)) if h is None else h
        return _step(x, h, (self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh))


def build(cfg: ModelConfig) -> nn.Module:
    dropout = cfg.dropout if cfg.num_layers > 1 else 0.0
    return ToyStack(cfg.embed_size, cfg.hidden_size, cfg.num_layers, dropout)


def numpy_prepare(rnn: nn.Module, layer: int) -> tuple[np.ndarray, np.ndarray, None]:
    return (*stacked_arrays(rnn, layer), None)


def numpy_step(g: np.ndarray, h: np.ndarray, c: None, t: np.ndarray, _: None) -> None:
    H = h.shape[1]
    z, n = g[:, :H], g[:, H:]
    np.negative(z, out=z)
    np.exp(z, out=z)
    np.add(z, 1.0, out=z)
    np.reciprocal(z, out=z)  # sigmoid
    np.tanh(n, out=n)
    np.subtract(n, h, out=t)  # h + z * (n - h)
    np.multiply(t, z, out=t)
    np.add(h, t, out=h)


def by_hand(p: dict[str, np.ndarray], k: int, x: np.ndarray, state: tuple) -> tuple:
    """The equations above for layer k, in float64, unit by unit: the contract's hand check."""
    (h,) = state
    H = len(h)
    a = p[f"weight_ih_l{k}"] @ x + p[f"bias_ih_l{k}"] + p[f"weight_hh_l{k}"] @ h
    a = a + p[f"bias_hh_l{k}"]
    z = np.array([1 / (1 + math.exp(-a[u])) for u in range(H)])
    n = np.array([math.tanh(a[H + u]) for u in range(H)])
    return ((1 - z) * h + z * n,)


SPEC = CellSpec(
    name=NAME,
    title="toy gated unit",
    help="a test's minimal gated tanh unit",
    equations=r"$$h_t = (1 - z_t) h_{t-1} + z_t \tanh(W_n x_t + U_n h_{t-1} + b_n)$$",
    build=build,
    gates=("update", "candidate"),
    sigmoid_gates=("update",),
    numpy_layers=NumpyLayers(numpy_prepare, numpy_step),
    flow_cell=ToyCell,
)
