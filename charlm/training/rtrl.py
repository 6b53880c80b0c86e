"""Real-time recurrent learning (Williams and Zipser 1989): the exact gradient, carried forward.

Backpropagation through time stores a window's states and steps back through them, so its
gradient stops at the window's start (truncation). RTRL carries instead, for every stripe,
the sensitivity of the state to every weight of the recurrence, P_t = d s_t / d theta
(S x n, the state s = h, or [h; c] for an LSTM, and n weights: W_ih, W_hh, both biases and
the embedding), updated at each step by the chain rule::

    a_t = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh                pre-activations (G)
    d a_t / d theta = W_hh P^h_{t-1} + (the direct term: x_t, h_{t-1}, 1, W_ih on each row)
    P_t = (d s_t / d a_t) (d a_t / d theta) + (d s_t / d s_{t-1}) P_{t-1}

and the loss at step t adds (d L_t / d h_t) P^h_t to each weight's gradient at once: online,
exact (for fixed weights it is the gradient of the loss over all steps since the stripe
started), with no horizon. The product W_hh P^h costs G x H x n per stripe and step, n
growing as H^2: the O(H^4) of the lectures, where BPTT's step costs O(H^2). The sensitivity
is the run's carried state beside h: checkpoints keep it, so a resume is exact.

The decoder (and the loss) need no recurrence: its gradient is autograd's, step by step.
Only one layer of ``--model rnn`` or ``lstm`` is supported, without a state penalty.
"""

from __future__ import annotations

import torch
from torch import nn

from charlm.config.schema import RunConfig
from charlm.errors import ConfigError
from charlm.models.lm import RNNLM, Hidden, hidden_tensors

CELLS = ("rnn", "lstm")
MAX_HIDDEN = 128  # above, the sensitivity's memory (B x S x n floats) passes gigabytes


def check(config: RunConfig, world: int = 1) -> None:
    """Refuse ``--algorithm rtrl`` where it is not written or would not fit."""
    if config.train.algorithm != "rtrl":
        return
    model, train = config.model, config.train
    if model.model not in CELLS or model.num_layers != 1:
        raise ConfigError(
            f"--algorithm rtrl trains one layer of --model rnn or lstm (got --model "
            f"{model.model} with --layers {model.num_layers}): change them, or drop --algorithm"
        )
    if model.hidden_size > MAX_HIDDEN:
        raise ConfigError(
            f"--algorithm rtrl carries H^2-sized sensitivities per unit: --hidden-size "
            f"{model.hidden_size} is too large, use at most {MAX_HIDDEN}"
        )
    if train.amp not in ("auto", "off"):
        raise ConfigError(f"--algorithm rtrl computes in float32: drop --amp {train.amp}")
    if train.state_penalty:
        raise ConfigError("--state-penalty is not written for --algorithm rtrl: drop one of them")
    if world > 1:
        raise ConfigError(
            "--algorithm rtrl runs in one process: drop --nproc (each rank's stripes would "
            "carry their own sensitivities, but the gradients bypass the data-parallel wrapper)"
        )


