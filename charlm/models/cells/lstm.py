"""The LSTM with a forget gate (Hochreiter and Schmidhuber 1997, Gers et al. 2000): torch's
fused ``nn.LSTM``; wide layers training in bf16 on a CPU run ``charlm.models.lstmloop``."""

from __future__ import annotations

import numpy as np
from torch import nn

from charlm.config.schema import ModelConfig
from charlm.models.cells.gates import (
    GATE_BIASES,
    GATES,
    SIGMOID_GATES,
    gate_matrix,
    init_gate_biases,
)
from charlm.models.registry import CellSpec, NumpyLayers, stack_args, stacked_arrays

EQUATIONS = r"""
Per layer, with $x_t$ its input and $\sigma$ the logistic function (gates in torch's order
$i, f, g, o$; two biases, $b = b_{ih} + b_{hh}$):

$$i_t = \sigma(W_i x_t + U_i h_{t-1} + b_i) \qquad f_t = \sigma(W_f x_t + U_f h_{t-1} + b_f)$$
$$g_t = \tanh(W_g x_t + U_g h_{t-1} + b_g) \qquad o_t = \sigma(W_o x_t + U_o h_{t-1} + b_o)$$
$$c_t = f_t \odot c_{t-1} + i_t \odot g_t \qquad h_t = o_t \odot \tanh(c_t)$$

The forget gate's bias starts at `--forget-bias` (1: the cell remembers until it learns to
forget), the input gate's at `--input-bias`.
"""


def build(cfg: ModelConfig) -> nn.Module:
    return nn.LSTM(**stack_args(cfg))


def numpy_prepare(rnn: nn.Module, layer: int) -> tuple[np.ndarray, np.ndarray, None]:
    return (*gate_matrix(*stacked_arrays(rnn, layer), rnn.hidden_size), None)


def numpy_step(g: np.ndarray, h: np.ndarray, c: np.ndarray, t: np.ndarray, _: None) -> None:
    """g holds (i, f, o, g) pre-activations, the sigmoid gates' halved (``gate_matrix``)."""
    H = h.shape[1]
    np.tanh(g, out=g)
    s = g[:, : 3 * H]  # i, f, o as tanh(x / 2): make them sigmoids
    np.multiply(s, 0.5, out=s)
    np.add(s, 0.5, out=s)
    np.multiply(c, g[:, H : 2 * H], out=c)
    np.multiply(g[:, :H], g[:, 3 * H :], out=t)
    np.add(c, t, out=c)
    np.tanh(c, out=t)
    np.multiply(g[:, 2 * H : 3 * H], t, out=h)


SPEC = CellSpec(
    name="lstm",
    title="LSTM",
    help="long short-term memory, with a forget gate",
    equations=EQUATIONS,
    build=build,
    states=("h", "c"),
    gates=GATES,
    sigmoid_gates=SIGMOID_GATES,
    fused=True,
    numpy_layers=NumpyLayers(numpy_prepare, numpy_step),
    flow_cell=nn.LSTMCell,
    options=GATE_BIASES,
    init=init_gate_biases,
)
