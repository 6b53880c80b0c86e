"""A corpus read and made ready to train on: tokenised by a (new or given) tokenizer, then split."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from charlm.config.schema import DataConfig, RunConfig
from charlm.data.batching import Splits, split_sizes
from charlm.data.token_cache import check_text_file, text_chunks, token_file
from charlm.data.tokenizers import Tokenizer, build_tokenizer, drop_unknown, trains_on_whole_text
from charlm.errors import InputError, describe_unknown
from charlm.text.reading import read_text
from charlm.text.sources import corpus_name, is_several, read_joined

# Corpus files larger than this stream into a memory-mapped token file (--token-cache auto).
STREAM_ABOVE_BYTES = 64 << 20


@dataclass
class Corpus:
    text: str | None  # None: too large to hold; read from ``source`` in chunks instead
    # A path, or '-' for stdin; or the files and directories joined (see charlm.text.sources).
    source: str | list[str]
    name: str  # used to name the run directory
    encoding: str = "utf-8"
    digest: str | None = field(default=None, repr=False)
    skipped: list[Path] = field(default_factory=list)  # in directories: not text, left out

    @property
    def one_file(self) -> Path | None:
        """The corpus's file when it is one file (not stdin, not joined): it may stream."""
        return Path(self.source) if isinstance(self.source, str) and self.source != "-" else None

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
        assert self.one_file is not None, "only a single file is left on disk"
        return text_chunks(self.one_file, self.encoding)

    def full_text(self) -> str:
        if self.text is None:
            assert self.one_file is not None, "only a single file is left on disk"
            self.text = read_text(self.one_file, self.encoding)
        return self.text


@dataclass
class Prepared:
    tokenizer: Tokenizer
    splits: Splits
    val_chars: int  # characters the scored validation tokens spell: bits per char divide by it
    warnings: list[str] = field(default_factory=list)
    dropped: int = 0  # characters a given tokenizer could not represent, left out
    kept_chars: int = 0  # characters of the corpus kept (with ``dropped``: the whole corpus)


def read_corpus(source: str | list[str], encoding: str = "utf-8") -> Corpus:
    """The corpus; a file over STREAM_ABOVE_BYTES is checked but left on disk, to stream.

    Several sources, or a directory, are read and joined in memory (charlm.text.sources).
    """
    if isinstance(source, list):
        if is_several(source):
            return _read_joined(source, encoding)
        source = source[0]
    path = Path(source)
    if source != "-" and _file_size(path) > STREAM_ABOVE_BYTES:
        check_text_file(path, encoding)
        return Corpus(None, str(path.resolve()), path.stem or "corpus", encoding)
    text = read_text(source, encoding)
    name = "stdin" if source == "-" else path.stem or "corpus"
    if not text.strip():
        raise InputError(f"{'stdin' if source == '-' else source} holds no text: give a corpus")
    return Corpus(text, str(path.resolve()) if source != "-" else "-", name, encoding)


def _file_size(path: Path) -> int:
    """A regular file's size; 0 when it is not one or cannot be looked at (read_text says why)."""
    try:
        return path.stat().st_size if path.is_file() else 0
    except (OSError, ValueError):
        return 0


def _read_joined(sources: list[str], encoding: str) -> Corpus:
    joined = read_joined(sources, encoding)
    if not joined.text.strip():
        raise InputError(f"{', '.join(sources)} hold no text: give a corpus")
    resolved = [str(Path(s).resolve()) for s in sources]  # resume reads them from anywhere
    return Corpus(joined.text, resolved, corpus_name(sources), encoding, skipped=joined.skipped)


def split_text(text: str, val_frac: float, test_frac: float) -> tuple[str, str, str]:
    """Contiguous (train, test, val) by characters, so every tokenizer scores the same text."""
    n_train, n_test, _ = split_sizes(len(text), val_frac, test_frac)
    return text[:n_train], text[n_train : n_train + n_test], text[n_train + n_test :]


SPLITS = ("val", "test")