class RTRL:
    """The sensitivities of one model's recurrence, and the gradient they give each window."""

    def __init__(self, model: RNNLM) -> None:
        self.model, self.lstm = model, model.cfg.model == "lstm"
        rnn = model.rnn
        self.weights = [getattr(rnn, f"{n}_l0") for n in ("weight_ih", "weight_hh")]
        self.weights += [getattr(rnn, f"{n}_l0") for n in ("bias_ih", "bias_hh")]
        self.params = [*self.weights, model.embed.weight]  # theta, flattened in this order
        self.sizes = [p.numel() for p in self.params]
        self.H = rnn.hidden_size

    @property
    def width(self) -> int:
        """S: the state's width, h (and c)."""
        return self.H * (2 if self.lstm else 1)

    def zeros(self, batch: int, device: torch.device | str = "cpu") -> torch.Tensor:
        """The sensitivity of a stripe that starts now: (B, S, n)."""
        dtype = self.params[0].dtype
        return torch.zeros(batch, self.width, sum(self.sizes), dtype=dtype, device=device)

    def window(
        self, x: torch.Tensor, y: torch.Tensor, hidden: Hidden, P: torch.Tensor, scale: float
    ) -> tuple[torch.Tensor, Hidden, torch.Tensor]:
        """Tokens ``x`` and targets ``y`` (B, T) from ``hidden`` and sensitivities ``P``: the
        summed loss, times ``scale``, has its gradient added to every weight's ``.grad``.
        Returns the summed loss (unscaled, detached), the state and the sensitivities after."""
        model = self.model
        raw = model.embed(x).detach()  # (B, T, E)
        # The embedding dropout's mask, kept: the embedding's direct term is scaled by it too.
        mask = model.embed_drop(torch.ones_like(raw))
        emb = raw * mask
        states = [t[0] for t in hidden_tensors(hidden)]  # h (B, H), and c
        grad = torch.zeros(P.size(-1), dtype=P.dtype, device=P.device)
        total = torch.zeros((), dtype=torch.float64)
        for t in range(x.size(1)):
            states, P = self._step(x[:, t], emb[:, t], mask[:, t], states, P)
            h = states[0].requires_grad_()
            nll = model.nll_from(model.drop(h)[:, None], y[:, t : t + 1]).sum()
            (nll * scale).backward()  # the decoder's gradient, and d L_t / d h_t
            grad += torch.einsum("bh,bhn->n", h.grad, P[:, : self.H])
            states[0] = h.detach()
            total += nll.detach().double()
        self._add(grad)
        new = [s[None] for s in states]
        return total, (new[0], new[1]) if self.lstm else new[0], P

    def _add(self, grad: torch.Tensor) -> None:
        for p, g in zip(self.params, grad.split(self.sizes), strict=True):
            if p.requires_grad:
                g = g.view_as(p).to(p.dtype)
                p.grad = g.clone() if p.grad is None else p.grad + g

    def _step(
        self,
        tokens: torch.Tensor,
        x: torch.Tensor,
        mask: torch.Tensor,
        states: list[torch.Tensor],
        P: torch.Tensor,
    ) -> tuple[list[torch.Tensor], torch.Tensor]:
        """One step of the state (B, H) and its sensitivity (B, S, n)."""
        w_ih, w_hh, b_ih, b_hh = (w.detach() for w in self.weights)
        h = states[0]
        a = x @ w_ih.T + b_ih + h @ w_hh.T + b_hh  # (B, G)
        dA = torch.matmul(w_hh, P[:, : self.H])  # (B, G, n): through the last state
        self._direct(dA, tokens, x, h, mask, w_ih)
        if not self.lstm:
            h = torch.tanh(a)
            return [h], (1 - h * h)[..., None] * dA
        return _lstm_step(a, states[1], dA, P[:, self.H :])

    def _direct(
        self,
        dA: torch.Tensor,
        tokens: torch.Tensor,
        x: torch.Tensor,
        h: torch.Tensor,
        mask: torch.Tensor,
        w_ih: torch.Tensor,
    ) -> None:
        """Add d a_t / d theta at fixed state to ``dA`` (B, G, n), block by block, in place:
        row g of W_ih sees x, row g of W_hh sees h, the biases 1, and the embedding row of
        the token read sees W_ih (times the dropout mask)."""
        B, G, _ = dA.shape
        d_ih, d_hh, db_ih, db_hh, d_emb = dA.split(self.sizes, dim=2)
        d_ih.view(B, G, G, -1).diagonal(dim1=1, dim2=2).add_(x[..., None])
        d_hh.view(B, G, G, -1).diagonal(dim1=1, dim2=2).add_(h[..., None])
        db_ih.diagonal(dim1=1, dim2=2).add_(1.0)
        db_hh.diagonal(dim1=1, dim2=2).add_(1.0)
        rows = d_emb.view(B, G, -1, x.size(1))  # (B, G, V, E)
        stripes = torch.arange(B, device=dA.device)
        rows[stripes, :, tokens, :] += w_ih[None] * mask[:, None, :]


class CarriedRTRL:
    """RTRL in a training run: the sensitivities of every stripe, carried from window to
    window as the hidden state is, and reset, checkpointed and restored with it."""

    def __init__(self, model: RNNLM, batch: int, device: torch.device) -> None:
        self.learner, self.batch, self.device = RTRL(model), batch, device
        self.restart()

    def restart(self) -> None:
        """Every stripe starts afresh: no weight has moved its state yet."""
        self.P = self.learner.zeros(self.batch, self.device)

    def keep(self, keep: torch.Tensor) -> None:
        """Restart the stripes where ``keep`` (B,) is False, as their states restart."""
        self.P = torch.where(keep[:, None, None], self.P, torch.zeros_like(self.P))

    def train(self, x: torch.Tensor, y: torch.Tensor, hidden: Hidden) -> tuple[float, Hidden]:
        """One window's mean loss; its gradient is left in the weights' ``.grad``."""
        total, hidden, self.P = self.learner.window(x, y, hidden, self.P, 1.0 / x.numel())
        return float(total) / x.numel(), hidden

    def rows(self) -> torch.Tensor:
        """The sensitivities as one state row per stripe (1, B, S * n), for a checkpoint."""
        return self.P.reshape(1, self.batch, -1)

    def load_rows(self, rows: torch.Tensor) -> None:
        self.P = rows.reshape(self.P.shape).to(self.device, self.P.dtype)


def _lstm_step(
    a: torch.Tensor, c: torch.Tensor, dA: torch.Tensor, P_c: torch.Tensor
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """An LSTM step (torch's gate order i, f, g, o) and the sensitivity of [h; c] (B, 2H, n)
    from the pre-activations' ``dA`` and the cell's last sensitivity ``P_c``."""
    i, f, g, o = a.chunk(4, dim=1)
    i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
    c_new = f * c + i * g
    tc = torch.tanh(c_new)
    d_i, d_f, d_g, d_o = dA.chunk(4, dim=1)  # (B, H, n) each

    def col(v: torch.Tensor) -> torch.Tensor:
        return v[..., None]

    # c' = f c + i g: through each gate's pre-activation, and through c itself
    P_c = (
        col(i * (1 - i) * g) * d_i
        + col(f * (1 - f) * c) * d_f
        + col(i * (1 - g * g)) * d_g
        + col(f) * P_c
    )
    # h' = o tanh(c'): through o's pre-activation and through c'
    P_h = col(o * (1 - o) * tc) * d_o + col(o * (1 - tc * tc)) * P_c
    return [o * tc, c_new], torch.cat([P_h, P_c], dim=1)


def flat_gradient(model: nn.Module) -> torch.Tensor:
    """Every parameter's .grad, flattened, for comparing two ways of computing it."""
    return torch.cat([p.grad.reshape(-1) for p in model.parameters() if p.grad is not None])
