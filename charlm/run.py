"""Setting up a training run: corpus, tokenizer, splits, run directory, init and resume."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from charlm import checkpoint as ckpt_io
from charlm.config import RunConfig, check_seed
from charlm.data import Splits, check_splits, check_text_file, split_sizes, text_chunks, token_file
from charlm.distributed import rank_zero_first, rebatch, world_from_env
from charlm.events import TrainState
from charlm.model import count_parameters
from charlm.runtime import new_seed
from charlm.textio import InputError, read_text
from charlm.tokenizers import (
    Tokenizer,
    build_tokenizer,
    describe_unknown,
    drop_unknown,
    tokenizer_from_dict,
    trains_on_whole_text,
)
from charlm.train import Trainer

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


def read_corpus(source: str, encoding: str = "utf-8") -> Corpus:
    """The corpus; a file over STREAM_ABOVE_BYTES is checked but left on disk, to stream."""
    path = Path(source)
    if source != "-" and _file_size(path) > STREAM_ABOVE_BYTES:
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
    train_text, test_text, val_text = split_text(text, dc.val_frac, dc.test_frac)
    if tokenizer is None:
        tokenizer = build_tokenizer(dc, text if trains_on_whole_text(dc) else train_text)
    else:
        unknown = tokenizer.unknown(text)
        if unknown:
            warnings.append(describe_unknown(unknown) + "; they are dropped")
            train_text, test_text, val_text = (
                drop_unknown(t, unknown) for t in (train_text, test_text, val_text)
            )
    splits = Splits(*(tokenizer.encode(t) for t in (train_text, val_text, test_text)))
    first, last = tokenizer.spelled_span(val_text)
    return Prepared(tokenizer, splits, last - first, warnings)


def _prepare_streamed(config: RunConfig, corpus: Corpus, tokenizer: Tokenizer | None) -> Prepared:
    tf, tokenizer = token_file(Path(corpus.source), config.data, tokenizer)
    corpus.digest = tf.sha256
    warnings = []
    if tf.dropped:
        warnings.append(
            f"{tf.dropped:,} character(s) not in the model's vocabulary; they are dropped"
        )
    return Prepared(tokenizer, tf.splits(), tf.val_chars, warnings)


def _file_size(path: Path) -> int:
    """A regular file's size; 0 when it is not one or cannot be looked at (read_text says why)."""
    try:
        return path.stat().st_size if path.is_file() else 0
    except (OSError, ValueError):
        return 0


def choose_run_dir(out: str | None, corpus_name: str, model: str, force: bool) -> Path:
    """``--out`` as given, or checkpoints/<corpus>-<model>[-N] that holds no run yet."""
    if out is not None:
        path = _usable_out(Path(out))
        if _holds_run(path) and not force:
            raise InputError(
                f"{path} already holds a run: continue it with 'charlm train --resume {path}', "
                "or pass --force to overwrite it"
            )
        return path
    base = Path("checkpoints") / f"{corpus_name}-{model}"
    path, n = base, 1
    while _holds_run(path):
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


def _usable_out(path: Path) -> Path:
    """``--out`` checked before any work: a name the system can look up. (A file in the
    way is reported when the directory is made, as for every other write.)"""
    if "\x00" in str(path):
        raise InputError(f"{path!r}: a NUL byte cannot be in a file name; choose another --out")
    try:
        path.exists()
    except OSError as e:  # a name too long, a loop of links
        raise InputError(f"{path}: cannot use it ({e.strerror}); choose another --out") from None
    return path


def _holds_run(path: Path) -> bool:
    return path.is_dir() and any(
        (path / f).exists() for f in (ckpt_io.LATEST, ckpt_io.BEST, "metrics.jsonl")
    )


def new_trainer(
    config: RunConfig,
    corpus: Corpus,
    run_dir: Path,
    seed: int | None = None,
    init_from: str | None = None,
) -> tuple[Trainer, list[str]]:
    """A fresh run (optionally starting from another checkpoint's weights and vocabulary)."""
    check_seed(seed)
    init = ckpt_io.load(ckpt_io.resolve(init_from)) if init_from else None
    if init is not None:
        # The architecture must match the weights; the data and training settings are ours.
        config = replace(config, model=init.config.model)
        config.data.tokenizer = init.config.data.tokenizer
    tokenizer = tokenizer_from_dict(init.tokenizer) if init else None
    with rank_zero_first(config.train.device):  # one rank builds a token cache
        prep = prepare(config, corpus, tokenizer)
    check_splits(prep.splits, config.train.batch_size * world_from_env(), config.train.bptt)
    config.model.vocab_size = prep.tokenizer.vocab_size
    seed = new_seed() if seed is None else seed
    config.train.seed = seed
    state = TrainState(seed=seed, corpus=corpus.source, corpus_sha256=corpus.sha256)
    trainer = Trainer(config, prep.tokenizer, prep.splits, prep.val_chars, run_dir, state)
    if init is not None:
        trainer.load(init, weights_only=True)
    return trainer, prep.warnings


def resume_trainer(
    run_dir: Path, corpus: Corpus | str | None = None, bounds: dict[str, Any] | None = None
) -> tuple[Trainer, list[str]]:
    """Continue a run exactly where its latest checkpoint left it.

    ``corpus`` may be a path (or '-'), read with the run's own --encoding.
    """
    ck = ckpt_io.load(ckpt_io.resolve(run_dir, prefer=ckpt_io.LATEST))
    if ck.optimizer is None:
        raise InputError(f"{run_dir} has no resumable checkpoint ({ckpt_io.LATEST}); start anew")
    state = TrainState(**ck.state)
    if corpus is None:
        if state.corpus in ("", "-"):
            raise InputError(
                "this run read its corpus from stdin: pipe it again with 'charlm train - --resume "
                f"{run_dir}'"
            )
        corpus = state.corpus
    if isinstance(corpus, str):
        corpus = read_corpus(corpus, ck.config.data.encoding)
    warnings = []
    if corpus.sha256 != state.corpus_sha256:
        warnings.append("the corpus changed since this run started: resuming on the new text")
    config = ck.config
    for key, value in (bounds or {}).items():
        setattr(config.train, key, value)
    config.train.__post_init__()
    config.train.batch_size, note = rebatch(
        config.train.batch_size, state.world_size, world_from_env()
    )
    warnings += [note] if note else []
    with rank_zero_first(config.train.device):
        prep = prepare(config, corpus, tokenizer_from_dict(ck.tokenizer))
    trainer = Trainer(config, prep.tokenizer, prep.splits, prep.val_chars, run_dir, state)
    trainer.load(ck)
    return trainer, warnings + prep.warnings


def describe(trainer: Trainer) -> dict[str, Any]:
    """What --dry-run prints: the resolved config and the sizes that follow from it."""
    return {
        "config": trainer.config.to_dict(),
        "parameters": count_parameters(trainer.model),
        "vocab_size": trainer.tokenizer.vocab_size,
        "tokenizer": trainer.tokenizer.kind,
        "tokens": {k: len(getattr(trainer.splits, k)) for k in ("train", "val", "test")},
        "tokens_per_epoch": trainer.batcher.tokens_per_epoch,
        "steps_per_epoch": len(trainer.batcher),
        "run_dir": str(trainer.run_dir),
    }
