"""Where a model is surprised: bits per token, and the stretches of text it found hardest."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Span:
    start: int  # first token
    end: int  # one past the last token
    bits: float  # mean surprisal over the span, bits per token


def hardest_spans(bits: np.ndarray, width: int, count: int) -> list[Span]:
    """The ``count`` non-overlapping ``width``-token windows with the highest mean surprisal.

    ``bits`` may hold NaN (the first token, never predicted): it counts as 0.
    """
    b = np.nan_to_num(np.asarray(bits, dtype=np.float64), nan=0.0)
    width = max(1, min(width, len(b)))
    if len(b) == 0:
        return []
    sums = np.convolve(b, np.ones(width), mode="valid")  # sums[s] = b[s : s + width].sum()
    taken = np.zeros(len(b), bool)
    spans: list[Span] = []
    for s in np.argsort(-sums, kind="stable"):
        if len(spans) == count:
            break
        if not taken[s : s + width].any():
            taken[s : s + width] = True
            spans.append(Span(int(s), int(s) + width, float(sums[s] / width)))
    return spans


def bits_per_char(bits: np.ndarray, chars: int) -> float:
    """Total surprisal of the scored tokens over the characters they spell, as evaluate does."""
    return float(np.nansum(bits) / max(chars, 1))


def both_ways(forward: np.ndarray, backward: np.ndarray) -> np.ndarray:
    """Per token, the lesser of its forward and backward surprisal: high only where the text
    surprises from both sides (a typo), not where one side cannot see it coming (a name's
    first letter). A side that never predicts a token (NaN) leaves it to the other."""
    return np.fmin(forward, backward)
