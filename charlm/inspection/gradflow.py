"""Gradient flow through time: how much of the loss at step t reaches the state at t - k.

For lags k = 0..K this measures the norm of dL_t/dh_{t-k} (and dL_t/dc_{t-k}, the LSTM's
cell) per layer, averaged over positions t of a text. It is the vanishing (or exploding)
gradient of the lectures, measured on a real model rather than drawn.

One backward pass per batch of positions gives every lag at once: take L = the sum over
the batch of the loss at the window's last step; each row of the batch is its own text
position, so row b's gradient holds dL_{t_b}/dh_s for every step s of its window.

      carried in (no grad)        window of K + 1 steps (stepped cell by cell)
    |---------------------|  x_{t-K}  ...  x_{t-1}  x_t  -> L_t = -log p(x_{t+1})
                          h_{t-K}  ...      h_{t-1}  h_t
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from charlm.config.schema import ModelConfig
from charlm.errors import ConfigError
from charlm.models import registry
from charlm.models.lm import RNNLM, Hidden, as_read, hidden_tensors

VANISHED = 1e-3  # a curve has "vanished" once it falls below this fraction of its lag-0 value


@dataclass
class FlowConfig:
    """What to measure: lags, how many text positions, how much state to carry in."""

    max_lag: int = 200  # K: lags 0..K
    positions: int = 64  # text positions t averaged over
    carry_in: int = 100  # tokens run (without gradients) before each window to warm the state
    batch: int = 16  # positions per backward pass: bounds the memory the window's graph holds
    seed: int = 0  # which positions are drawn

    def __post_init__(self) -> None:
        if self.max_lag < 0 or self.carry_in < 0:
            raise ConfigError("--max-lag and --carry-in must be 0 or more")
        if self.positions < 1 or self.batch < 1:
            raise ConfigError(
                f"--positions must be at least 1 (got {self.positions}; batch {self.batch})"
            )

    def tokens_needed(self) -> int:
        return self.carry_in + self.max_lag + 2  # the window, the state before it, a target


@dataclass
class Curve:
    """Mean gradient norm against lag for one state (h or c) of one layer of one model."""

    state: str  # "h" or "c"
    layer: int  # 0 is the bottom layer
    mean_norm: list[float]  # index k: mean over positions of |dL_t/d state_{t-k}|

    def vanished_at(self) -> int | None:
        """The first lag whose norm is below VANISHED x the lag-0 norm; None if none is."""
        start = self.mean_norm[0]
        for k, v in enumerate(self.mean_norm):
            if v < VANISHED * start:
                return k
        return None


@dataclass
class Flow:
    """The curves of one model, named for display."""

    name: str
    kind: str  # the cell (--model)
    curves: list[Curve] = field(default_factory=list)
    spectral_radius: float | None = None  # top layer's recurrent matrix (CellSpec.spectral)

    def curve(self, state: str = "h", layer: int = -1) -> Curve:
        layers = sorted({c.layer for c in self.curves})
        want = layers[layer]
        return next(c for c in self.curves if c.state == state and c.layer == want)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "model": self.kind,
            "spectral_radius": self.spectral_radius,
            "curves": [
                {
                    "state": c.state,
                    "layer": c.layer,
                    "vanished_at": c.vanished_at(),
                    "mean_norm": c.mean_norm,
                }
                for c in self.curves
            ],
        }


def fresh_model(cfg: ModelConfig, kind: str, init_scale: float = 1.0, seed: int = 0) -> RNNLM:
    """A freshly initialised model of the same size, its recurrent weights times init_scale."""
    with torch.random.fork_rng(devices=[]):  # the caller's random stream is left as it was
        torch.manual_seed(seed)
        # Another cell's options go back to their defaults: this one refuses them.
        model = RNNLM(dataclasses.replace(registry.for_cell(cfg, kind), dropout=0.0))
    with torch.no_grad():
        for name, p in model.rnn.named_parameters():
            # the recurrent weights: W_hh, or a Jordan network's context matrix
            if name.startswith("weight_hh") or name == "context.weight":
                p.mul_(init_scale)
    return model.eval()


def spectral_radius(model: RNNLM) -> float | None:
    """Largest |eigenvalue| of the top layer's W_hh: above 1, a tanh RNN can explode."""
    if not model.spec.spectral:
        return None
    w = getattr(model.rnn, f"weight_hh_l{model.cfg.num_layers - 1}").detach().double()
    return float(torch.linalg.eigvals(w).abs().max())


def measure(model: RNNLM, ids: np.ndarray, cfg: FlowConfig, name: str) -> Flow:
    """Mean |dL_t/dh_{t-k}| (and c for an LSTM) per layer over cfg.positions positions of ids.

    A backward model (``--reverse``) reads ids from the end: its lags count leftwards."""
    check_length(len(ids), cfg)
    ids = as_read(model, ids)
    ends = _positions(len(ids), cfg)
    tokens = torch.as_tensor(np.asarray(ids, dtype=np.int64))
    sums: dict[tuple[str, int], torch.Tensor] = {}
    for i in range(0, len(ends), cfg.batch):
        grads = _window_gradients(model, tokens, ends[i : i + cfg.batch], cfg)
        for key, g in grads.items():  # g: (B, K+1, H), lag-indexed
            norms = g.norm(dim=-1).sum(dim=0)  # (K+1,)
            sums[key] = sums.get(key, 0) + norms
    curves = [
        Curve(state, layer, (total / len(ends)).tolist())
        for (state, layer), total in sorted(sums.items(), key=lambda kv: (kv[0][1], kv[0][0]))
    ]
    return Flow(name, model.cfg.model, curves, spectral_radius(model))


