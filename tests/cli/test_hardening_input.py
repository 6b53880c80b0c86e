"""Bad corpora: one line on stderr naming the problem and the fix, exit 1, nothing written.

test_cli_train.py covers a missing file, invalid UTF-8, an empty file and a corpus shorter
than one window; these are the other kinds of bad text a user can hand `charlm train`.
"""

from __future__ import annotations

import gzip
import json
import zlib
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from charlm.cli import app
from tests.helpers import MICRO_ARGS
from tests.helpers.results import one_line_error

runner = CliRunner()

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + zlib.compress(b"\x00" * 64)


def train(corpus: Path | str, out: Path, *extra: str, input: str | None = None) -> Result:
    return runner.invoke(app, ["train", str(corpus), "--out", str(out), *MICRO_ARGS, *extra],
                         input=input)  # fmt: skip


@pytest.mark.parametrize(
    ("content", "phrases"),
    [
        (PNG, ("looks like a PNG image", "convert it")),
        (gzip.compress(b"To be, or not to be\n" * 50), ("gzip-compressed", "decompress")),
        ("To be, or not to be\n".encode("utf-16"), ("UTF-16 byte-order mark", "--encoding")),
        ("To be\n".encode("utf-32"), ("UTF-32 byte-order mark", "--encoding utf-32")),
        (b"  \n\n\t \r\n   \n", ("holds no text", "give a corpus")),
        (b"text\x00with\x00nul bytes\n" * 20, ("NUL bytes", "binary")),
        (b"caf\xe9 au lait\n" * 20, ("not valid utf-8", "--encoding", "latin-1")),
    ],
    ids=["png", "gzip", "utf16-bom", "utf32-bom", "whitespace", "nul", "latin1"],
)
def test_a_file_that_is_not_usable_text_is_refused(
    tmp_path: Path, content: bytes, phrases: tuple[str, ...]
) -> None:
    path = tmp_path / "corpus.txt"
    path.write_bytes(content)
    one_line_error(train(path, tmp_path / "run"), str(path), *phrases)
    assert not (tmp_path / "run").exists()


def test_a_directory_without_text_names_the_fix(tmp_path: Path) -> None:
    # A directory is a corpus (every text file inside: see test_sources.py); one with none
    # is refused.
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "x.png").write_bytes(b"\x89PNG\r\n")
    result = train(tmp_path / "data", tmp_path / "run")
    one_line_error(result, "no text files in", "1 file(s) skipped", "--encoding")
    assert not (tmp_path / "run").exists()


def test_whitespace_on_stdin_is_refused(tmp_path: Path) -> None:
    one_line_error(train("-", tmp_path / "run", input=" \n\n  \n"), "stdin holds no text")


def test_the_right_encoding_makes_the_same_file_work(tmp_path: Path, corpus_text: str) -> None:
    path = tmp_path / "utf16.txt"
    path.write_bytes(corpus_text.encode("utf-16"))
    one_line_error(train(path, tmp_path / "a"), "--encoding utf-16")
    result = train(path, tmp_path / "b", "--encoding", "utf-16", "--dry-run")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["vocab_size"] == len(set(corpus_text))


def test_a_corpus_too_short_for_the_asked_bptt_names_both_fixes(
    corpus_file: Path, tmp_path: Path
) -> None:
    line = one_line_error(train(corpus_file, tmp_path / "run", "--bptt", "100000"))
    assert "--bptt 100000" in line and "larger corpus" in line and "lower --batch-size" in line
    assert not (tmp_path / "run").exists()


def test_a_single_50_mb_line_without_newlines_trains(tmp_path: Path) -> None:
    """No line-based reading: one 50 MB line is read, tokenized and split like any text."""
    words = b"to be or not to be that is the question whether tis nobler in the mind "
    path = tmp_path / "one-line.txt"
    path.write_bytes((words * (50 * 2**20 // len(words) + 1))[: 50 * 2**20])
    result = train(path, tmp_path / "run", "--dry-run")
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["vocab_size"] == len(set(words))
    assert sum(info["tokens"].values()) == 50 * 2**20


def test_another_optimizer_without_a_rate_is_refused_before_anything_is_written(
    tmp_path: Path, corpus_file: Path
) -> None:
    # The character preset's AdamW rate would leave SGD crawling: --lr is asked for.
    one_line_error(train(corpus_file, tmp_path / "run", "--optimizer", "sgd"), "--lr", code=2)
    assert not (tmp_path / "run").exists()
