"""The NARX network (Lin, Horne, Tino and Giles 1996): a hidden layer fed by tapped delay
lines of its last inputs and of its own last outputs, and by nothing else from the past.

The output fed back is the expectation of the next token's vector under the predicted
distribution, y_t = p_t F, with F (V, E) an output embedding of the network's own: the
network's prediction of its next input, as Narendra and Parthasarathy fed back a plant
model's predicted output. It is the distribution itself seen through a rank-E map (y_t U =
p_t (F U)), so it keeps what a Jordan network's context keeps to E numbers a step, and each
further output delay costs E x H weights and a (B, E) x (E, H) product rather than V x H;
a Jordan network (``--model jordan``) already feeds the whole distribution back. Gradients
flow through the softmax, as the Jordan network's do.

The delays are shortcuts through time: the loss at t reaches the state b steps back in one
jump through the fed-back outputs, where an Elman network's gradient passes every step
between (``charlm inspect gradients --compare`` draws both). The carried state is the delay
lines: the last A - 1 input embeddings, then the last B outputs, oldest first, (1, B, S).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from charlm.config.schema import ModelConfig, TrainConfig
from charlm.errors import ConfigError
from charlm.models.cells.tdnn import delay_windows
from charlm.models.jordanloop import dropout_masks
from charlm.models.narxloop import NARXLoop
from charlm.models.registry import CellSpec

F32 = np.float32

EQUATIONS = r"""
With $x_t$ the token's embedding, $A$ input delays (`--input-delays`), $B$ output delays
(`--output-delays`) and $F$ (V, E) the network's output embedding:

$$h^1_t = \tanh\big(W^1 [x_{t-A+1}; \dots; x_t] + U^1 [y_{t-B}; \dots; y_{t-1}] + b^1\big)$$
$$h^l_t = \tanh\big(W^l h^{l-1}_t + U^l [y_{t-B}; \dots; y_{t-1}] + b^l\big) \quad (l = 2..L)$$
$$p_t = \mathrm{softmax}(D h^L_t + d) \qquad y_t = p_t^\top F$$