def check_length(tokens: int, cfg: FlowConfig) -> None:
    if tokens < cfg.tokens_needed():
        raise ConfigError(
            f"the text has {tokens:,} tokens but --max-lag {cfg.max_lag} with --carry-in "
            f"{cfg.carry_in} needs {cfg.tokens_needed():,}: give a longer text or lower them"
        )


def _positions(n: int, cfg: FlowConfig) -> list[int]:
    """Window end positions t, drawn without replacement where the text allows."""
    low, high = cfg.carry_in + cfg.max_lag, n - 2  # t needs a target at t + 1
    gen = np.random.default_rng(cfg.seed)
    span = high - low + 1
    picks = gen.choice(span, size=cfg.positions, replace=span < cfg.positions)
    return sorted(int(p) + low for p in picks)


def _window_gradients(
    model: RNNLM, tokens: torch.Tensor, ends: list[int], cfg: FlowConfig
) -> dict[tuple[str, int], torch.Tensor]:
    """{(state, layer): (B, K+1, H)} gradients of L_t, indexed by lag, for each end t."""
    device = next(model.parameters()).device
    K = cfg.max_lag
    start = torch.tensor(ends) - K  # first step of each window
    steps = torch.arange(-cfg.carry_in, K + 2)
    idx = (start[:, None] + steps[None, :]).to(device)  # (B, carry_in + K + 2)
    seq = tokens.to(device)[idx]
    before, window, target = seq[:, : cfg.carry_in], seq[:, cfg.carry_in : -1], seq[:, -1]
    carried = _carried_in(model, before)
    through_decoder = model.spec.flow_gradients  # a cell that steps through the decoder
    if through_decoder is not None:
        states = through_decoder(model, window, target, carried)
    else:
        states = state_gradients(model, window, target, _per_layer(carried))
    return {key: g.flip(1) for key, g in states.items()}  # step s -> lag K - s


def _carried_in(model: RNNLM, before: torch.Tensor) -> Hidden:
    """The state after reading ``before`` (B, T0), without gradients."""
    hidden = model.init_hidden(before.size(0), before.device)
    if before.size(1):
        with torch.no_grad():
            hidden = model.advance(before, hidden)
    return hidden


def _per_layer(hidden: Hidden) -> list[tuple[torch.Tensor, ...]]:
    """(h,) or (h, c) of each layer, from the carried state."""
    parts = hidden_tensors(hidden)
    return [tuple(p[layer] for p in parts) for layer in range(parts[0].size(0))]


def state_gradients(
    model: RNNLM,
    window: torch.Tensor,
    target: torch.Tensor,
    hidden: list[tuple[torch.Tensor, ...]],
) -> dict[tuple[str, int], torch.Tensor]:
    """{(state, layer): (B, T, H)}: d(sum_b L_b)/d state at each step s of ``window`` (B, T).

    L_b is the loss of predicting ``target[b]`` after the window's last step. ``hidden`` is
    the state carried in, per layer: (h,) or (h, c). Steps through the model's own weights
    one layer at a time, so a lower layer's gradient includes its path up through the
    layers above at the same step, not only its path along time.
    """
    cells = _cells(model)
    # float64 through time: a vanishing gradient reaches 1e-40 within 100 steps of a plain
    # RNN, where float32 flushes it to 0 and the curve would stop there.
    x = model.embed(window).detach().double()  # (B, T, E); no weight needs a gradient
    kept: dict[tuple[str, int], list[torch.Tensor]] = {}
    # Leaves that need gradients, so the graph exists although no weight needs one.
    state = [
        tuple(s.detach().double().requires_grad_() for s in layer_state) for layer_state in hidden
    ]
    for s in range(window.size(1)):
        inp = x[:, s]
        for layer, cell in enumerate(cells):
            new = cell(inp, state[layer] if len(state[layer]) == 2 else state[layer][0])
            new = new if isinstance(new, tuple) else (new,)
            for name, t in zip("hc", new, strict=False):
                kept.setdefault((name, layer), []).append(t)
            state[layer] = new
            inp = new[0]
    loss = _loss(model, inp.float(), target).sum()  # the decoder is float32
    keys = list(kept)
    flat = [t for key in keys for t in kept[key]]
    grads = iter(torch.autograd.grad(loss, flat))
    return {key: torch.stack([next(grads) for _ in kept[key]], dim=1) for key in keys}


def _cells(model: RNNLM) -> list[nn.Module]:
    """One cell per layer sharing the fused RNN's weights (copies: nothing is trained)."""
    cfg = model.cfg
    make_cell = model.spec.flow_cell
    if make_cell is None:
        raise ValueError(f"--model {cfg.model} has no cell to step its layers one at a time")
    cells = []
    for layer in range(cfg.num_layers):
        size_in = cfg.embed_size if layer == 0 else cfg.hidden_size
        cell = make_cell(size_in, cfg.hidden_size)
        with torch.no_grad():
            for name, p in cell.named_parameters():  # weight_ih, weight_hh, bias_ih, ...
                p.copy_(getattr(model.rnn, f"{name}_l{layer}"))
        cell.requires_grad_(False)
        cells.append(cell.to(next(model.parameters()).device, torch.float64).eval())
    return cells


def _loss(model: RNNLM, top: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-row negative log-likelihood (B,) of ``target`` from the top layer's state (B, H)."""
    return model.nll_from(top[:, None], target[:, None])