def run_split(corpus: str | list[str], sha256: str, data: DataConfig, which: str) -> str:
    """The text of a run's validation or test split, read again from its corpus.

    ``corpus`` and ``sha256`` are what the run recorded (TrainState); the corpus must still
    be there and unchanged, or the split would be some other text.
    """
    if which not in SPLITS:
        raise InputError(f"unknown split '{which}': choose val or test")
    if corpus in ("", "-"):
        raise InputError(
            "this run read its corpus from stdin: score that text's split as a file instead"
        )
    if which == "test" and data.test_frac == 0:
        raise InputError("this run held out no test split (--test-frac 0): use --split val")
    try:
        text = read_corpus(corpus, data.encoding)
    except InputError as e:
        raise InputError(f"cannot read the run's corpus again: {e}") from None
    if text.sha256 != sha256:
        raise InputError(
            f"the run's corpus ({_named(corpus)}) changed since training: its {which} split "
            "is gone; score a file instead"
        )
    _, test, val = split_text(text.full_text(), data.val_frac, data.test_frac)
    return val if which == "val" else test


def _named(corpus: str | list[str]) -> str:
    return corpus if isinstance(corpus, str) else ", ".join(corpus)


def prepare(
    config: RunConfig,
    text: str | Corpus,
    tokenizer: Tokenizer | None = None,
    check_sha256: Callable[[str], None] | None = None,
) -> Prepared:
    """Corpus to tokenizer to tokens to splits, in one pass that new runs and resumes share.

    The tokenizer is trained unless one is given (init or resume), and used as given. A
    Corpus too large to hold (or any file with --token-cache always) goes through the
    cached token file instead, and its splits are memory-mapped; its sha256 then comes from
    that file's making (or the cache), so ``Corpus.sha256`` costs no pass of its own.
    ``check_sha256`` sees the corpus's sha256 before any tokenizing, to refuse a corpus
    other than the expected one.
    """
    dc = config.data
    if isinstance(text, Corpus):
        streamed = text.one_file is not None and dc.token_cache != "never"
        if streamed and (text.text is None or dc.token_cache == "always"):
            prep = _prepare_streamed(config, text, tokenizer, check_sha256)
            prep = _with_size_note(prep, dc) if tokenizer is None else prep
            return right_to_left(prep) if config.model.reverse else prep
        if check_sha256 is not None:
            check_sha256(text.sha256)
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
    prep = _with_size_note(
        Prepared(tokenizer, splits, last - first, warnings, dropped, len(text) - dropped), dc
    )
    return right_to_left(prep) if config.model.reverse else prep


def right_to_left(prep: Prepared) -> Prepared:
    """A backward model's splits: each read right to left, the held-out text still held out.

    Copies, a memory-mapped split too: the batcher reads its stripes forward."""
    s = prep.splits
    flipped = Splits(*(np.ascontiguousarray(a[::-1]) for a in (s.train, s.val, s.test)))
    return replace(prep, splits=flipped)


def _with_size_note(prep: Prepared, dc: DataConfig) -> Prepared:
    """Say when sentencepiece made fewer pieces than --vocab-size asked for: a small corpus
    supports only so many, and it stops there (`--vocab-size 50000` gave 389 on one)."""
    made = prep.tokenizer.vocab_size
    if dc.tokenizer == "sentencepiece" and made < dc.vocab_size:
        prep.warnings.append(
            f"--vocab-size {dc.vocab_size}: this corpus supports only {made} sentencepiece "
            f"pieces, so the vocabulary has {made}"
        )
    return prep


def _prepare_streamed(
    config: RunConfig,
    corpus: Corpus,
    tokenizer: Tokenizer | None,
    check_sha256: Callable[[str], None] | None,
) -> Prepared:
    assert corpus.one_file is not None
    tf, tokenizer = token_file(corpus.one_file, config.data, tokenizer, check_sha256)
    corpus.digest = tf.sha256
    warnings = []
    if tf.dropped:
        warnings.append(
            f"{tf.dropped:,} character(s) not in the model's vocabulary; they are dropped"
        )
    splits = tf.splits()
    kept = sum(len(s) for s in (splits.train, splits.val, splits.test))  # tokens: ~characters
    return Prepared(tokenizer, splits, tf.val_chars, warnings, tf.dropped, kept)
