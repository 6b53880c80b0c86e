"""The Jordan network (Jordan 1986): hidden layers fed by context units holding the past
outputs. Its time loop, trained through the decoder, is ``charlm.models.jordanloop``."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from charlm.config.schema import ModelConfig, TrainConfig
from charlm.errors import ConfigError
from charlm.models.jordanloop import JordanStack
from charlm.models.registry import CellSpec

F32 = np.float32

EQUATIONS = r"""
With $x_t$ the token's embedding, the decay $\mu$ in $[0, 1)$ (`--jordan-decay`) and $V$
context units $s$ (the carried state; $s_1 = \mu s_0$):

$$s_t = \mu s_{t-1} + y_{t-1}$$
$$h^1_t = \tanh(W^1 x_t + U^1 s_t + b^1) \qquad
h^l_t = \tanh(W^l h^{l-1}_t + U^l s_t + b^l) \quad (l = 2..L)$$
$$y_t = \mathrm{softmax}(D h^L_t + d)$$

The decoder $D, d$ is the model's own output layer; every layer sees the context through its
own $U^l$, and nothing else passes from one step to the next.
"""


def build(cfg: ModelConfig) -> nn.Module:
    return JordanStack(
        cfg.embed_size,
        cfg.hidden_size,
        cfg.vocab_size,
        cfg.num_layers,
        cfg.dropout,
        cfg.jordan_decay,
    )


def context_shape(cfg: ModelConfig, batch: int) -> list[tuple[int, ...]]:
    """The carried state: the context units, one per vocabulary entry, as one layer."""
    return [(1, batch, cfg.vocab_size)]


class NumpyJordan:
    """A Jordan network's step in NumPy, softmax and context included.

    The decoder is inside the recurrence, so this one class holds the layers, the decoder
    and the context units s (B, V); layer 1's input part is a table, one row per token.
    """

    def __init__(self, model: nn.Module) -> None:
        stack = model.rnn
        self.decay, self.L, self.H = stack.decay, stack.num_layers, stack.hidden_size

        def array(p: torch.Tensor) -> np.ndarray:
            return p.detach().double().cpu().numpy()

        first = stack.inputs[0]
        self.table = array(model.embed.weight) @ array(first.weight).T + array(first.bias)
        self.table = self.table.astype(F32)  # (vocab, H)
        self.W = [np.ascontiguousarray(array(m.weight).T, F32) for m in stack.inputs[1:]]
        self.b = [array(m.bias).astype(F32) for m in stack.inputs[1:]]
        self.U = np.ascontiguousarray(array(stack.context.weight).T, F32)  # (V, L * H)
        self.W_dec = np.ascontiguousarray(array(model.decoder.weight).T, F32)  # (H, V)
        self.b_dec = array(model.decoder.bias).astype(F32)

    def start(self, state: list[np.ndarray]) -> None:
        """Begin from the context (1, B, V)."""
        self.s = state[0][0].copy()  # (B, V)
        B, H, V = self.s.shape[0], self.H, self.W_dec.shape[1]
        self.u = np.empty((B, self.L * H), F32)
        self.h = np.zeros((self.L, B, H), F32)
        self.logits, self.y = np.empty((B, V), F32), np.empty((B, V), F32)
        self.norm = np.empty((B, 1), F32)

    def step(self, ids: np.ndarray) -> np.ndarray:
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


def flow_gradients(
    model: nn.Module, window: torch.Tensor, target: torch.Tensor, context: torch.Tensor
) -> dict[tuple[str, int], torch.Tensor]:
    """Gradient flow's steps (charlm.inspection.gradflow) for a Jordan network: {("h", layer):
    (B, T, H)}, d L / d h at each step of ``window`` (B, T), L the loss of ``target`` (B,).

    Its only path back in time runs from h through the decoder's softmax into the context
    units, so these curves measure how much of the loss that path carries.
    """
    stack, H = model.rnn, model.rnn.hidden_size

    def weights(m: nn.Module) -> tuple[torch.Tensor, torch.Tensor | None]:
        b = m.bias.detach().double() if m.bias is not None else None
        return m.weight.detach().double(), b

    layers = [weights(m) for m in stack.inputs]  # W^l, b^l
    U, _ = weights(stack.context)
    D, d = weights(model.decoder)
    x = model.embed(window).detach().double()  # (B, T, E)
    s = context[0].detach().double().requires_grad_()  # a leaf, so the graph exists
    kept: dict[tuple[str, int], list[torch.Tensor]] = {}
    for t in range(window.size(1)):
        u = s @ U.t()
        h = x[:, t]
        for layer, (w, b) in enumerate(layers):
            h = torch.tanh(F.linear(h, w, b) + u[:, layer * H : (layer + 1) * H])
            kept.setdefault(("h", layer), []).append(h)
        z = F.linear(h, D, d)
        s = stack.decay * s + torch.softmax(z, -1)
    loss = F.cross_entropy(z, target, reduction="sum")
    keys = list(kept)
    grads = iter(torch.autograd.grad(loss, [t for key in keys for t in kept[key]]))
    return {key: torch.stack([next(grads) for _ in kept[key]], dim=1) for key in keys}


def check(model: ModelConfig, train: TrainConfig | None) -> None:
    if not 0.0 <= model.jordan_decay < 1.0:  # NaN fails this too
        raise ConfigError(
            f"--jordan-decay must be in [0, 1), e.g. 0.5 (got {model.jordan_decay}): "
            "from 1 on the context units grow without bound"
        )


SPEC = CellSpec(
    name="jordan",
    title="Jordan network",
    help="context units fed by the output",
    equations=EQUATIONS,
    build=build,
    needs_decoder=True,
    carried=context_shape,
    numpy_network=NumpyJordan,
    flow_gradients=flow_gradients,
    options={
        "jordan_decay": "{flag} applies to --model {takers} only (got --model {model}): "
        "drop {flag} or add --model {takers}"
    },
    check=check,
)
