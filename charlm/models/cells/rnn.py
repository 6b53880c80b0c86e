"""The Elman network (Elman 1990): a tanh layer fed its own last state, torch's fused ``nn.RNN``."""

from __future__ import annotations

import numpy as np
from torch import nn

from charlm.config.schema import ModelConfig
from charlm.models.registry import CellSpec, NumpyLayers, stack_args, stacked_arrays

EQUATIONS = r"""
Per layer, with $x_t$ its input:

$$a_t = W x_t + b_{ih} + U h_{t-1} + b_{hh} \qquad h_t = \tanh(a_t)$$

Recorded as `pre`, the pre-activation $a_t$. Above a spectral radius of 1, $U$ can make the
gradient through time explode; below it, it vanishes.
"""


def build(cfg: ModelConfig) -> nn.Module:
    return nn.RNN(**stack_args(cfg), nonlinearity="tanh")


def numpy_prepare(rnn: nn.Module, layer: int) -> tuple[np.ndarray, np.ndarray, bool]:
    """[W_ih; W_hh]^T, the biases summed; and whether the layer is ReLU (an nn.RNN may be)."""
    relu = getattr(rnn, "nonlinearity", "tanh") == "relu"
    return (*stacked_arrays(rnn, layer), relu)


def numpy_step(g: np.ndarray, h: np.ndarray, c: None, t: np.ndarray, relu: bool) -> None:
    """g is the pre-activation, kept as the one recorded gate."""
    if relu:
        np.maximum(g, 0.0, out=h)
    else:
        np.tanh(g, out=h)


NUMPY_LAYERS = NumpyLayers(numpy_prepare, numpy_step)

SPEC = CellSpec(
    name="rnn",
    title="Elman RNN",
    help="Elman, tanh",
    equations=EQUATIONS,
    build=build,
    gates=("pre",),
    fused=True,
    spectral=True,
    numpy_layers=NUMPY_LAYERS,
    flow_cell=nn.RNNCell,
)
