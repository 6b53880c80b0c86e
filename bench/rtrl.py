"""What RTRL costs: time and memory per step against BPTT as the hidden size grows.

For --model rnn and lstm, one layer of H units (H = 8, 16, 32, 64; an embedding of 16, the
65 characters of tiny-shakespeare, 8 stripes, windows of 16 steps), the time per token of
one training window's gradient, by BPTT (autograd through the window) and by RTRL
(charlm.training.rtrl, the sensitivities carried), on one thread; and the memory each
carries or keeps: RTRL's sensitivity (B x S x n floats, S the state's width and n the
weights of the recurrence) against the states BPTT keeps for the backward pass (B x T x
the gates and states of each step). The memory is counted from the shapes, not measured.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from bench.modes import mode
from charlm.config.schema import ModelConfig
from charlm.models.lm import RNNLM
from charlm.training.rtrl import RTRL

B, T, V, E = 8, 16, 65, 16
SIZES = {"full": (8, 16, 32, 64), "quick": (8, 16, 32), "smoke": (4,)}
REPEATS = {"full": 3, "quick": 2, "smoke": 1}


def _model(cell: str, hidden: int) -> RNNLM:
    torch.manual_seed(0)
    cfg = ModelConfig(model=cell, vocab_size=V, embed_size=E, hidden_size=hidden, dropout=0.0)
    return RNNLM(cfg)


def _best(fn: Any, repeats: int) -> float:
    """The fastest of ``repeats`` calls, in seconds: the host's other work only adds."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def row(cell: str, hidden: int, repeats: int) -> dict[str, Any]:
    model = _model(cell, hidden)
    x, y = torch.randint(0, V, (B, T)), torch.randint(0, V, (B, T))
    learner = RTRL(model)
    P = learner.zeros(B)
    hidden0 = model.init_hidden(B)

    def bptt() -> None:
        model.zero_grad()
        model(x, hidden0, targets=y).nll.mean().backward()

    def rtrl() -> None:
        model.zero_grad()
        learner.window(x, y, hidden0, P, 1.0 / x.numel())

    gates = 4 if cell == "lstm" else 1
    kept = B * T * hidden * (gates + 2 * (gates > 1) + 1)  # per step: gates, c, tanh c, h
    return {
        "model": cell,
        "hidden": hidden,
        "weights_in_recurrence": P.size(-1),
        "bptt_us_per_token": round(_best(bptt, repeats) / (B * T) * 1e6, 1),
        "rtrl_us_per_token": round(_best(rtrl, repeats) / (B * T) * 1e6, 1),
        "bptt_kept_mb": round(kept * 4 / 2**20, 3),
        "rtrl_sensitivity_mb": round(P.numel() * 4 / 2**20, 3),
    }


def run(quick: bool = False, smoke: bool = False) -> dict[str, Any]:
    m = mode(quick, smoke)
    torch.set_num_threads(1)
    rows = [row(cell, h, REPEATS[m]) for cell in ("rnn", "lstm") for h in SIZES[m]]
    return {"batch": B, "window": T, "vocab": V, "embed": E, "threads": 1, "rows": rows}


def main() -> None:
    import json

    print(json.dumps(run(), indent=1))


if __name__ == "__main__":
    main()
