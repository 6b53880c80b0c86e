"""Options meant for another tokenizer are refused; a sentencepiece vocabulary smaller than
asked for is announced."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from charlm.cli import app
from charlm.config.options import TOKENIZER_OPTIONS, check_tokenizer_options
from charlm.errors import ConfigError


def train(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, ["train", *args, "--dry-run", "--threads", "1"])


@pytest.mark.parametrize(
    ("option", "value", "tokenizer"),
    [
        ("--min-freq", "3", "char"),
        ("--max-vocab", "100", "sentencepiece"),
        ("--vocab-size", "500", "char"),
        ("--vocab-size", "500", "word"),
        ("--sp-model", "bpe", "word"),
    ],
)
def test_an_option_of_another_tokenizer_is_one_line_naming_the_fix(
    corpus_file: Path, option: str, value: str, tokenizer: str
) -> None:
    r = train(str(corpus_file), option, value, "--tokenizer", tokenizer)
    assert r.exit_code == 2  # options that cannot work together: a usage error
    assert r.stdout == ""
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("charlm: error:")
    owner = TOKENIZER_OPTIONS[option[2:].replace("-", "_")]
    assert f"{option} applies to --tokenizer {owner} only" in r.stderr
    assert f"add --tokenizer {owner}" in r.stderr


def test_the_default_tokenizer_is_checked_too(corpus_file: Path) -> None:
    r = train(str(corpus_file), "--min-freq", "2")  # char, the default
    assert r.exit_code == 2 and "this run uses char" in r.stderr


def test_options_of_the_tokenizer_in_use_are_taken(corpus_file: Path) -> None:
    r = train(str(corpus_file), "--tokenizer", "word", "--min-freq", "2", "--max-vocab", "50",
              "--batch-size", "2", "--bptt", "8")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["config"]["data"]["min_freq"] == 2
    for kind, given in (
        ("char", {}),
        ("word", {"min_freq": 2}),
        ("sentencepiece", {"sp_model": "bpe"}),
    ):
        check_tokenizer_options(kind, given)  # no error
    with pytest.raises(ConfigError):
        check_tokenizer_options("word", {"vocab_size": 10})


def test_a_smaller_sentencepiece_vocabulary_than_asked_is_announced(corpus_file: Path) -> None:
    pytest.importorskip("sentencepiece")
    r = train(str(corpus_file), "--tokenizer", "sentencepiece", "--vocab-size", "50000",
              "--batch-size", "2", "--bptt", "8")  # fmt: skip
    assert r.exit_code == 0, r.output
    made = json.loads(r.stdout)["config"]["model"]["vocab_size"]
    assert made < 50000
    assert (
        f"warning: --vocab-size 50000: this corpus supports only {made} sentencepiece pieces"
        in r.stderr
    )
