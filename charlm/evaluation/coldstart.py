"""How well a model starts from the zero state ("cold") against a carried one ("warm").

Every sample, prime and short text starts cold; training carries state across windows, so a
model that never saw a cold start pays for it on the first tokens (issue 12.1). The figure:
the mean loss of ``span`` tokens at random positions of a text, once from the zero state and
once after ``burn`` tokens of the text just before them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from charlm.models.lm import RNNLM


@dataclass(frozen=True)
class ColdWarm:
    cold: float  # nats per token from the zero state
    warm: float  # nats per token after the burn-in
    positions: int

    @property
    def gap(self) -> float:
        return self.cold - self.warm


@torch.no_grad()
def cold_warm(
    model: RNNLM,
    ids: np.ndarray,
    span: int = 100,
    burn: int = 500,
    positions: int = 300,
    seed: int = 0,
) -> ColdWarm:
    """Mean loss of ``span`` tokens at ``positions`` random places of ``ids``, cold and warm."""
    if len(ids) < burn + span + 2:
        raise ValueError(f"need at least {burn + span + 2} tokens, got {len(ids)}")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    offsets = np.random.default_rng(seed).integers(burn, len(ids) - span - 1, positions)

    def rows(a: int, b: int) -> torch.Tensor:  # (P, b - a): ids[p + a : p + b] at every p
        block = np.stack([ids[p + a : p + b] for p in offsets]).astype(np.int64)
        return torch.as_tensor(block, device=device)

    x, y = rows(0, span), rows(1, span + 1)
    cold = model(x, model.init_hidden(positions, device), targets=y).nll
    warm_state = model.advance(rows(-burn, 0), model.init_hidden(positions, device))
    warm = model(x, warm_state, targets=y).nll
    model.train(was_training)
    return ColdWarm(float(cold.mean()), float(warm.mean()), positions)