The output fed back, $y_t$, is the expectation of the next token's vector under the predicted
distribution. Nothing else passes from one step to the next: no hidden-to-hidden matrix.
"""


def state_shape(cfg: ModelConfig, batch: int) -> list[tuple[int, ...]]:
    """The delay lines: the last A - 1 inputs and the last B outputs, each E wide."""
    return [(1, batch, (cfg.input_delays - 1 + cfg.output_delays) * cfg.embed_size)]


class NARXStack(nn.Module):
    """The L hidden layers of a NARX network, stepped through the model's decoder.

    ``forward(emb, state, decoder)``: embeddings (B, T, E) and the delay lines (1, B, S) ->
    the top layer's output after dropout (B, T, H), logits (B, T, V), the delay lines after.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        E, H, L = cfg.embed_size, cfg.hidden_size, cfg.num_layers
        self.input_delays, self.output_delays = cfg.input_delays, cfg.output_delays
        self.hidden_size, self.num_layers, self.dropout = H, L, cfg.dropout
        sizes = [cfg.input_delays * E] + [H] * (L - 1)
        self.inputs = nn.ModuleList(nn.Linear(n, H) for n in sizes)  # W^l, b^l
        self.feedback = nn.Linear(cfg.output_delays * E, L * H, bias=False)  # [U^l]
        self.expect = nn.Linear(cfg.vocab_size, E, bias=False)  # F^T: p -> y
        nn.init.normal_(self.expect.weight, std=0.1)  # as the input embedding is drawn

    def forward(
        self, emb: torch.Tensor, state: torch.Tensor | None, decoder: nn.Linear
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The hand-written loop (``charlm.models.narxloop``); ``steps`` is its plain twin."""
        B, T, E = emb.shape
        A, dtype = self.input_delays, self.feedback.weight.dtype  # autocast: the loop's own
        if state is None:
            state = emb.new_zeros(1, B, (A - 1 + self.output_delays) * E, dtype=dtype)
        past, ys = state[0].split([(A - 1) * E, self.output_delays * E], dim=-1)
        first = self.inputs[0](delay_windows(past.reshape(B, A - 1, E), emb, A)).to(dtype)
        upper = [p for layer in self.inputs[1:] for p in (layer.weight, layer.bias)]
        tops, logits, ys = NARXLoop.apply(
            first, ys.to(dtype), self.feedback.weight, self.expect.weight, decoder.weight,
            decoder.bias, dropout_masks(self, T, B, first), *upper,
        )  # fmt: skip
        inputs = torch.cat([past, emb.reshape(B, -1)], dim=-1)  # every input, oldest first
        kept = inputs[:, inputs.size(1) - (A - 1) * E :].to(dtype)
        return tops, logits, torch.cat([kept, ys], dim=-1)[None]


def steps(
    stack: NARXStack,
    emb: torch.Tensor,
    state: torch.Tensor | None,
    decoder: nn.Module,
    masks: torch.Tensor | None = None,
    dtype: torch.dtype | None = None,
) -> tuple[list[torch.Tensor], list[torch.Tensor], list[list[torch.Tensor]], torch.Tensor]:
    """Run the network over ``emb`` (B, T, E) through autograd: per step the top output after
    dropout (``masks``, (T, L, B, H), as ``dropout_masks`` draws them) (B, H), the logits
    (B, V) and every layer's h; and the delay lines after. ``dtype``: the weights cast to it
    (gradient flow's float64), detached. The hand-written loop's reference."""

    def p(t: torch.Tensor | None) -> torch.Tensor | None:
        return t if dtype is None or t is None else t.detach().to(dtype)

    B, T, E = emb.shape
    H, A = stack.hidden_size, stack.input_delays
    if state is None:
        state = emb.new_zeros(1, B, (A - 1 + stack.output_delays) * E)
    past, ys = state[0].split([(A - 1) * E, stack.output_delays * E], dim=-1)
    w0, b0 = p(stack.inputs[0].weight), p(stack.inputs[0].bias)
    first = F.linear(delay_windows(past.reshape(B, A - 1, E), emb, A), w0, b0)  # (B, T, H)
    upper = [(p(m.weight), p(m.bias)) for m in stack.inputs[1:]]
    U, Ft, D, d = (
        p(stack.feedback.weight),
        p(stack.expect.weight),
        p(decoder.weight),
        p(decoder.bias),
    )
    tops, logits, hs = [], [], []
    for t in range(T):
        u = F.linear(ys, U)  # (B, L * H): every layer's U^l [y_{t-B}; ...; y_{t-1}]
        h = torch.tanh(first[:, t] + u[:, :H])
        layers = [h]
        for k, (w, b) in enumerate(upper, start=1):
            below = h if masks is None else h * masks[t, k - 1]
            h = torch.tanh(F.linear(below, w, b) + u[:, k * H : (k + 1) * H])
            layers.append(h)
        top = h if masks is None else h * masks[t, -1]
        z = F.linear(top, D, d)
        y = F.linear(torch.softmax(z, -1), Ft)  # (B, E): the expected next input
        ys = torch.cat([ys[:, E:], y], dim=-1)
        tops.append(top)
        logits.append(z)
        hs.append(layers)
    inputs = torch.cat([past, emb.reshape(B, -1)], dim=-1)  # every input, oldest first
    kept = inputs[:, inputs.size(1) - (A - 1) * E :]
    return tops, logits, hs, torch.cat([kept, ys], dim=-1)[None]


def build(cfg: ModelConfig) -> nn.Module:
    return NARXStack(cfg)


class NumpyNARX:
    """A NARX network's step in NumPy, softmax and fed-back outputs included."""

    def __init__(self, model: nn.Module) -> None:
        stack = model.rnn
        self.A, self.Bd, self.L, self.H = (
            stack.input_delays, stack.output_delays, stack.num_layers, stack.hidden_size,
        )  # fmt: skip

        def array(p: torch.Tensor) -> np.ndarray:
            return p.detach().double().cpu().numpy()

        self.emb = array(model.embed.weight).astype(F32)
        self.E = self.emb.shape[1]
        self.W = [np.ascontiguousarray(array(m.weight).T, F32) for m in stack.inputs]
        self.b = [array(m.bias).astype(F32) for m in stack.inputs]
        self.U = np.ascontiguousarray(array(stack.feedback.weight).T, F32)  # (B * E, L * H)
        self.F = np.ascontiguousarray(array(stack.expect.weight).T, F32)  # (V, E)
        self.W_dec = np.ascontiguousarray(array(model.decoder.weight).T, F32)  # (H, V)
        self.b_dec = array(model.decoder.bias).astype(F32)

    def start(self, state: list[np.ndarray]) -> None:
        """Begin from the delay lines (1, B, S)."""
        flat, E = state[0][0], self.E
        B, n_in = flat.shape[0], (self.A - 1) * E
        self.line = np.zeros((B, self.A * E), F32)  # the input delay line
        self.line[:, E:] = flat[:, :n_in]  # step shifts them left
        self.ys = flat[:, n_in:].copy()  # (B, Bd * E)
        self.h = np.zeros((self.L, B, self.H), F32)
        self.u = np.empty((B, self.L * self.H), F32)

    def step(self, ids: np.ndarray) -> np.ndarray:
        E, H, h = self.E, self.H, self.h
        self.line[:, :-E] = self.line[:, E:].copy()
        self.line[:, -E:] = self.emb[ids]
        np.dot(self.ys, self.U, out=self.u)
        below = self.line
        for k in range(self.L):
            np.dot(below, self.W[k], out=h[k])
            h[k] += self.b[k] + self.u[:, k * H : (k + 1) * H]
            np.tanh(h[k], out=h[k])
            below = h[k]
        logits = h[-1] @ self.W_dec + self.b_dec
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        self.ys[:, :-E] = self.ys[:, E:].copy()
        self.ys[:, -E:] = p @ self.F
        return logits


def flow_gradients(
    model: nn.Module, window: torch.Tensor, target: torch.Tensor, state: torch.Tensor
) -> dict[tuple[str, int], torch.Tensor]:
    """Gradient flow (charlm.inspection.gradflow): {("h", layer): (B, T, H)}, d L / d h at each
    step of ``window`` (B, T), L the loss of ``target`` (B,) after its last step, in float64.

    Every path back in time runs through the fed-back outputs, B steps at most per jump."""
    x = model.embed(window).detach().double()
    s = state.detach().double().requires_grad_()  # a leaf, so the graph exists
    _, logits, hs, _ = steps(model.rnn, x, s, model.decoder, dtype=torch.float64)
    loss = F.cross_entropy(logits[-1], target, reduction="sum")
    L = model.rnn.num_layers
    flat = [h for layers in hs for h in layers]
    grads = torch.autograd.grad(loss, flat)
    return {("h", k): torch.stack(grads[k::L], dim=1) for k in range(L)}


def check(model: ModelConfig, train: TrainConfig | None) -> None:
    for option, value in (
        ("--input-delays", model.input_delays),
        ("--output-delays", model.output_delays),
    ):
        if value < 1:
            raise ConfigError(
                f"{option} must be at least 1 (got {value}): the NARX network reads its current "
                "input and at least its last output"
            )


SPEC = CellSpec(
    name="narx",
    title="NARX network",
    help="NARX, delay lines of the last inputs and of its own outputs",
    equations=EQUATIONS,
    build=build,
    needs_decoder=True,
    carried=state_shape,
    numpy_network=NumpyNARX,
    flow_gradients=flow_gradients,
    options={
        "input_delays": "{flag} sets the NARX network's delay lines: add --model {takers}, "
        "or drop {flag}",
        "output_delays": "{flag} sets the NARX network's delay lines: add --model {takers}, "
        "or drop {flag}",
    },
    check=check,
)
