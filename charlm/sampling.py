"""Generating text from a model."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from charlm.model import RNNLM


@torch.no_grad()
def sample_ids(
    model: RNNLM,
    length: int,
    prime: Sequence[int],
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> list[int]:
    """``length`` new ids continuing ``prime`` (at least one id), sampled one at a time."""
    was_training = model.training
    model.eval()
    x = torch.tensor([list(prime)], dtype=torch.long, device=device)
    logits, hidden = model(x)
    out: list[int] = []
    for _ in range(length):
        probs = torch.softmax(logits[0, -1].float() / temperature, dim=-1).cpu()
        nxt = int(torch.multinomial(probs, 1, generator=generator))
        out.append(nxt)
        logits, hidden = model(torch.tensor([[nxt]], device=device), hidden)
    model.train(was_training)
    return out
