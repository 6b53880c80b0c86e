"""Corpora larger than memory: streamed tokenising into cached, memory-mapped token files."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from charlm.cli import app
from charlm.config.schema import DataConfig, RunConfig
from charlm.data import corpus as dataset
from charlm.data import token_cache as tokencache
from charlm.data.corpus import prepare, read_corpus
from charlm.data.token_cache import text_chunks, token_file
from charlm.data.tokenizers import CharTokenizer
from charlm.errors import InputError
from tests.helpers import MICRO_ARGS
from tests.helpers.texts import VERSE


@pytest.fixture(autouse=True)
def small_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private cache, and chunks small enough that a tiny corpus spans many of them."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("CHARLM_CACHE_DIR", str(cache))
    monkeypatch.setattr(tokencache, "CHUNK_CHARS", 97)
    return cache


@pytest.fixture
def text() -> str:
    return (VERSE * 8).replace("speak.", "speak\u00e9 \u2581 <unk>.")


@pytest.fixture
def corpus(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "corpus.txt"
    path.write_text(text, encoding="utf-8")
    return path


def config(tokenizer: str = "char", cache: str = "always") -> RunConfig:
    dc = DataConfig(tokenizer=tokenizer, val_frac=0.1, test_frac=0.05, token_cache=cache)
    dc.vocab_size = 300
    return RunConfig(data=dc)


def test_text_chunks_end_at_line_ends_and_cover_ranges(tmp_path: Path) -> None:
    path = tmp_path / "crlf.txt"
    path.write_bytes(("line one\r\nline two\rthree\n" * 20).encode())
    text = "line one\nline two\nthree\n" * 20
    chunks = list(text_chunks(path, "utf-8"))
    assert "".join(chunks) == text and len(chunks) > 3
    assert all(c.endswith("\n") for c in chunks)
    assert "".join(text_chunks(path, "utf-8", 150, 333)) == text[150:333]


@pytest.mark.parametrize("tokenizer", ["char", "word"])
def test_streamed_splits_equal_in_memory_splits(corpus: Path, tokenizer: str) -> None:
    memory = prepare(config(tokenizer, "never"), read_corpus(str(corpus)))
    streamed = prepare(config(tokenizer), read_corpus(str(corpus)))
    assert isinstance(streamed.splits.train, np.memmap)
    for name in ("train", "val", "test"):
        assert np.array_equal(getattr(memory.splits, name), getattr(streamed.splits, name))
    assert streamed.val_chars == memory.val_chars
    assert streamed.tokenizer.to_dict() == memory.tokenizer.to_dict()


def test_streamed_sentencepiece_is_lossless(corpus: Path, text: str) -> None:
    memory = prepare(config("sentencepiece", "never"), read_corpus(str(corpus)))
    streamed = prepare(config("sentencepiece"), read_corpus(str(corpus)))
    tok = streamed.tokenizer
    assert tok.to_dict() == memory.tokenizer.to_dict()  # trained on the same training split
    joined = np.concatenate([streamed.splits.train, streamed.splits.test, streamed.splits.val])
    assert tok.decode(joined) == text
    assert streamed.val_chars == memory.val_chars


def test_token_dtype_fits_the_vocabulary(corpus: Path) -> None:
    assert prepare(config("char"), read_corpus(str(corpus))).splits.train.dtype == np.uint8
    assert prepare(config("sentencepiece"), read_corpus(str(corpus))).splits.train.dtype == (
        np.uint16
    )


def test_cache_is_reused_and_keyed_by_corpus_and_tokenizer(
    corpus: Path, small_chunks: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, _ = token_file(corpus, config().data)
    entries = list((small_chunks / "tokens").iterdir())
    assert len(entries) == 1

    def fail(*args: object) -> None:
        raise AssertionError("the cached token file should have been reused")

    with monkeypatch.context() as m:
        m.setattr(tokencache, "_write_tokens", fail)
        again, tok = token_file(corpus, config().data)
        assert again == first and isinstance(tok, CharTokenizer)

    token_file(corpus, config("word").data)  # another tokenizer
    token_file(corpus, config().data, CharTokenizer(list("abc")))  # a given vocabulary
    corpus.write_text(VERSE * 9)  # the corpus changes: size and mtime
    token_file(corpus, config().data)
    assert len(list((small_chunks / "tokens").iterdir())) == 4


def test_given_tokenizer_drops_unknown_characters(corpus: Path, text: str) -> None:
    tok = CharTokenizer(sorted(set(text) - {"\u00e9"}))
    prep = prepare(config(), read_corpus(str(corpus)), tok)
    n = text.count("\u00e9")
    assert prep.warnings == [f"{n} character(s) not in the model's vocabulary; they are dropped"]
    assert sum(len(getattr(prep.splits, k)) for k in ("train", "val", "test")) == len(text) - n


def test_large_files_stay_on_disk(corpus: Path, text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dataset, "STREAM_ABOVE_BYTES", 100)
    big = read_corpus(str(corpus))
    assert big.text is None
    small_digest = dataset.Corpus(text, "-", "x").sha256
    assert big.sha256 == small_digest  # hashed in chunks, to the same value
    prep = prepare(config(cache="auto"), big)
    assert isinstance(prep.splits.train, np.memmap)


def test_bad_bytes_in_a_streamed_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.txt"
    path.write_bytes(b"good line\n" * 8000 + b"\xff\xfe bad\n")  # past the checked head
    with pytest.raises(InputError, match=r"bad\.txt is not valid utf-8: bad byte 0xff"):
        token_file(path, config().data)


def test_train_and_resume_through_the_token_file(
    tmp_path: Path, corpus: Path, small_chunks: Path
) -> None:
    out = tmp_path / "run"
    args = ["train", str(corpus), "--out", str(out), *MICRO_ARGS, "--token-cache", "always"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(app, ["train", "--resume", str(out), "--max-steps", "14"])
    assert result.exit_code == 0, result.output
    assert "corpus changed" not in result.stderr
    assert len(list((small_chunks / "tokens").iterdir())) == 1  # resuming reused the file


def test_a_killed_builders_directory_is_removed_by_the_next_build(
    small_chunks: Path, corpus: Path
) -> None:
    root = small_chunks / "tokens"
    # A builder killed mid-build (SIGKILL: no clean-up of its own runs).
    code = (
        "import os, signal, sys; from pathlib import Path; "
        "from charlm.data.token_cache import _building; "
        "b = _building(Path(sys.argv[1]) / 'entry'); tmp = b.__enter__(); "
        "(tmp / 'tokens.bin').write_bytes(b'half'); os.kill(os.getpid(), signal.SIGKILL)"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(root)], check=False)
    assert proc.returncode == -9
    (orphan,) = root.glob("*.tmp")
    held = root / "other.held.tmp"  # another builder, still at work
    held.mkdir()
    young = root / "other.young.tmp"  # just made, maybe not locked yet
    young.mkdir()
    for d in (orphan, held):
        os.utime(d, (0, 0))
    fd = os.open(held, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        token_file(corpus, DataConfig(val_frac=0.1))
        assert not orphan.exists() and held.exists() and young.exists()
        assert [p for p in root.iterdir() if p.suffix != ".tmp"]  # the new entry
    finally:
        os.close(fd)
    os.utime(young, (0, 0))
    assert sorted(tokencache.tidy(root)) == sorted([held, young])  # nobody holds them now


def test_an_entry_keeps_the_umasks_mode_for_a_shared_cache(
    small_chunks: Path, corpus: Path
) -> None:
    old = os.umask(0o022)
    try:
        tf, _ = token_file(corpus, DataConfig(val_frac=0.1))
    finally:
        os.umask(old)
    assert tf.path.parent.stat().st_mode & 0o777 == 0o755  # others may read it
    assert not list((small_chunks / "tokens").glob("*.tmp"))
