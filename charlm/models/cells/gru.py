"""The gated recurrent unit (Cho et al. 2014): torch's fused ``nn.GRU``."""

from __future__ import annotations

import numpy as np
from torch import nn

from charlm.config.schema import ModelConfig
from charlm.models.registry import CellSpec, NumpyLayers, layer_arrays, stack_args

EQUATIONS = r"""
Per layer, with $x_t$ its input and $\sigma$ the logistic function (torch's form: the reset
gate scales the recurrent product, bias included):

$$r_t = \sigma(W_r x_t + b_{ir} + U_r h_{t-1} + b_{hr}) \qquad
z_t = \sigma(W_z x_t + b_{iz} + U_z h_{t-1} + b_{hz})$$
$$n_t = \tanh(W_n x_t + b_{in} + r_t \odot (U_n h_{t-1} + b_{hn}))$$
$$h_t = (1 - z_t) \odot n_t + z_t \odot h_{t-1}$$
"""


def build(cfg: ModelConfig) -> nn.Module:
    return nn.GRU(**stack_args(cfg))


def numpy_prepare(rnn: nn.Module, layer: int) -> tuple[np.ndarray, np.ndarray, None]:
    """The h part of n stays apart, since r scales it: the product has 4H columns, r and z
    (x and h summed), n from x, n from h."""
    w_ih, w_hh, b_ih, b_hh = layer_arrays(rnn, layer)
    n_in, H = w_ih.shape[1], w_hh.shape[1]
    w = np.zeros((n_in + H, 4 * H))
    w[:n_in, : 3 * H] = w_ih.T
    w[n_in:, : 2 * H] = w_hh[: 2 * H].T
    w[n_in:, 3 * H :] = w_hh[2 * H :].T
    b = np.concatenate([b_ih[: 2 * H] + b_hh[: 2 * H], b_ih[2 * H :], b_hh[2 * H :]])
    return w, b, None


def numpy_step(g: np.ndarray, h: np.ndarray, c: None, t: np.ndarray, _: None) -> None:
    H = h.shape[1]
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


SPEC = CellSpec(
    name="gru",
    title="GRU",
    help="gated recurrent unit",
    equations=EQUATIONS,
    build=build,
    gates=("reset", "update", "candidate"),
    sigmoid_gates=("reset", "update"),
    fused=True,
    numpy_layers=NumpyLayers(numpy_prepare, numpy_step),
    flow_cell=nn.GRUCell,
)
