"""The Jordan network's time loop: hidden layers fed by context units holding past outputs.

Jordan (1986) fed the network's own previous output back into its hidden layer through
context units that decay. For a language model the output at step t is the next-token
distribution y_t = softmax(decoder(h_t)), so with the decay mu in [0, 1) (the cell's
equations, ``charlm.models.cells``)::

    s_t = mu * s_{t-1} + y_{t-1}             context units (V of them), s_1 = mu * s_0
    h_t = tanh(W x_t + U s_t + b)            hidden layer 1; x_t is the token's embedding
    h^l_t = tanh(W^l h^{l-1}_t + U^l s_t + b^l)   layers l = 2..L: each sees the context too
    y_t = softmax(D h^L_t + d)               the decoder, the model's own output layer

There is no hidden-to-hidden matrix: everything carried from one step to the next passes
through the output distribution. Stacking gives every layer its own U^l on the one context
(the only recurrent state there is), so an upper layer is not a plain feed-forward layer
that could learn nothing about the past its lower layer did not pass up; the L products
U^l s_t are one matrix product per step.

The carried state is the context the next step will read, s_{T+1} = mu * s_T + y_T, shaped
(1, B, V) like a one-layer state whose width is the vocabulary: the trainer's per-stripe
resets (dim 1), checkpoints, data-parallel gathers and the steppers treat it as any other
state. The zero state is "no previous output".

Gradients flow through y fed back (backpropagation through the softmax, the textbook
Jordan net): the decoder's logits are computed inside the loop anyway, since the next step
needs them, so the backward pass through one (B, V) softmax per step adds little, while
detaching y would leave U trained only on what it sees, never on what it makes.

The loop is a custom autograd function (``JordanLoop``): the forward pass steps without
building a graph, keeping each step's h, y and context, and the backward pass steps back by
hand, leaving every weight gradient to one matrix product over all T steps at the end. On
one CPU thread it trained faster than the same loop through autograd and than TorchScript
(docs/records/cells.md, "The Jordan network", has the figures).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

Decoder = nn.Linear  # (B, H) -> (B, V) logits; the model's own output layer


class JordanStack(nn.Module):
    """The L hidden layers of a Jordan network, stepped through the model's decoder.

    ``forward(emb, s, decoder)``: embeddings (B, T, E) and the carried context (1, B, V) ->
    the top layer's output after dropout (B, T, H), logits (B, T, V), the next context.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        vocab_size: int,
        num_layers: int = 1,
        dropout: float = 0.0,
        decay: float = 0.0,
    ) -> None:
        super().__init__()
        self.hidden_size, self.vocab_size, self.num_layers = hidden_size, vocab_size, num_layers
        self.dropout, self.decay = dropout, decay
        sizes = [input_size] + [hidden_size] * (num_layers - 1)
        self.inputs = nn.ModuleList(nn.Linear(n, hidden_size) for n in sizes)  # W^l, b^l
        self.context = nn.Linear(vocab_size, num_layers * hidden_size, bias=False)  # [U^l]

    def forward(
        self, emb: torch.Tensor, s: torch.Tensor | None, decoder: Decoder
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        B, T, _ = emb.shape
        dtype = self.context.weight.dtype  # under autocast the loop still runs in it
        if s is None:
            s = emb.new_zeros(1, B, self.vocab_size, dtype=dtype)
        # Layer 1's input part depends only on the tokens: one product for all T steps.
        first = self.inputs[0](emb).to(dtype)  # (B, T, H)
        upper = [p for layer in self.inputs[1:] for p in (layer.weight, layer.bias)]
        out, logits, ctx = JordanLoop.apply(
            first, s[0].to(dtype), self.context.weight, decoder.weight, decoder.bias,
            dropout_masks(self, T, B, first), self.decay, *upper,
        )  # fmt: skip
        return out, logits, ctx[None]


def dropout_masks(stack: nn.Module, T: int, B: int, like: torch.Tensor) -> torch.Tensor | None:
    """Dropout after each of ``stack``'s layers (into the next, or the decoder) for T steps:
    (T, L, B, H), scaled; None when it drops nothing."""
    if not stack.training or stack.dropout == 0:
        return None
    keep = 1.0 - stack.dropout
    shape = (T, stack.num_layers, B, stack.hidden_size)
    return like.new_empty(shape).bernoulli_(keep).div_(keep)


class JordanLoop(torch.autograd.Function):
    """The time loop of ``JordanStack``, forward and backward written out.

    Inputs: first = W^1 x + b^1 (B, T, H), the context s (B, V), U (L*H, V), the decoder's
    D (V, H) and d (V,), dropout masks (T, L, B, H) or None, mu, then W^l, b^l of layers 2..L.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        fn: Any,
        first: torch.Tensor,
        s: torch.Tensor,
        U: torch.Tensor,
        D: torch.Tensor,
        d: torch.Tensor,
        masks: torch.Tensor | None,
        decay: float,
        *upper: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        with torch.autocast(first.device.type, enabled=False):
            hs, zs, ys, cs, s = _steps(first, s, U, D, d, masks, decay, upper)
        fn.decay = decay
        fn.save_for_backward(hs, ys, cs, U, D, masks, *upper)
        fn.set_materialize_grads(False)  # an unused output (out; a detached state) gives None
        return top_output(hs, masks).transpose(0, 1), zs.transpose(0, 1), s

    @staticmethod
    def backward(fn: Any, g_out: torch.Tensor, g_z: torch.Tensor, g_s: torch.Tensor) -> Any:
        hs, ys, cs, U, D, masks, *upper = fn.saved_tensors
        with torch.autocast(hs.device.type, enabled=False):
            da, dz, ds = _steps_back(hs, ys, U, D, masks, fn.decay, upper, g_out, g_z, g_s)
            return _weight_grads(hs, cs, masks, da, dz, ds, len(upper))


def top_output(hs: torch.Tensor, masks: torch.Tensor | None) -> torch.Tensor:
    """The top layer's output after dropout, (T, B, H): what the decoder reads."""
    return hs[:, -1] if masks is None else hs[:, -1] * masks[:, -1]


def _below(hs: torch.Tensor, masks: torch.Tensor | None, layer: int) -> torch.Tensor:
    """What layer ``layer`` (1..L-1) reads from the one below, after dropout, (T, B, H)."""
    return hs[:, layer - 1] if masks is None else hs[:, layer - 1] * masks[:, layer - 1]


def _steps(
    first: torch.Tensor,
    s: torch.Tensor,
    U: torch.Tensor,
    D: torch.Tensor,
    d: torch.Tensor,
    masks: torch.Tensor | None,
    mu: float,
    upper: tuple[torch.Tensor, ...],
) -> tuple[torch.Tensor, ...]:
    """Run T steps; keep h of every layer (T, L, B, H), the logits, y and each step's s."""
    B, T, H = first.shape
    V = D.size(0)
    hs = first.new_empty(T, U.size(0) // H, B, H)
    zs, ys, cs = (first.new_empty(T, B, V) for _ in range(3))
    x = first.transpose(0, 1)  # (T, B, H)
    for t in range(T):
        cs[t] = s
        u = torch.mm(s, U.t())  # (B, L*H): every layer's U^l s_t at once
        top = layers_step(x[t], u, hs[t], None if masks is None else masks[t], upper)
        torch.addmm(d, top, D.t(), out=zs[t])
        torch.softmax(zs[t], -1, out=ys[t])
        s = ys[t] if mu == 0 else mu * s + ys[t]
    return hs, zs, ys, cs, s.clone()


def _steps_back(
    hs: torch.Tensor,
    ys: torch.Tensor,
    U: torch.Tensor,
    D: torch.Tensor,
    masks: torch.Tensor | None,
    mu: float,
    upper: list[torch.Tensor],
    g_out: torch.Tensor | None,
    g_z: torch.Tensor | None,
    g_s: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Step back from T: the gradients at every pre-activation (T, B, L*H), every logit
    (T, B, V), and the context carried in (B, V)."""
    T, L, B, H = hs.shape
    da, dz = hs.new_empty(T, B, L * H), ys.new_empty(ys.shape)
    g = torch.zeros_like(ys[0]) if g_s is None else g_s.clone()  # dLoss/ds_{t+1}
    for t in range(T - 1, -1, -1):
        dh = output_step_back(ys[t], g, D, g_out, g_z, t, dz[t])
        layers_step_back(dh, hs[t], None if masks is None else masks[t], upper, da[t])
        g = torch.mm(da[t], U) if mu == 0 else torch.addmm(g, da[t], U, beta=mu)
    return da, dz, g


def _weight_grads(
    hs: torch.Tensor,
    cs: torch.Tensor,
    masks: torch.Tensor | None,
    da: torch.Tensor,
    dz: torch.Tensor,
    ds: torch.Tensor,
    n_upper: int,
) -> tuple[torch.Tensor | None, ...]:
    """Every weight's gradient as one product over all T steps; in JordanLoop's input order."""
    T, L, B, H = hs.shape
    dU = da.reshape(T * B, L * H).t() @ cs.reshape(T * B, -1)
    dD, dd = decoder_grads(hs, masks, dz)
    dfirst = da[:, :, :H].transpose(0, 1)
    return (dfirst, ds, dU, dD, dd, None, None, *upper_grads(hs, masks, da, n_upper))


def layers_step(
    x: torch.Tensor,
    u: torch.Tensor,
    hs: torch.Tensor,
    masks: torch.Tensor | None,
    upper: tuple[torch.Tensor, ...] | list[torch.Tensor],
) -> torch.Tensor:
    """One step of L tanh layers fed by what the past sends each (u, (B, L*H)), layer 1 by x
    too: every layer's h written into ``hs`` (L, B, H); the top's output after dropout.
    Shared by the loops whose state reaches the layers only through u (Jordan, NARX)."""
    L, _, H = hs.shape
    h = torch.add(x, u[:, :H], out=hs[0]).tanh_()
    for layer in range(1, L):
        below = h if masks is None else h * masks[layer - 1]
        w, b = upper[2 * layer - 2], upper[2 * layer - 1]
        h = torch.addmm(b, below, w.t(), out=hs[layer])
        h.add_(u[:, layer * H : (layer + 1) * H]).tanh_()
    return h if masks is None else h * masks[-1]


def output_step_back(
    p: torch.Tensor,
    g_p: torch.Tensor,
    D: torch.Tensor,
    g_out: torch.Tensor | None,
    g_z: torch.Tensor | None,
    t: int,
    dz: torch.Tensor,
) -> torch.Tensor:
    """Step t's softmax p (B, V) and decoder D backwards: the logits' gradient into ``dz``
    from the loss's own (g_z) and from what reads p later (g_p); returns the gradient at the
    top layer's output, the loss's own there (g_out) added."""
    torch.mul(p, g_p - (g_p * p).sum(-1, keepdim=True), out=dz)  # dz = p * (g - <g, p>)
    if g_z is not None:
        dz += g_z[:, t]
    dh = torch.mm(dz, D)
    if g_out is not None:
        dh += g_out[:, t]
    return dh


def layers_step_back(
    dh: torch.Tensor,
    hs: torch.Tensor,
    masks: torch.Tensor | None,
    upper: tuple[torch.Tensor, ...] | list[torch.Tensor],
    da: torch.Tensor,
) -> None:
    """``layers_step`` backwards: from the gradient at the top's output (B, H), modified in
    place, every layer's pre-activation gradient into ``da`` (B, L*H)."""
    L, _, H = hs.shape
    for layer in range(L - 1, -1, -1):
        if masks is not None:
            dh *= masks[layer]
        h = hs[layer]
        dh.mul_(1 - h * h)  # through tanh: now the pre-activation's gradient
        da[:, layer * H : (layer + 1) * H] = dh
        if layer > 0:
            dh = torch.mm(dh, upper[2 * layer - 2])


def decoder_grads(
    hs: torch.Tensor, masks: torch.Tensor | None, dz: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The decoder's weight and bias gradients over all T steps, from the logits' (T, B, V)."""
    T, _, B, H = hs.shape
    return dz.reshape(T * B, -1).t() @ top_output(hs, masks).reshape(T * B, H), dz.sum((0, 1))


def upper_grads(
    hs: torch.Tensor, masks: torch.Tensor | None, da: torch.Tensor, n_upper: int
) -> list[torch.Tensor]:
    """W^l and b^l's gradients of layers 2..L over all T steps, in the loops' input order."""
    T, L, B, H = hs.shape
    flat_da = da.reshape(T * B, L * H)
    grads: list[torch.Tensor] = []
    for layer in range(1, n_upper // 2 + 1):
        g = flat_da[:, layer * H : (layer + 1) * H]
        grads += [g.t() @ _below(hs, masks, layer).reshape(T * B, H), g.sum(0)]
    return grads
