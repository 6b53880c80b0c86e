"""Tokenizers behind one protocol: the model and the training loop never know which is in use.

A tokenizer turns text into integer ids and back, reports characters it cannot encode,
and serialises itself into a JSON-able dict stored inside every checkpoint.
"""

from __future__ import annotations

import base64
import io
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
import sentencepiece as spm

from charlm.config.schema import DataConfig
from charlm.errors import ConfigError, UnknownCharactersError
from charlm.text.pretokenised import DETECT_CHARS, choose_word_split


def drop_unknown(text: str, unknown: list[tuple[int, str]]) -> str:
    """``text`` without the characters listed in ``unknown`` (as ``Tokenizer.unknown`` gives)."""
    if not unknown:
        return text
    bad = {c for _, c in unknown}
    return "".join(c for c in text if c not in bad)


@runtime_checkable
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

    def spelled_span(self, text: str) -> tuple[int, int]:
        """Character offsets where the first and the last token of ``text`` end.

        The scored tokens (every one but the first) spell ``text[first:last]``, so bits per
        character divide by ``last - first`` whatever the tokenizer.
        """
        ...

    def to_dict(self) -> dict[str, Any]: ...

    # The registry builds tokenizers through these two, by kind.
    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Tokenizer:
        """The tokenizer ``to_dict`` described (as stored in a checkpoint)."""
        ...

    @classmethod
    def train_chunks(cls, chunks: Iterable[str], config: DataConfig) -> Tokenizer:
        """A tokenizer learned from text chunks that end at line ends."""
        ...


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
        return cls.train_chunks([text])

    @classmethod
    def train_chunks(cls, chunks: Iterable[str], config: DataConfig | None = None) -> CharTokenizer:
        seen: set[str] = set()
        for chunk in chunks:
            seen.update(chunk)
        return cls(list(seen))

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

    def spelled_span(self, text: str) -> tuple[int, int]:
        return min(1, len(text)), len(text)

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


# Words (letters and digits, with inner apostrophes or hyphens), line ends, and runs of one
# punctuation mark ("--", "...") as single tokens. Spaces are not tokens: decode restores them.
_WORD = re.compile(r"\w+(?:['\u2019\-]\w+)*|\n|([^\w\s])\1*")
_NO_SPACE_BEFORE = frozenset(",.;:!?)]}\u2026\u2019\u201d")  # ... and closing curly quotes
_NO_SPACE_AFTER = frozenset("([{\u2018\u201c")  # and opening curly quotes
_QUOTES = frozenset("\"'")  # straight quotes alternate: opening, closing
# Whitespace mode: a token is any run of non-space characters, and each line end is <eos>.
_WHITESPACE_TOKEN = re.compile(r"[^\s]+|\n")


