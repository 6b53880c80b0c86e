"""What charlm's hand-written LSTM time loops (peephole.py, lstmloop.py) share: products on
oneDNN, and one step of the LSTM's backward.

A step's product against a weight packed once per window by oneDNN ran far faster than
torch.mm's (MKL) in float32, as fast as inside nn.LSTM; in bf16 torch.mm already goes to
oneDNN, and the packed weight still saved time (docs/records/cells.md, "Peephole LSTM", and
docs/records/defaults.md, "The LSTM's own loop in bf16"). The packing operators are private to
torch, so they are looked up and tried, never assumed: without them (or in float64, which the
gradient checks use) the products are torch's.
"""

from __future__ import annotations

import torch

_ONEDNN = torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")
USE_ONEDNN = True  # switched off by the benchmark's attempt without it
_PACKABLE = (torch.float32, torch.bfloat16)


class StepProduct:
    """``a @ w.T`` for many ``a`` (B, n) against one ``w`` (m, n), of w's dtype."""

    def __init__(self, w: torch.Tensor, rows: int) -> None:
        self.packed = None
        if USE_ONEDNN and _ONEDNN and w.device.type == "cpu" and w.dtype in _PACKABLE:
            self.packed = _packed(w, rows)
        self.w_t = w.t()

    def __call__(self, a: torch.Tensor) -> torch.Tensor:
        if self.packed is not None:
            out = _onednn_product(a, self.packed)
            if out is not None:
                return out
            self.packed = None  # refused once: torch's product from now on
        return a @ self.w_t


def weight_grad(d: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``d.T @ x`` for the whole window: (N, m), (N, n) -> (m, n); oneDNN where it runs.

    In float32 both sides are copied transposed for oneDNN, which with the copies still beat
    MKL (docs/records/cells.md, "Peephole LSTM"). bf16 products go to oneDNN through torch.mm
    already.
    """
    if USE_ONEDNN and _ONEDNN and d.device.type == "cpu" and d.dtype == torch.float32:
        out = _onednn_product(d.t().contiguous(), x.t().contiguous().to_mkldnn())
        if out is not None:
            return out
    return d.t() @ x


# The two private operators, each tried in one place: None tells the caller to use torch.mm.
def _packed(w: torch.Tensor, rows: int) -> torch.Tensor | None:
    """``w`` (m, n) packed by oneDNN for products with ``rows`` rows; None if it cannot be."""
    try:
        return torch.ops.mkldnn._reorder_linear_weight(w.contiguous(), rows)
    except (AttributeError, RuntimeError):  # missing from this torch, or refused
        return None


def _onednn_product(a: torch.Tensor, w: torch.Tensor) -> torch.Tensor | None:
    """``a @ w.T`` on oneDNN, ``w`` packed or an mkldnn tensor; None if it cannot be."""
    try:
        return torch.ops.mkldnn._linear_pointwise(a, w, None, "none", [], "")
    except (AttributeError, RuntimeError):  # missing from this torch, or its signature changed
        return None


def sigmoid_grad(grad: torch.Tensor, s: torch.Tensor, out: torch.Tensor) -> None:
    """out = grad * s * (1 - s), the gradient through s = sigmoid(a), in one fused op."""
    torch.ops.aten.sigmoid_backward.grad_input(grad, s, grad_input=out)


def tanh_grad(grad: torch.Tensor, t: torch.Tensor, out: torch.Tensor) -> None:
    """out = grad * (1 - t^2), the gradient through t = tanh(a), in one fused op."""
    torch.ops.aten.tanh_backward.grad_input(grad, t, grad_input=out)


def lstm_step_backward(
    dh: torch.Tensor,
    dc: torch.Tensor,
    gates: torch.Tensor,
    d_pre: torch.Tensor,
    c_prev: torch.Tensor,
    tanh_c: torch.Tensor,
    tmp: torch.Tensor,
    peep: torch.Tensor | None = None,
) -> torch.Tensor:
    """One step of an LSTM layer's backward, the gates ordered i, f, g, o (nn.LSTM's order).

    ``dh`` and ``dc`` are the gradients reaching h_t and c_t; ``gates`` (B, 4H) holds the
    step's activations and ``d_pre`` (B, 4H) receives their pre-activations' gradients.
    ``peep`` (3, H): the peephole weights of i and f (on c_{t-1}) and o (on c_t), if any.
    Returns the gradient reaching c_{t-1}.
    """
    i, f, g, o = gates.chunk(4, 1)
    di, df, dg, do = d_pre.chunk(4, 1)
    # h = o * tanh(c): to o's pre-activation, and to c (through tanh and o's peephole)
    sigmoid_grad(torch.mul(dh, tanh_c, out=tmp), o, out=do)
    dc = dc + torch.ops.aten.tanh_backward(dh * o, tanh_c)
    if peep is not None:
        dc.addcmul_(do, peep[2])
    # c = f * c_prev + i * g: to the pre-activations of i, f and g
    sigmoid_grad(torch.mul(dc, g, out=tmp), i, out=di)
    sigmoid_grad(torch.mul(dc, c_prev, out=tmp), f, out=df)
    tanh_grad(torch.mul(dc, i, out=tmp), g, out=dg)
    dc = dc * f
    if peep is not None:
        dc.addcmul_(di, peep[0]).addcmul_(df, peep[1])
    return dc
