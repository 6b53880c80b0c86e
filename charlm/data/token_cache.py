"""The token cache: corpora larger than memory, tokenised once into memory-mapped files.

A large corpus is never held in memory: it streams through in chunks of whole lines,
once to count and hash it, once to train a learned tokenizer, once to write its tokens to
a file that training memory-maps. The file is cached, keyed by the corpus and tokenizer.

A cache entry is a directory, built under a temporary name beside it and renamed into place,
so a kill mid-build never leaves a half-written entry. The builder holds a ``flock`` on its
temporary directory; a temporary directory nobody holds is a killed builder's, and the next
build removes it (the rule of ``charlm.rundir.atomic``, whose writer builds files, not
directories).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import secrets
import shutil
import stat
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from charlm.config.schema import DataConfig
from charlm.data.batching import Splits, split_sizes
from charlm.data.tokenizers import (
    Tokenizer,
    build_tokenizer,
    drop_unknown,
    token_dtype,
    tokenizer_from_dict,
    trains_on_whole_text,
)
from charlm.errors import InputError
from charlm.text.reading import decode, is_utf8

CHUNK_CHARS = 1 << 20
TOKEN_FILE_VERSION = 1
# A temporary directory younger than this may be one whose builder has made it but not yet
# locked it: tidying passes it by.
ORPHAN_AGE_S = 60.0


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

    Newlines are normalised as ``charlm.text.reading`` does, so the text is the one an
    in-memory read gives; a chunk is cut only where a split boundary falls.
    """
    pos = 0
    try:
        with open(path, encoding="utf-8-sig" if is_utf8(encoding) else encoding, newline=None) as f:
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


def cache_key(path: Path, config: DataConfig, tokenizer: dict[str, Any] | None) -> str:
    """The file's place: the corpus (path, size, mtime), the data settings and the
    tokenizer's dict (None: the tokenizer is trained from the corpus)."""
    st = path.stat()
    key = {
        "version": TOKEN_FILE_VERSION,
        "corpus": [str(path.resolve()), st.st_size, st.st_mtime_ns],
        "data": {k: v for k, v in asdict(config).items() if k != "token_cache"},
        "tokenizer": tokenizer,
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:32]


def token_file(
    path: Path,
    config: DataConfig,
    tokenizer: Tokenizer | None = None,
    check_sha256: Callable[[str], None] | None = None,
) -> tuple[TokenFile, Tokenizer]:
    """The cached token file of ``path`` (built on a miss) and its tokenizer.

    Without a tokenizer one is trained: characters on the whole text, learned tokenizers
    on the training split only.
    A given tokenizer (resuming) is used as it is, and also reuses the file the run started
    from, if that file's tokenizer is the same one.
    ``check_sha256`` sees the text's sha256 as soon as it is known (from the cache, or from
    the pass that counts the text), so it can refuse the corpus before any token is written.
    """
    given = tokenizer.to_dict() if tokenizer is not None else None
    root = cache_root() / "tokens"
    home = root / cache_key(path, config, given)
    for place in (home, root / cache_key(path, config, None)):
        tf = _cached(place)
        if tf is not None and (given is None or given == tf.tokenizer):
            if check_sha256 is not None:
                check_sha256(tf.sha256)
            return tf, tokenizer or tokenizer_from_dict(tf.tokenizer)
    check_text_file(path, config.encoding)
    n, digest = _scan(path, config.encoding)
    if check_sha256 is not None:
        check_sha256(digest)
    n_train, n_test, _ = split_sizes(n, config.val_frac, config.test_frac)
    ranges = {
        "train": (0, n_train),
        "test": (n_train, n_train + n_test),
        "val": (n_train + n_test, n),
    }
    if tokenizer is None:
        part = None if trains_on_whole_text(config) else ranges["train"][1]
        tokenizer = build_tokenizer(config, text_chunks(path, config.encoding, 0, part))
    with _building(home) as tmp:
        tf = _write_tokens(path, config.encoding, tokenizer, ranges, tmp / "tokens.bin")
        tf.sha256 = digest
        fields = {k: v for k, v in asdict(tf).items() if k != "path"}
        (tmp / "meta.json").write_text(json.dumps(fields))
        if not home.exists():
            os.replace(tmp, home)
    tf.path = home / "tokens.bin"
    return tf, tokenizer


@contextmanager
def _building(home: Path) -> Iterator[Path]:
    """A new temporary directory beside ``home``, locked while the block builds in it; gone
    afterwards unless the block renamed it. Killed builders' leftovers are removed first."""
    home.parent.mkdir(parents=True, exist_ok=True)
    tidy(home.parent)
    # mkdir, not mkdtemp: the entry keeps the umask's mode (mkdtemp's 0700 would hide a shared
    # cache from its other users).
    tmp = home.parent / f"{home.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    tmp.mkdir()
    fd = os.open(tmp, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # dropped by the kernel however this process ends
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        os.close(fd)


def tidy(root: Path) -> list[Path]:
    """Remove the temporary directories under ``root`` that no builder holds; the removed."""
    removed = []
    for tmp in root.glob("*.tmp"):
        try:
            info = tmp.lstat()
            if time.time() - info.st_mtime < ORPHAN_AGE_S or not stat.S_ISDIR(info.st_mode):
                continue
            fd = os.open(tmp, os.O_RDONLY)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            continue  # a build in progress
        finally:
            os.close(fd)
        shutil.rmtree(tmp, ignore_errors=True)
        removed.append(tmp)
    return removed


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
