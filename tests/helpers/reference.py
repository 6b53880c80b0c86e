"""Reference states from torch's own layers, and the random stacked models they run."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from charlm.config.schema import ModelConfig
from charlm.models.lm import RNNLM

V, H = 23, 16  # vocabulary and hidden size of the random models


def random_model(kind: str, vocab: int = V, layers: int = 2) -> RNNLM:
    torch.manual_seed(0)
    model = RNNLM(ModelConfig(model=kind, vocab_size=vocab, embed_size=8, hidden_size=H,
                              num_layers=layers))  # fmt: skip
    with torch.no_grad():
        for p in model.parameters():  # weights large enough that every gate matters
            p.normal_(0.0, 0.4)
    return model.eval()


def layer_outputs(model: RNNLM, ids: np.ndarray) -> list[torch.Tensor]:
    """Each layer's h over the whole sequence (B, T, H): one-layer copies of the stack, chained."""
    rnn = model.rnn
    x = model.embed(torch.as_tensor(ids))
    outs = []
    for k in range(rnn.num_layers):
        extra = {"nonlinearity": rnn.nonlinearity} if type(rnn) is nn.RNN else {}
        one = type(rnn)(x.shape[-1], H, batch_first=True, **extra)
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(one, f"{name}_l0").data.copy_(getattr(rnn, f"{name}_l{k}"))
        x, _ = one(x)
        outs.append(x)
    return outs


def cell_states(model: RNNLM, ids: np.ndarray) -> list[torch.Tensor]:
    """The LSTM cell state of every layer after every step, (T, L, B, H), from nn.LSTM."""
    emb, hidden, cs = model.embed(torch.as_tensor(ids)), None, []
    for t in range(ids.shape[1]):
        _, hidden = model.rnn(emb[:, t : t + 1], hidden)
        cs.append(hidden[1])
    return cs
