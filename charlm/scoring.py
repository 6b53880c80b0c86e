"""Scoring text under a model: total nats, tokens, bits per character.

Training's validation loss and ``charlm evaluate`` both call ``score_tokens``, so the two
agree exactly on the same text and batch size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from charlm.data import eval_windows
from charlm.model import RNNLM, detach_hidden


@dataclass
class Score:
    nats: float  # total negative log-likelihood of the scored tokens
    tokens: int  # tokens scored (every token but the first)
    chars: int  # characters those tokens spell

    @property
    def nats_per_token(self) -> float:
        return self.nats / max(self.tokens, 1)

    @property
    def bits_per_char(self) -> float:
        # Normalised by raw characters so char, word and subword models compare directly.
        return self.nats / (max(self.chars, 1) * math.log(2))

    @property
    def perplexity(self) -> float:
        return math.exp(min(self.nats_per_token, 700.0))


@torch.no_grad()
def score_tokens(
    model: RNNLM,
    tokens: np.ndarray,
    batch_size: int = 32,
    bptt: int = 256,
    device: torch.device | str = "cpu",
) -> tuple[float, int]:
    """Total nats and count of every target token, hidden state carried along stripes."""
    was_training = model.training
    model.eval()
    hidden, total, count = None, 0.0, 0
    for x, y, mask in eval_windows(tokens, batch_size, bptt):
        x, y, mask = x.to(device), y.to(device), mask.to(device)
        nll, hidden = model.nll(x, y, hidden)
        hidden = detach_hidden(hidden)
        total += float((nll * mask.reshape(-1)).sum())
        count += int(mask.sum())
    model.train(was_training)
    return total, count
