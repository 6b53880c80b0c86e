"""Features of a text, one value per token, and the units that correlate with them.

Karpathy, Johnson and Fei-Fei (2015) found single LSTM cells tracking quotes, line position
and bracket depth. Each feature here is a function of the characters read so far, taken at a
token's last character: what the network's state after that token could know.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from charlm.errors import ConfigError

OPENING, CLOSING = "([{", ")]}"
VOWELS = frozenset("aeiouAEIOU")


def _quotes(text: str) -> np.ndarray:
    """1 inside a double-quoted span: from the opening quote up to (not with) the closing one."""
    inside, out = False, np.zeros(len(text))
    for i, ch in enumerate(text):
        if ch == '"':
            inside = not inside
        out[i] = inside
    return out


def _line_position(text: str) -> np.ndarray:
    """Characters since the last newline (0 on the newline itself)."""
    pos, out = 0, np.zeros(len(text))
    for i, ch in enumerate(text):
        pos = 0 if ch == "\n" else pos + 1
        out[i] = pos
    return out


def _brackets(text: str) -> np.ndarray:
    """Nesting depth of ( [ { after each character (never below 0)."""
    depth, out = 0, np.zeros(len(text))
    for i, ch in enumerate(text):
        if ch in OPENING:
            depth += 1
        elif ch in CLOSING:
            depth = max(0, depth - 1)
        out[i] = depth
    return out


def _indent(text: str) -> np.ndarray:
    """Leading spaces and tabs of the current line, as far as they have been read."""
    indent, leading, out = 0, True, np.zeros(len(text))
    for i, ch in enumerate(text):
        if ch == "\n":
            indent, leading = 0, True
        elif leading and ch in " \t":
            indent += 1
        else:
            leading = False
        out[i] = indent
    return out


def _capitals(text: str) -> np.ndarray:
    return np.array([ch.isupper() for ch in text], dtype=float)


def _vowels(text: str) -> np.ndarray:
    return np.array([ch in VOWELS for ch in text], dtype=float)


FEATURES: dict[str, Callable[[str], np.ndarray]] = {
    "quotes": _quotes,
    "line-position": _line_position,
    "brackets": _brackets,
    "indent": _indent,
    "capitals": _capitals,
    "vowels": _vowels,
}


def regex_feature(pattern: str) -> Callable[[str], np.ndarray]:
    """1 on every character inside a match of ``pattern``."""
    try:
        compiled = re.compile(pattern)
    except re.error as e:
        raise ConfigError(
            f"--find-regex {pattern!r} is not a valid regular expression: {e}"
        ) from None

    def feature(text: str) -> np.ndarray:
        out = np.zeros(len(text))
        for m in compiled.finditer(text):
            out[m.start() : m.end()] = 1.0
        return out

    return feature


def feature_function(name: str) -> Callable[[str], np.ndarray]:
    if name not in FEATURES:
        raise ConfigError(f"unknown --find '{name}': choose one of {', '.join(FEATURES)}")
    return FEATURES[name]


# Features of single characters rather than of the text read so far: a word token takes
# their mean over its characters (the share of capitals in "The"), not its last character.
PER_CHARACTER = frozenset({"capitals", "vowels", "regex"})


def per_token(
    feature: Callable[[str], np.ndarray], pieces: list[str], mean: bool = False
) -> np.ndarray:
    """The feature over the tokens' text, per token (T,): its value at the token's last
    character, or with ``mean`` its mean over the token's characters.

    A token that spells nothing (e.g. a tokenizer's unknown marker) takes the value before it.
    """
    text = "".join(pieces)
    values = feature(text)
    if not text:
        return np.zeros(len(pieces))
    lengths = np.array([len(p) for p in pieces])
    ends = np.cumsum(lengths)
    last = values[np.maximum(ends - 1, 0)]
    if not mean:
        return last
    sums = np.concatenate([[0.0], np.cumsum(values)])
    means = (sums[ends] - sums[ends - lengths]) / np.maximum(lengths, 1)
    return np.where(lengths > 0, means, last)


@dataclass
class Match:
    """One unit and its Pearson correlation with a feature."""

    name: str  # kind of state (h, c or a gate name)
    layer: int
    index: int
    r: float


def correlations(x: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Pearson r of every column of ``x`` (T, U) with ``f`` (T,); 0 where either is constant."""
    fc = (f - f.mean()).astype(np.float32)
    # float32 halves the memory of a (T, U) copy; sums still accumulate pairwise in NumPy.
    xc = x - x.mean(axis=0, dtype=np.float64).astype(np.float32)
    cov = fc @ xc
    norm = np.sqrt(np.einsum("tu,tu->u", xc, xc, dtype=np.float64)) * np.sqrt(fc @ fc)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(norm > 0, cov / norm, 0.0)
    return r


def rank_units(states: dict[str, np.ndarray], f: np.ndarray, top: int | None = None) -> list[Match]:
    """Every unit of ``states`` (name -> (T, L, H)) ranked by |r| with ``f``, best first."""
    matches: list[Match] = []
    for name, a in states.items():
        T, L, H = a.shape
        r = correlations(a.reshape(T, L * H), f).reshape(L, H)
        matches += [Match(name, lay, i, float(r[lay, i])) for lay in range(L) for i in range(H)]
    matches.sort(key=lambda m: -abs(m.r))
    return matches if top is None else matches[:top]
