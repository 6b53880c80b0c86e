"""A corpus read and made ready to train on: tokenised by a (new or given) tokenizer, then split."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from charlm.config import RunConfig
from charlm.data import Splits, split_sizes
from charlm.textio import InputError, read_text
from charlm.tokencache import check_text_file, text_chunks, token_file
from charlm.tokenizers import (
    Tokenizer,
    build_tokenizer,
    describe_unknown,
    drop_unknown,
    trains_on_whole_text,
)

# Corpus files larger than this stream into a memory-mapped token file (--token-cache auto).
STREAM_ABOVE_BYTES = 64 << 20


@dataclass
class Corpus:
    text: str | None  # None: too large to hold; read from ``source`` in chunks instead
    source: str  # a path, or '-' for stdin
    name: str  # used to name the run directory
    encoding: str = "utf-8"
    digest: str | None = field(default=None, repr=False)

    @property
    def sha256(self) -> str:
        """Of the text as read; a streamed corpus is hashed chunk by chunk, to the same value."""
        if self.digest is None:
            h = hashlib.sha256()
            for chunk in [self.text] if self.text is not None else self._chunks():
                h.update(chunk.encode("utf-8"))
            self.digest = h.hexdigest()
        return self.digest

    def _chunks(self) -> Iterator[str]:
        return text_chunks(Path(self.source), self.encoding)

    def full_text(self) -> str:
        if self.text is None:
            self.text = read_text(self.source, self.encoding)
        return self.text


@dataclass
class Prepared:
    tokenizer: Tokenizer
    splits: Splits
    val_chars: int  # characters the scored validation tokens spell: bits per char divide by it
    warnings: list[str] = field(default_factory=list)
    dropped: int = 0  # characters a given tokenizer could not represent, left out
    kept_chars: int = 0  # characters of the corpus kept (with ``dropped``: the whole corpus)


def read_corpus(source: str, encoding: str = "utf-8") -> Corpus:
    """The corpus; a file over STREAM_ABOVE_BYTES is checked but left on disk, to stream."""
    path = Path(source)
    if source != "-" and path.is_file() and path.stat().st_size > STREAM_ABOVE_BYTES:
        check_text_file(path, encoding)
        return Corpus(None, str(path.resolve()), path.stem or "corpus", encoding)
    text = read_text(source, encoding)
    name = "stdin" if source == "-" else path.stem or "corpus"
    if not text.strip():
        raise InputError(f"{'stdin' if source == '-' else source} holds no text: give a corpus")
    return Corpus(text, str(path.resolve()) if source != "-" else "-", name, encoding)


def split_text(text: str, val_frac: float, test_frac: float) -> tuple[str, str, str]:
    """Contiguous (train, test, val) by characters, so every tokenizer scores the same text."""
    n_train, n_test, _ = split_sizes(len(text), val_frac, test_frac)
    return text[:n_train], text[n_train : n_train + n_test], text[n_train + n_test :]


def prepare(config: RunConfig, text: str | Corpus, tokenizer: Tokenizer | None = None) -> Prepared:
    """Tokenize and split; the tokenizer is trained unless one is given (init or resume).

    A Corpus too large to hold (or any file with --token-cache always) goes through the
    cached token file instead, and its splits are memory-mapped.
    """
    dc = config.data
    if isinstance(text, Corpus):
        streamed = text.source != "-" and dc.token_cache != "never"
        if streamed and (text.text is None or dc.token_cache == "always"):
            return _prepare_streamed(config, text, tokenizer)
        text = text.full_text()
    warnings: list[str] = []
    dropped = 0
    train_text, test_text, val_text = split_text(text, dc.val_frac, dc.test_frac)
    if tokenizer is None:
        tokenizer = build_tokenizer(dc, text if trains_on_whole_text(dc) else train_text)
    else:
        unknown = tokenizer.unknown(text)
        if unknown:
            dropped = len(unknown)
            warnings.append(describe_unknown(unknown) + "; they are dropped")
            train_text, test_text, val_text = (
                drop_unknown(t, unknown) for t in (train_text, test_text, val_text)
            )
    splits = Splits(*(tokenizer.encode(t) for t in (train_text, val_text, test_text)))
    first, last = tokenizer.spelled_span(val_text)
    return Prepared(tokenizer, splits, last - first, warnings, dropped, len(text) - dropped)


def _prepare_streamed(config: RunConfig, corpus: Corpus, tokenizer: Tokenizer | None) -> Prepared:
    tf, tokenizer = token_file(Path(corpus.source), config.data, tokenizer)
    corpus.digest = tf.sha256
    warnings = []
    if tf.dropped:
        warnings.append(
            f"{tf.dropped:,} character(s) not in the model's vocabulary; they are dropped"
        )
    splits = tf.splits()
    kept = sum(len(s) for s in (splits.train, splits.val, splits.test))  # tokens: ~characters
    return Prepared(tokenizer, splits, tf.val_chars, warnings, tf.dropped, kept)
