"""The time-delay network (Waibel et al. 1989), the neural n-gram: no recurrence at all.

Each layer reads its input through a tapped delay line of D steps (``--window D``): a 1-D
convolution over time. The first layer reads the last D token embeddings, so one layer is a
neural n-gram model of order D + 1 (Bengio et al. 2003 without the direct connections); each
stacked layer reads D steps of the layer below, widening what the top sees to L(D - 1) + 1
tokens, as Waibel's did.

What it carries from one window (or one sampled token) to the next is the delay lines
themselves: the last D - 1 inputs of every layer, flattened into one (1, B, S) state, so the
trainer's per-stripe resets, checkpoints, exact resume, priming and sampling carry it as any
hidden state. Zeros in it read as "no token yet", the padding before a text's start.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from charlm.config.schema import ModelConfig, TrainConfig
from charlm.errors import ConfigError
from charlm.models.registry import CellSpec

F32 = np.float32

EQUATIONS = r"""
With $x_t$ the token's embedding and $D$ the window (`--window`), layer $l$ reads the last
$D$ outputs of the layer below ($h^0 = x$):

$$h^l_t = \tanh\big(W^l [h^{l-1}_{t-D+1}; \dots; h^{l-1}_t] + b^l\big)$$
$$p(x_{t+1} \mid x_{\le t}) = \mathrm{softmax}(V h^L_t + c)$$

Nothing passes from one step to the next but the delay lines: the top layer sees the last
$L(D-1)+1$ tokens and nothing before them (one layer: a neural n-gram of order $D+1$,
beside `evaluate --baseline ngram:D+1`). The carried state is every layer's last $D-1$ inputs.
"""


def delay_windows(past: torch.Tensor, seq: torch.Tensor, taps: int) -> torch.Tensor:
    """Each step's delay line: ``past`` (B, taps - 1, I) then ``seq`` (B, T, I) -> the windows
    (B, T, taps * I), oldest input first."""
    full = torch.cat([past, seq], dim=1)  # (B, T + taps - 1, I)
    B, T = seq.shape[:2]
    return full.unfold(1, taps, 1).transpose(2, 3).reshape(B, T, -1)


def layer_widths(cfg: ModelConfig) -> list[int]:
    """What each layer's delay line holds per step: the embedding, then the layers below."""
    return [cfg.embed_size] + [cfg.hidden_size] * (cfg.num_layers - 1)


def state_shape(cfg: ModelConfig, batch: int) -> list[tuple[int, ...]]:
    """Every layer's last D - 1 inputs, side by side, as one layer's state."""
    return [(1, batch, (cfg.window - 1) * sum(layer_widths(cfg)))]


class TDNNStack(nn.Module):
    """Delay-line layers shaped like ``nn.RNN(batch_first=True)``: (x, state) -> (out, state)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.window, self.widths = cfg.window, layer_widths(cfg)
        self.hidden_size, self.num_layers = cfg.hidden_size, cfg.num_layers
        self.dropout = cfg.dropout if cfg.num_layers > 1 else 0.0
        self.layers = nn.ModuleList(nn.Linear(cfg.window * w, cfg.hidden_size) for w in self.widths)

    def forward(
        self, x: torch.Tensor, state: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        weights = [(m.weight, m.bias) for m in self.layers]
        drop = self.dropout if self.training else 0.0
        outs, state = run_layers(weights, x, state, self.window, self.widths, drop)
        return outs[-1], state


def run_layers(
    weights: list[tuple[torch.Tensor, torch.Tensor]],
    x: torch.Tensor,
    state: torch.Tensor | None,
    taps: int,
    widths: list[int],
    dropout: float = 0.0,
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Every layer's outputs (B, T, H) over inputs ``x`` (B, T, E), and the delay lines after."""
    B = x.size(0)
    if state is None:
        state = x.new_zeros(1, B, (taps - 1) * sum(widths))
    pasts = state[0].split([(taps - 1) * w for w in widths], dim=-1)
    seq, outs, kept = x, [], []
    for k, ((w, b), past) in enumerate(zip(weights, pasts, strict=True)):
        if k > 0:
            seq = F.dropout(seq, dropout, dropout > 0)  # between layers, as nn.RNN's
        windows = delay_windows(past.reshape(B, taps - 1, -1), seq, taps)
        kept.append(windows[:, -1, widths[k] :])  # the last D - 1 inputs, for the next window
        seq = torch.tanh(F.linear(windows, w, b))
        outs.append(seq)
    return outs, torch.cat(kept, dim=-1)[None]


