"""The gates of an LSTM, shared by the cells built on it: their starting biases (the
``--forget-bias`` and ``--input-bias`` options) and their columns in a NumPy step."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from charlm.config.schema import ModelConfig

# The options of the cells with an LSTM's gates -> the message refusing them to another.
GATE_BIASES = {
    option: "{flag} sets an LSTM gate and --model {model} has none: drop {flag} or use "
    "--model {takers}"
    for option in ("forget_bias", "input_bias")
}
GATES = ("input", "forget", "output", "candidate")  # the NumPy step's order: sigmoids first
SIGMOID_GATES = GATES[:3]


def init_gate_biases(embed: nn.Embedding, rnn: nn.Module, cfg: ModelConfig, loading: bool) -> None:
    """Forget-gate bias 1 by default (Gers et al. 2000): the cell remembers until it learns to
    forget. The gates are ordered (input, forget, cell, output) and there are two biases: the
    values go in bias_ih, bias_hh stays 0."""
    h = cfg.hidden_size
    for name, p in rnn.named_parameters():
        if name.startswith("bias_"):
            with torch.no_grad():
                p.zero_()
                if name.startswith("bias_ih"):
                    p[:h] = cfg.input_bias
                    p[h : 2 * h] = cfg.forget_bias


def gate_matrix(w: np.ndarray, b: np.ndarray, H: int) -> tuple[np.ndarray, np.ndarray]:
    """Columns (i, f, g, o) reordered to (i, f, o, g), the sigmoid gates' halved:
    sigmoid(x) = (tanh(x / 2) + 1) / 2, so one tanh covers all four gates. Halving is exact
    in binary floating point."""
    order = np.r_[0 : 2 * H, 3 * H : 4 * H, 2 * H : 3 * H]
    scale = np.r_[np.full(3 * H, 0.5), np.ones(H)]
    return w[:, order] * scale, b[order] * scale
