"""Choosing the next token from the model's scores: temperature, bias, top-k, top-p, greedy.

Everything works on a batch of score rows (B, V) in NumPy, so one stream and 64 streams
run the same code. Scores are logits or log-probabilities: only their softmax matters.
Pure arithmetic: no model here (``charlm.generation.generate`` drives one).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from charlm.errors import ConfigError


@dataclass
class SamplingConfig:
    """How each next token is drawn from the model's distribution."""

    temperature: float = 1.0  # logits divided by T: below 1 sharper, above 1 flatter
    bias: float = 0.0  # Graves (2013): p ~ exp((1 + B) * logit), i.e. temperature 1 / (1 + B)
    top_k: int | None = None  # keep only the k most likely tokens
    top_p: float | None = None  # keep the smallest set of tokens holding this much probability
    greedy: bool = False  # always the most likely token
    banned: tuple[int, ...] = ()  # ids never drawn (a word model's <unk>): masked out

    def __post_init__(self) -> None:
        if math.isinf(self.temperature):  # logits / inf: every token alike, not a model
            raise ConfigError(f"--temperature must be finite (got {self.temperature})")
        if not self.temperature > 0:
            raise ConfigError(
                f"--temperature must be greater than 0 (got {self.temperature}); "
                "use --greedy for the most likely token"
            )
        if not 0 <= self.bias < math.inf:
            raise ConfigError(f"--bias must be 0 or more, and finite (got {self.bias})")
        if self.top_k is not None and self.top_k < 1:
            raise ConfigError(f"--top-k must be at least 1 (got {self.top_k})")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise ConfigError(f"--top-p must be in (0, 1] (got {self.top_p})")

    @property
    def scale(self) -> float:
        """What the logits are multiplied by: (1 + bias) / temperature."""
        return (1.0 + self.bias) / self.temperature


def distribution(scores: np.ndarray, cfg: SamplingConfig) -> np.ndarray:
    """Next-token probabilities (B, V) in float64 after scaling and truncation."""
    w = _weights(scores, cfg)
    return w / w.sum(axis=-1, keepdims=True)


def _weights(scores: np.ndarray, cfg: SamplingConfig) -> np.ndarray:
    """Unnormalised probabilities (B, V): sampling needs no division, so it skips one."""
    z = _scaled(scores, cfg)
    z -= z.max(axis=-1, keepdims=True)
    np.exp(z, out=z)
    if cfg.top_p is not None and cfg.top_p < 1:
        z = _nucleus(z / z.sum(axis=-1, keepdims=True), cfg.top_p)
    return z


def _scaled(scores: np.ndarray, cfg: SamplingConfig) -> np.ndarray:
    """Logits times (1 + bias) / temperature in float64, -inf outside the top k."""
    z = np.multiply(scores, cfg.scale, dtype=np.float64)
    if cfg.top_k is not None and cfg.top_k < z.shape[-1]:
        keep = np.argpartition(-z, cfg.top_k - 1, axis=-1)[:, : cfg.top_k]
        masked = np.full_like(z, -np.inf)
        np.put_along_axis(masked, keep, np.take_along_axis(z, keep, axis=-1), axis=-1)
        z = masked
    return z


def _nucleus(p: np.ndarray, top_p: float) -> np.ndarray:
    """Keep the most likely tokens until their mass reaches ``top_p`` (always at least one)."""
    order = np.argsort(-p, axis=-1, kind="stable")
    sorted_p = np.take_along_axis(p, order, axis=-1)
    before = np.cumsum(sorted_p, axis=-1) - sorted_p  # mass of the more likely tokens
    keep_sorted = before < top_p
    keep = np.zeros_like(keep_sorted)
    np.put_along_axis(keep, order, keep_sorted, axis=-1)
    p = np.where(keep, p, 0.0)
    return p / p.sum(axis=-1, keepdims=True)


def choose(scores: np.ndarray, cfg: SamplingConfig, rng: np.random.Generator) -> np.ndarray:
    """One token id per row (B,), an exact draw from ``distribution(scores, cfg)``."""
    scores = _ban(scores, cfg.banned)
    if cfg.greedy:
        return np.argmax(scores, axis=-1)
    if cfg.top_p is None or cfg.top_p >= 1:
        # Gumbel-max: argmax(z + Gumbel noise) is a draw from softmax(z); fewer steps than
        # building the distribution, which matters at thousands of draws a second.
        z = _scaled(scores, cfg)
        z += rng.gumbel(size=z.shape)
        return np.argmax(z, axis=-1)
    return _inverse_cdf(_weights(scores, cfg), rng)


def _ban(scores: np.ndarray, banned: tuple[int, ...]) -> np.ndarray:
    """``scores`` with the banned ids at -inf: the softmax renormalises over the rest, which
    is the distribution given "not banned", as resampling would draw, at a fixed cost."""
    if not banned:
        return scores
    scores = np.array(scores, dtype=np.float64)  # the stepper may reuse its buffer
    scores[:, list(banned)] = -np.inf
    return scores


def _inverse_cdf(w: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    cum = np.cumsum(w, axis=-1)
    u = rng.random((w.shape[0], 1))
    u *= cum[:, -1:]
    ids = np.count_nonzero(cum <= u, axis=-1)
    if ids.max() == w.shape[-1]:
        # u rounded up to the total: take the last token that has any probability.
        last = w.shape[-1] - 1 - np.argmax(w[:, ::-1] > 0, axis=-1)
        ids = np.minimum(ids, last)
    return ids
