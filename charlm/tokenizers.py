"""Tokenizers behind one protocol: the model and the training loop never know which is in use.

A tokenizer turns text into integer ids and back, reports characters it cannot encode,
and serialises itself into a JSON-able dict stored inside every checkpoint.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from charlm.config import DataConfig


class UnknownCharactersError(ValueError):
    """Text holds characters the vocabulary lacks; ``unknown`` lists (position, char)."""

    def __init__(self, unknown: list[tuple[int, str]]) -> None:
        self.unknown = unknown
        super().__init__(describe_unknown(unknown))


def describe_unknown(unknown: list[tuple[int, str]], limit: int = 5) -> str:
    shown = ", ".join(f"{c!r} at {pos}" for pos, c in unknown[:limit])
    more = f" and {len(unknown) - limit} more" if len(unknown) > limit else ""
    return f"{len(unknown)} character(s) not in the model's vocabulary: {shown}{more}"


class Tokenizer(Protocol):
    kind: str

    @property
    def vocab_size(self) -> int: ...

    def encode(self, text: str) -> np.ndarray:
        """Ids of ``text``; raises UnknownCharactersError if it cannot be encoded."""
        ...

    def decode(self, ids: Sequence[int] | np.ndarray) -> str: ...

    def unknown(self, text: str) -> list[tuple[int, str]]:
        """(position, character) for every character of ``text`` it cannot represent."""
        ...

    def to_dict(self) -> dict[str, Any]: ...


def _codepoints(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)


class CharTokenizer:
    """One id per distinct character, in code-point order (so ids are stable)."""

    kind = "char"

    def __init__(self, chars: Sequence[str]) -> None:
        self.chars = sorted(set(chars))
        self._codes = _codepoints("".join(self.chars))
        self._table = np.array(self.chars, dtype=object)

    @classmethod
    def train(cls, text: str) -> CharTokenizer:
        return cls(
            list(np.unique(_codepoints(text)).astype(np.uint32).tobytes().decode("utf-32-le"))
        )

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def _lookup(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        cps = _codepoints(text)
        ids = np.searchsorted(self._codes, cps)
        ids = np.minimum(ids, len(self._codes) - 1)
        return ids, self._codes[ids] == cps

    def encode(self, text: str) -> np.ndarray:
        ids, found = self._lookup(text)
        if not found.all():
            raise UnknownCharactersError(self.unknown(text))
        return ids.astype(token_dtype(self.vocab_size))

    def unknown(self, text: str) -> list[tuple[int, str]]:
        _, found = self._lookup(text)
        return [(int(i), text[i]) for i in np.flatnonzero(~found)]

    def decode(self, ids: Sequence[int] | np.ndarray) -> str:
        return "".join(self._table[np.asarray(ids, dtype=np.int64)])

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "chars": "".join(self.chars)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CharTokenizer:
        return cls(list(d["chars"]))


def token_dtype(vocab_size: int) -> type[np.unsignedinteger]:
    """The smallest unsigned integer type that holds every id."""
    if vocab_size <= 1 << 8:
        return np.uint8
    if vocab_size <= 1 << 16:
        return np.uint16
    return np.uint32


_REGISTRY: dict[str, Any] = {"char": CharTokenizer}


def register(kind: str, cls: Any) -> None:
    _REGISTRY[kind] = cls


def tokenizer_from_dict(d: dict[str, Any]) -> Tokenizer:
    kind = d.get("kind")
    if kind not in _REGISTRY:
        raise ValueError(f"unknown tokenizer kind {kind!r} in checkpoint")
    return _REGISTRY[kind].from_dict(d)


def build_tokenizer(config: DataConfig, text: str) -> Tokenizer:
    """Train the configured tokenizer on ``text`` (the training split, or all text for chars)."""
    if config.tokenizer not in _REGISTRY:
        raise ValueError(f"tokenizer '{config.tokenizer}' is not available")
    cls = _REGISTRY[config.tokenizer]
    return cls.train(text) if config.tokenizer == "char" else cls.train(text, config)