class WordTokenizer:
    """Words by frequency rank, ``<unk>`` for rare words, ``<eos>`` at line ends.

    Two ways to find the words (``split``): ``punct`` splits raw text into words and
    punctuation marks; ``whitespace`` takes a pre-tokenised corpus (Penn Treebank, WikiText)
    as it is, exactly as PyTorch's word_language_model reads it: the tokens are the
    whitespace-separated words, a literal ``<unk>`` is the unknown token and every line ends
    with ``<eos>``. Ids are in order of falling frequency (ties alphabetical), as an adaptive
    softmax needs.
    """

    kind = "word"
    UNK, EOS = "<unk>", "<eos>"
    unk_id = 0

    def __init__(self, words: Sequence[str], split: str = "punct") -> None:
        if split not in ("punct", "whitespace"):
            raise ValueError(f"unknown word split {split!r} in checkpoint")
        self.split = split
        self.words = [self.UNK, self.EOS, *(w for w in words if w not in (self.UNK, self.EOS))]
        self._index = {w: i for i, w in enumerate(self.words)}
        if split == "punct":
            # A literal "<eos>" or "<unk>" in raw text splits into "<", "eos", ">": never a special.
            del self._index[self.UNK], self._index[self.EOS]
        self._index["\n"] = 1
        self._pattern = _WORD if split == "punct" else _WHITESPACE_TOKEN
        self.reason = ""  # why --word-split auto chose this split (not saved)

    @classmethod
    def train_chunks(cls, chunks: Iterable[str], config: DataConfig) -> WordTokenizer:
        counts: Counter[str] = Counter()
        split, reason, pattern = config.word_split, "", _WORD
        for k, chunk in enumerate(chunks):
            if k == 0:
                split, reason = choose_word_split(config.word_split, chunk[:DETECT_CHARS])
                pattern = _WORD if split == "punct" else _WHITESPACE_TOKEN
            counts.update(m.group() for m in pattern.finditer(chunk))
        for special in ("\n", cls.UNK, cls.EOS):
            counts.pop(special, None)
        ranked = sorted((w for w, n in counts.items() if n >= config.min_freq),
                        key=lambda w: (-counts[w], w))  # fmt: skip
        if config.max_vocab is not None:
            ranked = ranked[: max(config.max_vocab - 2, 0)]
        tokenizer = cls(ranked, "punct" if split == "auto" else split)
        tokenizer.reason = reason
        return tokenizer

    @property
    def vocab_size(self) -> int:
        return len(self.words)

    def encode(self, text: str) -> np.ndarray:
        get = self._index.get
        # fromiter, not a list: a 50 MB one-line corpus never becomes millions of objects.
        ids = np.fromiter((get(m.group(), 0) for m in self._pattern.finditer(text)), np.int64)
        return ids.astype(token_dtype(self.vocab_size))

    def unknown(self, text: str) -> list[tuple[int, str]]:
        return []  # every word is representable: rare ones as <unk>

    def decode(self, ids: Sequence[int] | np.ndarray) -> str:
        if self.split == "whitespace":
            return _join_words([self.words[i] for i in np.asarray(ids, dtype=np.int64).tolist()])
        out: list[str] = []
        glue, open_quotes = True, set()  # glue: the next token attaches without a space
        for i in np.asarray(ids, dtype=np.int64).tolist():
            tok = self.words[i]
            if tok == self.EOS:
                out.append("\n")
                glue, open_quotes = True, set()
                continue
            opening = tok in _QUOTES and tok not in open_quotes
            if tok in _QUOTES:
                open_quotes ^= {tok}
            closing = tok in _QUOTES and not opening
            attach = glue or closing or tok[0] in _NO_SPACE_BEFORE or tok[0] == "-"
            if out and not tok[0].isalnum() and out[-1][-1] == tok[0]:
                attach = False  # "," "," stays two tokens, not the run ",,"
            out.append(tok if attach else " " + tok)
            # A dash run ("--") joins both neighbours; a lone "-" must not, or "X- X" would
            # decode to "X-X", which encodes as one (different) word.
            glue = opening or tok in _NO_SPACE_AFTER or tok.startswith("--")
        return "".join(out)

    def spelled_span(self, text: str) -> tuple[int, int]:
        first = last = 0
        for m in self._pattern.finditer(text):
            first, last = first or m.end(), m.end()
        return first, last

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "words": self.words[2:], "split": self.split}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> WordTokenizer:
        return cls(d["words"], d.get("split", "punct"))  # checkpoints before the split: punct


def _join_words(words: list[str]) -> str:
    """Whitespace-mode text as it was tokenised: one space between words, <eos> a line end."""
    out: list[str] = []
    line_start = True
    for w in words:
        if w == WordTokenizer.EOS:
            out.append("\n")
            line_start = True
        else:
            out.append(w if line_start else " " + w)
            line_start = False
    return "".join(out)


# SentencePiece turns spaces into U+2581 internally, so a literal U+2581 would come back as a
# space: encode splits on it and joins the parts with this control symbol's id instead.
_META = "\u2581"
_LITERAL_META = "<U+2581>"
_SP_OPTIONS: dict[str, Any] = {
    "byte_fallback": True,  # any character round-trips, as UTF-8 bytes if it must
    "normalization_rule_name": "identity",
    "add_dummy_prefix": False,
    "remove_extra_whitespaces": False,
    "allow_whitespace_only_pieces": True,
    "user_defined_symbols": ["\n"],  # one piece, and pieces never span lines
    "control_symbols": [_LITERAL_META],
    "unk_id": 0,
    "bos_id": -1,
    "eos_id": -1,
    "pad_id": -1,
    "character_coverage": 0.9995,
    "hard_vocab_limit": False,  # a small corpus gets a smaller vocabulary, not an error
    "input_sentence_size": 2_000_000,  # sampled: bounded memory on huge corpora
    "shuffle_input_sentence": True,
    "max_sentence_length": 16384,
    "num_threads": 1,
    "minloglevel": 2,  # the library never prints
}


