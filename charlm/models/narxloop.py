"""The NARX network's time loop, forward and backward written out (the cell's equations:
``charlm.models.cells.narx``).

A step reads the delay line of the last B outputs fed back, ys_t = [y_{t-B}; ...; y_{t-1}]
(B x E wide), through U (one product for every layer), runs the L tanh layers and the decoder,
and feeds back y_t = softmax(z_t) F. As the Jordan network's (``charlm.models.jordanloop``,
whose per-step layer code this shares), the loop is a custom autograd function: the forward
steps without building a graph, keeping each step's h, softmax and delay line; the backward
steps back by hand, carrying dLoss/dys_t, and leaves every weight gradient to one product over
all T steps. Autograd through the same loop ran it at a third of the speed or less
(docs/records/cells.md, "The time-delay and NARX networks").

Going back, the delay line's gradient reaches the step before in two ways: through U (the
layers read ys_t) and through the shift (ys_{t+1} holds ys_t's newest B - 1 outputs).
"""

from __future__ import annotations

from typing import Any

import torch

from charlm.models.jordanloop import (
    decoder_grads,
    layers_step,
    layers_step_back,
    output_step_back,
    top_output,
    upper_grads,
)


class NARXLoop(torch.autograd.Function):
    """Inputs: first = W^1 [x_{t-A+1}; ...; x_t] + b^1 (B, T, H), the output delay line ys
    (B, S), U (L*H, S), the output embedding F^T (E, V), the decoder's D (V, H) and d (V,),
    dropout masks (T, L, B, H) or None, then W^l, b^l of layers 2..L. Outputs: the top layer
    after dropout (B, T, H), the logits (B, T, V), the delay line after the last step."""

    @staticmethod
    def forward(  # type: ignore[override]
        fn: Any,
        first: torch.Tensor,
        ys: torch.Tensor,
        U: torch.Tensor,
        Ft: torch.Tensor,
        D: torch.Tensor,
        d: torch.Tensor,
        masks: torch.Tensor | None,
        *upper: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        with torch.autocast(first.device.type, enabled=False):
            hs, zs, ps, lines, ys = _steps(first, ys, U, Ft, D, d, masks, upper)
        fn.save_for_backward(hs, ps, lines, U, Ft, D, masks, *upper)
        fn.set_materialize_grads(False)  # an unused output gives None, not zeros
        return top_output(hs, masks).transpose(0, 1), zs.transpose(0, 1), ys

    @staticmethod
    def backward(fn: Any, g_out: torch.Tensor, g_z: torch.Tensor, g_ys: torch.Tensor) -> Any:
        hs, ps, lines, U, Ft, D, masks, *upper = fn.saved_tensors
        with torch.autocast(hs.device.type, enabled=False):
            da, dz, gy, dys = _steps_back(hs, ps, U, Ft, D, masks, upper, g_out, g_z, g_ys)
            T, L, B, H = hs.shape
            dU = da.reshape(T * B, L * H).t() @ lines.reshape(T * B, -1)
            dFt = gy.reshape(T * B, -1).t() @ ps.reshape(T * B, -1)
            dD, dd = decoder_grads(hs, masks, dz)
            dfirst = da[:, :, :H].transpose(0, 1)
            return (dfirst, dys, dU, dFt, dD, dd, None, *upper_grads(hs, masks, da, len(upper)))


def _steps(
    first: torch.Tensor,
    ys: torch.Tensor,
    U: torch.Tensor,
    Ft: torch.Tensor,
    D: torch.Tensor,
    d: torch.Tensor,
    masks: torch.Tensor | None,
    upper: tuple[torch.Tensor, ...],
) -> tuple[torch.Tensor, ...]:
    """Run T steps; keep h of every layer (T, L, B, H), the logits and softmax (T, B, V) and
    the delay line each step read (T, B, S); and the line after the last."""
    B, T, H = first.shape
    V, E = D.size(0), Ft.size(0)
    hs = first.new_empty(T, U.size(0) // H, B, H)
    zs, ps = first.new_empty(T, B, V), first.new_empty(T, B, V)
    lines = first.new_empty(T, B, ys.size(1))
    x = first.transpose(0, 1)  # (T, B, H)
    for t in range(T):
        lines[t] = ys
        u = torch.mm(ys, U.t())  # (B, L*H): every layer's U^l ys_t at once
        top = layers_step(x[t], u, hs[t], None if masks is None else masks[t], upper)
        torch.addmm(d, top, D.t(), out=zs[t])
        torch.softmax(zs[t], -1, out=ps[t])
        ys = torch.cat([ys[:, E:], torch.mm(ps[t], Ft.t())], dim=1)  # the oldest drops out
    return hs, zs, ps, lines, ys


def _steps_back(
    hs: torch.Tensor,
    ps: torch.Tensor,
    U: torch.Tensor,
    Ft: torch.Tensor,
    D: torch.Tensor,
    masks: torch.Tensor | None,
    upper: list[torch.Tensor],
    g_out: torch.Tensor | None,
    g_z: torch.Tensor | None,
    g_ys: torch.Tensor | None,
) -> tuple[torch.Tensor, ...]:
    """Step back from T: the gradients at every pre-activation (T, B, L*H), every logit
    (T, B, V), every output fed back (T, B, E), and the delay line carried in (B, S)."""
    T, L, B, H = hs.shape
    E, S = Ft.size(0), U.size(1)
    da, dz, gy = hs.new_empty(T, B, L * H), ps.new_empty(ps.shape), hs.new_empty(T, B, E)
    g = hs.new_zeros(B, S) if g_ys is None else g_ys.clone()  # dLoss/dys_{t+1}
    for t in range(T - 1, -1, -1):
        gy[t] = g[:, S - E :]  # y_t is the newest entry of ys_{t+1}
        dh = output_step_back(ps[t], torch.mm(gy[t], Ft), D, g_out, g_z, t, dz[t])
        layers_step_back(dh, hs[t], None if masks is None else masks[t], upper, da[t])
        back = torch.mm(da[t], U)  # through U: the layers read ys_t
        back[:, E:] += g[:, : S - E]  # through the shift: ys_{t+1} begins with ys_t's newest
        g = back
    return da, dz, gy, g
