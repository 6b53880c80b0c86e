"""Token splits and the truncated-BPTT batcher."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from charlm.config import DataConfig
from charlm.errors import DataError
from charlm.textio import InputError, decode
from charlm.tokenizers import (
    Tokenizer,
    build_tokenizer,
    drop_unknown,
    token_dtype,
    tokenizer_from_dict,
    trains_on_whole_text,
)


@dataclass
class Splits:
    """Contiguous splits: train first, then test, then validation at the very end."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def check_splits(splits: Splits, batch_size: int, bptt: int) -> None:
    need = batch_size * bptt + 1
    if len(splits.train) < need:
        raise DataError(
            f"the training split has {len(splits.train):,} tokens, fewer than one batch window "
            f"(--batch-size {batch_size} x --bptt {bptt} + 1 = {need:,}): use a larger corpus "
            "or lower --batch-size / --bptt"
        )
    if len(splits.val) < 2:
        raise DataError(
            f"the validation split has {len(splits.val)} token(s), too few to score: "
            "raise --val-frac or use a larger corpus"
        )


class StripeBatcher:
    """Truncated backpropagation through time over B contiguous stripes.

    The N training tokens are cut into B stripes of L = (N - 1) // B tokens. Stripe b is
    row b of a (B, L) matrix; its targets are the same tokens shifted left by one:

        tokens:  t0 t1 ... t(L-1) | tL ... t(2L-1) | ... | t((B-1)L) ... t(BL-1) | (< B spare)
                 \\__ stripe 0 __/ \\_ stripe 1 __/       \\____ stripe B-1 _____/

                     window 0     window 1           last window (L mod bptt, if any)
        row 0     [ x x ... x ][ x x ... x ] ... [ x x ]
        row 1     [ x x ... x ][ x x ... x ] ... [ x x ]     hidden state of row b flows
         ...                                                  left to right across windows
        row B-1   [ x x ... x ][ x x ... x ] ... [ x x ]     and is detached at every |

    So each window is a (B, bptt) batch whose row b continues row b of the previous window,
    and every target t1 ... tBL is visited exactly once per epoch (fewer than B tokens at
    the very end are left over).

    Data-parallel: rank r of W lays out W x B stripes and keeps rows [r B, (r+1) B) (views,
    nothing copied), so W processes with batch B visit exactly what one with W x B visits.
    """

    def __init__(
        self, tokens: np.ndarray, batch_size: int, bptt: int, rank: int = 0, world: int = 1
    ) -> None:
        self.batch_size, self.bptt = batch_size, bptt
        rows = batch_size * world
        self.stripe_len = (len(tokens) - 1) // rows
        n = rows * self.stripe_len
        mine = slice(rank * batch_size, (rank + 1) * batch_size)
        self.inputs = tokens[:n].reshape(rows, self.stripe_len)[mine]
        self.targets = tokens[1 : n + 1].reshape(rows, self.stripe_len)[mine]

    def __len__(self) -> int:
        return -(-self.stripe_len // self.bptt)

    @property
    def tokens_per_epoch(self) -> int:
        return self.batch_size * self.stripe_len

    def window(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The k-th (B, T) window of inputs and targets, T = bptt except maybe the last."""
        s = slice(k * self.bptt, min((k + 1) * self.bptt, self.stripe_len))
        return _long(self.inputs[:, s]), _long(self.targets[:, s])

    def windows(self, start: int = 0) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
        for k in range(start, len(self)):
            yield (k, *self.window(k))


def eval_windows(
    tokens: np.ndarray, batch_size: int, bptt: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Windows that score every target t1 ... t(N-1) exactly once: (inputs, targets, mask).

    Like StripeBatcher, but stripes are L = ceil((N - 1) / B) long and the tail is padded,
    so nothing is left over; the mask is 0 on padding. Rows beyond the text are dropped.
    """
    n_targets = len(tokens) - 1
    b = max(1, min(batch_size, n_targets))
    stripe = -(-n_targets // b)
    b = -(-n_targets // stripe)  # drop rows that would be pure padding
    # Gathered window by window, never padded as a whole: the tokens may be a memory-mapped
    # file far larger than memory. Padding (past the last target) repeats the last token.
    rows = np.arange(b)[:, None] * stripe
    for s in range(0, stripe, bptt):
        pos = rows + np.arange(s, min(s + bptt, stripe))  # (b, w) input positions
        x, y = tokens[np.minimum(pos, n_targets)], tokens[np.minimum(pos + 1, n_targets)]
        yield _long(x), _long(y), torch.from_numpy(pos < n_targets)


def _long(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.int64))


# ---- token files: corpora larger than memory ---------------------------------------------
# A large corpus is never held in memory: it streams through in chunks of whole lines,
# once to count and hash it, once to train a learned tokenizer, once to write its tokens to
# a file that training memory-maps. The file is cached, keyed by the corpus and tokenizer.
CHUNK_CHARS = 1 << 20
TOKEN_FILE_VERSION = 1


@dataclass
class TokenFile:
    """A corpus's tokens on disk (train, test, val back to back) and what they came from."""

    path: Path
    dtype: str
    bounds: dict[str, list[int]]  # split -> [start, stop) in tokens
    val_chars: int  # characters the scored validation tokens spell
    sha256: str  # of the text as read (newlines normalised), as Corpus.sha256
    tokenizer: dict[str, Any]
    dropped: int = 0  # characters a given tokenizer could not encode

    def splits(self) -> Splits:
        tokens = np.memmap(self.path, dtype=self.dtype, mode="r")
        view = {k: tokens[a:b] for k, (a, b) in self.bounds.items()}
        return Splits(view["train"], view["val"], view["test"])


def split_sizes(n: int, val_frac: float, test_frac: float) -> tuple[int, int, int]:
    """(train, test, val) lengths of contiguous splits of n characters."""
    n_val, n_test = round(n * val_frac), round(n * test_frac)
    return n - n_val - n_test, n_test, n_val


def cache_root() -> Path:
    """$CHARLM_CACHE_DIR, else $XDG_CACHE_HOME/charlm, else ~/.cache/charlm."""
    if os.environ.get("CHARLM_CACHE_DIR"):
        return Path(os.environ["CHARLM_CACHE_DIR"])
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "charlm"


def text_chunks(
    path: Path, encoding: str, start: int = 0, stop: int | None = None
) -> Iterator[str]:
    """Characters [start, stop) of a text file, in chunks that end at line ends.

    Newlines are normalised as ``charlm.textio`` does, so the text is the one an
    in-memory read gives; a chunk is cut only where a split boundary falls.
    """
    utf8 = encoding.lower().replace("-", "").replace("_", "") == "utf8"
    pos = 0
    try:
        with open(path, encoding="utf-8-sig" if utf8 else encoding, newline=None) as f:
            while (stop is None or pos < stop) and (chunk := f.read(CHUNK_CHARS)):
                if not chunk.endswith("\n"):
                    chunk += f.readline(CHUNK_CHARS)
                lo, hi = max(start - pos, 0), len(chunk) if stop is None else stop - pos
                pos += len(chunk)
                if lo < len(chunk) and hi > 0:
                    yield chunk[lo:hi]
    except UnicodeDecodeError as e:
        raise InputError(
            f"{path} is not valid {encoding}: bad byte 0x{e.object[e.start]:02x}; pass the "
            "right --encoding (e.g. latin-1) or fix the file"
        ) from e
    except LookupError as e:
        raise InputError(f"unknown encoding '{encoding}': try utf-8 or latin-1") from e


def check_text_file(path: Path, encoding: str) -> None:
    """Refuse binary files, byte-order marks and NULs from the head, without reading it all."""
    with open(path, "rb") as f:
        head = f.read(1 << 16)
    cut = head.rfind(b"\n")
    decode(head[: cut + 1] if cut >= 0 else head[:4], encoding, str(path))


def _scan(path: Path, encoding: str) -> tuple[int, str]:
    """Characters and sha256 of the whole text, in one streaming pass."""
    n, digest, blank = 0, hashlib.sha256(), True
    for chunk in text_chunks(path, encoding):
        n += len(chunk)
        digest.update(chunk.encode("utf-8"))
        blank = blank and not chunk.strip()
    if blank:
        raise InputError(f"{path} holds no text: give a corpus")
    return n, digest.hexdigest()


def cache_key(path: Path, config: DataConfig, tokenizer: Tokenizer | None) -> str:
    st = path.stat()
    key = {
        "version": TOKEN_FILE_VERSION,
        "corpus": [str(path.resolve()), st.st_size, st.st_mtime_ns],
        "data": {k: v for k, v in asdict(config).items() if k != "token_cache"},
        "tokenizer": tokenizer.to_dict() if tokenizer is not None else None,
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:32]


def token_file(
    path: Path, config: DataConfig, tokenizer: Tokenizer | None = None
) -> tuple[TokenFile, Tokenizer]:
    """The cached token file of ``path`` (built on a miss) and its tokenizer.

    Without a tokenizer one is trained: characters on the whole text, learned tokenizers
    on the training split only.
    A given tokenizer (resuming) also reuses the file the run started from, if that
    file's tokenizer is the same one.
    """
    root = cache_root() / "tokens"
    home = root / cache_key(path, config, tokenizer)
    for place in (home, root / cache_key(path, config, None)):
        tf = _cached(place)
        if tf is not None and (tokenizer is None or tf.tokenizer == tokenizer.to_dict()):
            return tf, tokenizer_from_dict(tf.tokenizer)
    check_text_file(path, config.encoding)
    n, digest = _scan(path, config.encoding)
    n_train, n_test, _ = split_sizes(n, config.val_frac, config.test_frac)
    ranges = {
        "train": (0, n_train),
        "test": (n_train, n_train + n_test),
        "val": (n_train + n_test, n),
    }
    if tokenizer is None:
        part = None if trains_on_whole_text(config) else ranges["train"][1]
        tokenizer = build_tokenizer(config, text_chunks(path, config.encoding, 0, part))
    tmp = home.with_name(f"{home.name}.{os.getpid()}.tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        tf = _write_tokens(path, config.encoding, tokenizer, ranges, tmp / "tokens.bin")
        tf.sha256 = digest
        fields = {k: v for k, v in asdict(tf).items() if k != "path"}
        (tmp / "meta.json").write_text(json.dumps(fields))
        if not home.exists():
            os.replace(tmp, home)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    tf.path = home / "tokens.bin"
    return tf, tokenizer


def _cached(home: Path) -> TokenFile | None:
    """The token file cached in ``home``; None if absent or unreadable (then rebuilt)."""
    try:
        return TokenFile(home / "tokens.bin", **json.loads((home / "meta.json").read_text()))
    except (OSError, ValueError, TypeError):
        return None


def _write_tokens(
    path: Path,
    encoding: str,
    tokenizer: Tokenizer,
    ranges: dict[str, tuple[int, int]],
    out: Path,
) -> TokenFile:
    """Encode each split chunk by chunk into ``out``; count what the val tokens spell."""
    bounds, written, dropped = {}, 0, 0
    span: list[int] = []  # val: where its first token ends, where its last token ends
    dtype = token_dtype(tokenizer.vocab_size)
    with open(out, "wb") as f:
        for name in ("train", "test", "val"):
            start, offset = written, 0
            for chunk in text_chunks(path, encoding, *ranges[name]):
                kept = drop_unknown(chunk, tokenizer.unknown(chunk))
                dropped, chunk = dropped + len(chunk) - len(kept), kept
                ids = tokenizer.encode(chunk)
                f.write(ids.astype(dtype, copy=False).tobytes())
                written += len(ids)
                if name == "val" and len(ids):
                    first, last = tokenizer.spelled_span(chunk)
                    span = [span[0] if span else offset + first, offset + last]
                offset += len(chunk)
            bounds[name] = [start, written]
    val_chars = span[1] - span[0] if span else 0
    return TokenFile(out, np.dtype(dtype).name, bounds, val_chars, "", tokenizer.to_dict(), dropped)