class SentencePieceTokenizer:
    """BPE or unigram subwords; the trained model's bytes travel inside the checkpoint."""

    kind = "sentencepiece"
    unk_id = _SP_OPTIONS["unk_id"]  # byte fallback leaves it unused, but a model can draw it

    def __init__(self, model: bytes) -> None:
        self.model = model
        self._sp = spm.SentencePieceProcessor(model_proto=model)
        self._literal_meta = self._sp.piece_to_id(_LITERAL_META)

    @classmethod
    def train_chunks(cls, chunks: Iterable[str], config: DataConfig) -> SentencePieceTokenizer:
        buf = io.BytesIO()
        try:
            spm.SentencePieceTrainer.train(
                sentence_iterator=_sentences(chunks),
                model_writer=buf,
                model_type=config.sp_model,
                vocab_size=config.vocab_size,
                **_SP_OPTIONS,
            )
        except RuntimeError as e:
            need = re.search(r"smaller than required_chars\. \d+ vs (\d+)", str(e))
            if need:
                raise ConfigError(
                    f"--vocab-size {config.vocab_size} is too small for sentencepiece on this "
                    f"corpus: it needs at least {need.group(1)} (256 byte pieces plus the "
                    "characters it keeps); raise --vocab-size"
                ) from None
            raise ConfigError(f"sentencepiece could not train on this corpus: {e}") from None
        return cls(buf.getvalue())

    @property
    def vocab_size(self) -> int:
        return self._sp.get_piece_size()

    def encode(self, text: str) -> np.ndarray:
        ids: list[int] = []
        for k, part in enumerate(text.split(_META)):
            if k:
                ids.append(self._literal_meta)
            ids.extend(self._sp.encode(part))
        return np.asarray(ids, dtype=token_dtype(self.vocab_size))

    def unknown(self, text: str) -> list[tuple[int, str]]:
        return []  # byte fallback represents everything

    def decode(self, ids: Sequence[int] | np.ndarray) -> str:
        parts: list[list[int]] = [[]]
        for i in np.asarray(ids, dtype=np.int64).tolist():
            if i == self._literal_meta:
                parts.append([])
            else:
                parts[-1].append(i)
        return _META.join(self._sp.decode(p) for p in parts)

    def spelled_span(self, text: str) -> tuple[int, int]:
        # Pieces never span a line end, so the first line alone gives the first piece.
        head = text[: text.find("\n") + 1] if "\n" in text else text
        return len(self.decode(self.encode(head)[:1])), len(text)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "model": base64.b64encode(self.model).decode("ascii")}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SentencePieceTokenizer:
        return cls(base64.b64decode(d["model"]))


def _sentences(chunks: Iterable[str], longest: int = 4000) -> Iterator[str]:
    """Lines of the chunks, long ones cut so that sentencepiece does not skip them."""
    for chunk in chunks:
        for line in chunk.split("\n"):
            for start in range(0, len(line), longest):
                yield line[start : start + longest]


_REGISTRY: dict[str, type[Tokenizer]] = {
    "char": CharTokenizer,
    "word": WordTokenizer,
    "sentencepiece": SentencePieceTokenizer,
}


def tokenizer_from_dict(d: dict[str, Any]) -> Tokenizer:
    kind = d.get("kind")
    if kind not in _REGISTRY:
        raise ValueError(f"unknown tokenizer kind {kind!r} in checkpoint")
    return _REGISTRY[kind].from_dict(d)


def ends_lines_with_eos(tokenizer: Tokenizer) -> bool:
    """A whitespace-mode word tokenizer: it reads text exactly as word_language_model does."""
    return isinstance(tokenizer, WordTokenizer) and tokenizer.split == "whitespace"


def trains_on_whole_text(config: DataConfig) -> bool:
    """A character vocabulary comes from the whole text (as char-rnn does), so validation
    never meets an unseen character; learned tokenizers see the training split only."""
    return config.tokenizer == "char"


def build_tokenizer(config: DataConfig, text: str | Iterable[str]) -> Tokenizer:
    """Train the configured tokenizer on ``text`` (the training split, or all text for chars).

    ``text`` may be one string or an iterable of chunks, so a corpus larger than memory
    can stream through; chunks must be cut at line ends (words never span them).
    """
    if config.tokenizer not in _REGISTRY:
        raise ValueError(f"tokenizer '{config.tokenizer}' is not available")
    chunks = [text] if isinstance(text, str) else text
    return _REGISTRY[config.tokenizer].train_chunks(chunks, config)
