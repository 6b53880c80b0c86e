"""Tokenizers: round trips, vocabularies, serialisation, bits per character, end to end."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from charlm.cli import app
from charlm.config.schema import DataConfig, ModelConfig
from charlm.data.corpus import prepare
from charlm.data.tokenizers import (
    _REGISTRY,
    CharTokenizer,
    SentencePieceTokenizer,
    Tokenizer,
    WordTokenizer,
    build_tokenizer,
    tokenizer_from_dict,
)
from charlm.errors import ConfigError
from charlm.evaluation.scoring import Score, score_tokens
from charlm.models import lm as model_module
from charlm.models.lm import RNNLM
from charlm.rundir.checkpoint import load
from tests.helpers import MICRO_ARGS, micro_config
from tests.helpers.texts import VERSE


def word(text: str, **kw: object) -> WordTokenizer:
    tok = build_tokenizer(DataConfig(tokenizer="word", **kw), text)  # type: ignore[arg-type]
    assert isinstance(tok, WordTokenizer)
    return tok


@pytest.fixture(scope="module", params=["bpe", "unigram"])
def sp(request: pytest.FixtureRequest) -> SentencePieceTokenizer:
    text = VERSE * 20 + "Literal <unk> and <eos>, a \u2581 block, caf\u00e9 and \u65e5\u672c.\n"
    config = DataConfig(tokenizer="sentencepiece", vocab_size=400, sp_model=request.param)
    tok = build_tokenizer(config, text)
    assert isinstance(tok, SentencePieceTokenizer)
    return tok


@pytest.mark.parametrize("kind", sorted(_REGISTRY))
def test_every_registered_kind_meets_the_protocol_and_rebuilds_by_kind(kind: str) -> None:
    config = DataConfig(tokenizer=kind, vocab_size=300)  # type: ignore[arg-type]
    tok = build_tokenizer(config, VERSE * 20)
    assert isinstance(tok, Tokenizer) and tok.kind == kind
    again = tokenizer_from_dict(tok.to_dict())
    assert type(again) is type(tok) and again.to_dict() == tok.to_dict()


# ---- char ---------------------------------------------------------------------------------
@given(st.text(min_size=1))
def test_char_round_trip(text: str) -> None:
    tok = CharTokenizer.train(text)
    assert tok.decode(tok.encode(text)) == text
    assert tok.spelled_span(text) == (1, len(text))


def test_char_ids_follow_code_points() -> None:
    tok = build_tokenizer(DataConfig(), "cab\n")
    assert tok.decode([0, 1, 2, 3]) == "\nabc"
    assert list(tok.encode("abc")) == [1, 2, 3]


# ---- word ---------------------------------------------------------------------------------
def test_word_vocabulary_by_frequency_with_specials() -> None:
    tok = word("b a a c a b\nb a\n")
    assert tok.words[:2] == ["<unk>", "<eos>"]
    assert tok.words[2:] == ["a", "b", "c"]  # a x4, b x3, c x1
    assert list(tok.encode("a c\nzebra")) == [2, 4, 1, 0]


def test_word_min_freq_and_max_vocab() -> None:
    text = "the cat the dog the cat a bird\n"
    assert word(text, min_freq=2).words[2:] == ["the", "cat"]
    assert word(text, max_vocab=3).vocab_size == 3
    assert word(text, max_vocab=3).words[2:] == ["the"]
    assert list(word(text, max_vocab=3).encode("the dog")) == [2, 0]


def test_word_literal_specials_are_plain_text() -> None:
    tok = word("say <unk> and <eos> here\n")
    ids = tok.encode("<unk> <eos>")
    assert 0 not in ids and 1 not in ids  # "<", "unk", ">": never the special tokens
    assert list(tok.encode(tok.decode(ids))) == list(ids)


def test_word_decode_restores_readable_spacing() -> None:
    text = (
        "First Citizen:\nBefore we proceed, hear me speak.\n"
        "'Give me,' quoth I: \"Aroint thee (witch)!\" -- well-known... I'll go.\n"
    )
    tok = word(text)
    assert tok.decode(tok.encode(text)) == (
        "First Citizen:\nBefore we proceed, hear me speak.\n"
        "'Give me,' quoth I: \"Aroint thee (witch)!\"--well-known... I'll go.\n"
    )


_WORDS = st.sampled_from(["the", "King", "I'll", "well-met", "O", ",", ".", "!", "?", ":", "--"])


@given(st.lists(st.lists(_WORDS, min_size=1, max_size=12), min_size=1, max_size=6))
def test_word_tokens_survive_decoding(lines: list[list[str]]) -> None:
    text = "\n".join(" ".join(line) for line in lines) + "\n"
    tok = word(text)
    ids = tok.encode(text)
    assert 0 not in ids
    assert list(tok.encode(tok.decode(ids))) == list(ids)


def test_word_spelled_span_skips_spaces() -> None:
    tok = word("hello world\n")
    assert tok.spelled_span("  hello, world  ") == (7, 14)
    assert tok.spelled_span("   ") == (0, 0)


def test_word_serialises() -> None:
    tok = word(VERSE, max_vocab=20)
    again = tokenizer_from_dict(tok.to_dict())
    assert isinstance(again, WordTokenizer)
    assert again.words == tok.words
    assert list(again.encode(VERSE)) == list(tok.encode(VERSE))


# ---- sentencepiece ------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(text=st.text(min_size=1, max_size=80))
def test_sentencepiece_round_trips_any_text(sp: SentencePieceTokenizer, text: str) -> None:
    assert sp.decode(sp.encode(text)) == text


@pytest.mark.parametrize(
    "text", ["<unk>", "a <unk> b\n<eos>", "\u2581x\u2581\u2581", "  two  spaces \n\n\t", "\x00\r"]
)
def test_sentencepiece_lossless_on_awkward_text(sp: SentencePieceTokenizer, text: str) -> None:
    assert sp.unknown(text) == []
    assert sp.decode(sp.encode(text)) == text


def test_sentencepiece_model_travels_in_its_dict(sp: SentencePieceTokenizer) -> None:
    d = tokenizer_from_dict(sp.to_dict()).to_dict()
    assert d == sp.to_dict() and isinstance(d["model"], str)  # JSON-safe (base64)
    again = tokenizer_from_dict(d)
    assert list(again.encode(VERSE)) == list(sp.encode(VERSE))
    assert again.vocab_size == sp.vocab_size <= 400


def test_sentencepiece_spelled_span(sp: SentencePieceTokenizer) -> None:
    text = "First Citizen:\nSpeak."
    first, last = sp.spelled_span(text)
    assert last == len(text)
    assert text.startswith(sp.decode(sp.encode(text)[:1])) and first >= 1


def test_sentencepiece_vocab_too_small_is_a_config_error() -> None:
    config = DataConfig(tokenizer="sentencepiece", vocab_size=50)
    with pytest.raises(ConfigError, match="--vocab-size 50 is too small"):
        build_tokenizer(config, VERSE)


# ---- bits per character -------------------------------------------------------------------
def test_bits_per_char_is_nats_over_chars_ln2() -> None:
    assert Score(nats=100.0, tokens=10, chars=40).bits_per_char == pytest.approx(
        100.0 / (40 * math.log(2))
    )


def test_val_chars_are_the_characters_the_scored_tokens_spell() -> None:
    config = micro_config()
    text = "a b c\n" * 90 + "Hello, brave  world\n"  # the last 20 characters: validation
    config.data.val_frac = 20 / len(text)
    chars = {}
    for kind in ("char", "word"):
        config.data.tokenizer = kind
        prep = prepare(config, text)
        chars[kind] = prep.val_chars
    assert chars["char"] == 19  # every character but the first
    assert chars["word"] == len(", brave  world\n")  # from the end of "Hello" to the newline


def test_bits_per_char_comparable_across_tokenizers() -> None:
    """A word model's total nats over the characters its tokens spell, like a char model's."""
    config = micro_config()
    config.data.tokenizer = "word"
    prep = prepare(config, VERSE * 12)
    config.model.vocab_size = prep.tokenizer.vocab_size
    torch.manual_seed(0)
    model = RNNLM(config.model)
    nats, count = score_tokens(model, prep.splits.val, batch_size=2, bptt=8)
    score = Score(nats, count, prep.val_chars)
    val_text = (VERSE * 12)[-round(len(VERSE * 12) * config.data.val_frac) :]
    first, last = prep.tokenizer.spelled_span(val_text)
    assert prep.val_chars == last - first
    assert score.bits_per_char == pytest.approx(nats / (prep.val_chars * math.log(2)))
    assert count == len(prep.splits.val) - 1


# ---- large vocabularies: adaptive softmax -------------------------------------------------
def test_adaptive_softmax_nll_matches_log_probs() -> None:
    torch.manual_seed(0)
    model = RNNLM(ModelConfig(vocab_size=9000, embed_size=8, hidden_size=16, dropout=0.0))
    assert model.adaptive
    x, y = torch.randint(0, 9000, (2, 5)), torch.randint(0, 9000, (2, 5))
    nll = model(x, targets=y).nll
    log_probs = model(x).log_probs
    assert torch.allclose(log_probs.exp().sum(-1), torch.ones(2, 5), atol=1e-5)
    expected = -log_probs.reshape(-1, 9000).gather(1, y.reshape(-1, 1)).squeeze(1)
    assert torch.allclose(nll, expected, atol=1e-5)


def test_small_vocabularies_keep_the_full_softmax() -> None:
    assert not RNNLM(ModelConfig(vocab_size=65, embed_size=8, hidden_size=16)).adaptive
    tied = ModelConfig(vocab_size=9000, embed_size=16, hidden_size=16, tie_weights=True)
    assert not RNNLM(tied).adaptive


# ---- end to end ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "options",
    [
        ["--tokenizer", "word", "--min-freq", "2"],
        ["--tokenizer", "sentencepiece", "--vocab-size", "300", "--sp-model", "bpe"],
    ],
)
def test_train_and_sample_word_and_subword_models(
    tmp_path: Path, corpus_file: Path, options: list[str]
) -> None:
    out = tmp_path / "run"
    runner = CliRunner()
    result = runner.invoke(
        app, ["train", str(corpus_file), "--out", str(out), *MICRO_ARGS, *options]
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["sample", str(out), "--length", "12", "--seed", "1"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip()
    tok = tokenizer_from_dict(load(out / "best.safetensors").tokenizer)
    assert tok.kind == options[1]
    assert np.all(tok.encode(result.stdout) < tok.vocab_size)


def test_adaptive_word_model_trains_and_samples(
    tmp_path: Path, corpus_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A vocabulary large enough for the adaptive softmax, made small for a micro model."""
    monkeypatch.setattr(model_module, "ADAPTIVE_MIN_VOCAB", 10)
    monkeypatch.setattr(model_module, "adaptive_cutoffs", lambda v: [v // 2])
    out = tmp_path / "run"
    runner = CliRunner()
    args = ["train", str(corpus_file), "--out", str(out), *MICRO_ARGS, "--tokenizer", "word"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert any(k.startswith("decoder.head") for k in load(out / "best.safetensors").model)
    result = runner.invoke(app, ["sample", str(out), "--length", "12", "--seed", "1"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip()