def build(cfg: ModelConfig) -> nn.Module:
    return TDNNStack(cfg)


class NumpyTDNN:
    """The time-delay network's step in NumPy, decoder included: each layer's delay line is a
    (B, D * I) buffer shifted by one input per step."""

    def __init__(self, model: nn.Module) -> None:
        stack = model.rnn
        self.taps, self.widths = stack.window, stack.widths

        def array(p: torch.Tensor) -> np.ndarray:
            return p.detach().double().cpu().numpy()

        self.emb = array(model.embed.weight).astype(F32)
        self.W = [np.ascontiguousarray(array(m.weight).T, F32) for m in stack.layers]
        self.b = [array(m.bias).astype(F32) for m in stack.layers]
        self.W_dec = np.ascontiguousarray(array(model.decoder.weight).T, F32)  # (H, V)
        self.b_dec = array(model.decoder.bias).astype(F32)

    def start(self, state: list[np.ndarray]) -> None:
        """Begin from the delay lines (1, B, S)."""
        flat, D = state[0][0], self.taps
        B, H = flat.shape[0], self.W[0].shape[1]
        self.lines, at = [], 0
        for w in self.widths:
            line = np.zeros((B, D * w), F32)
            line[:, w:] = flat[:, at : at + (D - 1) * w]  # step shifts them left
            self.lines.append(line)
            at += (D - 1) * w
        self.h = np.zeros((len(self.widths), B, H), F32)
        self.logits = np.empty((B, self.W_dec.shape[1]), F32)

    def step(self, ids: np.ndarray) -> np.ndarray:
        new = self.emb[ids]
        for k, (line, w) in enumerate(zip(self.lines, self.widths, strict=True)):
            line[:, :-w] = line[:, w:].copy()  # shift the delay line by one input
            line[:, -w:] = new
            np.dot(line, self.W[k], out=self.h[k])
            self.h[k] += self.b[k]
            np.tanh(self.h[k], out=self.h[k])
            new = self.h[k]
        np.dot(self.h[-1], self.W_dec, out=self.logits)
        self.logits += self.b_dec
        return self.logits


def flow_gradients(
    model: nn.Module, window: torch.Tensor, target: torch.Tensor, state: torch.Tensor
) -> dict[tuple[str, int], torch.Tensor]:
    """Gradient flow (charlm.inspection.gradflow): {("h", layer): (B, T, H)}, d L / d h at each
    step of ``window`` (B, T), L the loss of ``target`` (B,) after its last step.

    With no recurrence, a layer's output reaches the loss only through the delay lines above
    it: the curves fall to exactly zero past the lags the layers above can see.
    """
    stack = model.rnn
    weights = [(m.weight.detach().double(), m.bias.detach().double()) for m in stack.layers]
    x = model.embed(window).detach().double().requires_grad_()  # a leaf: the graph exists
    outs, _ = run_layers(weights, x, state.detach().double(), stack.window, stack.widths)
    loss = model.nll_from(outs[-1][:, -1:].float(), target[:, None]).sum()
    grads = torch.autograd.grad(loss, outs)
    return {("h", k): g for k, g in enumerate(grads)}


def check(model: ModelConfig, train: TrainConfig | None) -> None:
    if model.window < 2:
        raise ConfigError(
            f"--window must be at least 2 (got {model.window}): a window of one token is "
            "a bigram table, and leaves the network nothing to carry"
        )


SPEC = CellSpec(
    name="tdnn",
    title="time-delay network",
    help="time-delay, a neural n-gram over the last --window tokens, no recurrence",
    equations=EQUATIONS,
    build=build,
    carried=state_shape,
    numpy_network=NumpyTDNN,
    flow_gradients=flow_gradients,
    options={
        "window": "{flag} sets the time-delay network's delay line: add --model {takers}, "
        "or drop {flag}"
    },
    check=check,
)
