"""Word level as the literature does it: whitespace mode, its perplexity, its samples."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from charlm.cli import app
from charlm.config.presets import PRESETS
from charlm.config.schema import DataConfig, ModelConfig
from charlm.data.tokenizers import WordTokenizer, build_tokenizer, tokenizer_from_dict
from charlm.errors import ConfigError
from charlm.evaluation.scoring import score_text
from charlm.generation.generate import GenerateConfig, generate_text, unk_masked
from charlm.models.lm import RNNLM
from charlm.rundir.checkpoint import load
from charlm.text.pretokenised import choose_word_split, looks_pretokenised
from tests.helpers import MICRO_ARGS
from tests.helpers.texts import VERSE

# WikiText's look: spaced punctuation, @-@ for hyphens, a literal <unk>, blank lines.
WIKI = """ = Valkyria Chronicles III =

 Senjō no Valkyria 3 : <unk> Chronicles is a tactical role @-@ playing game .
 The game began development in 2010 , carrying over a large portion of the work .

 It met with positive sales in Japan , and was praised by both <unk> and <unk> critics .
"""

WHITESPACE = DataConfig(tokenizer="word", word_split="whitespace")


def whitespace_tokenizer(text: str = WIKI) -> WordTokenizer:
    tok = build_tokenizer(WHITESPACE, text)
    assert isinstance(tok, WordTokenizer)
    return tok


def wlm_words(text: str) -> list[str]:
    """The tokens PyTorch's word_language_model reads from a file, done by hand: every line
    (the file iterated line by line) split on whitespace, then '<eos>'."""
    return [w for line in text.splitlines() for w in [*line.split(), "<eos>"]]


# ---- tokenisation ---------------------------------------------------------------------------
def test_whitespace_tokens_are_exactly_the_words_with_eos_per_line() -> None:
    tok = whitespace_tokenizer()
    words = [tok.words[i] for i in tok.encode(WIKI)]
    assert words == wlm_words(WIKI)
    assert words.count("<eos>") == WIKI.count("\n") == 6  # blank lines are one <eos> each
    assert "@-@" in words and "," in words and "Senjō" in words


def test_the_corpus_unk_is_the_unknown_token_and_unseen_words_join_it() -> None:
    tok = whitespace_tokenizer()
    ids = tok.encode("both <unk> zebra @-@ .\n")
    assert ids.tolist() == [
        tok.words.index("both"),
        tok.unk_id,
        tok.unk_id,
        tok.words.index("@-@"),
        tok.words.index("."),
        1,
    ]
    assert tok.words[:2] == ["<unk>", "<eos>"] and tok.words.count("<unk>") == 1


def test_punct_mode_still_reads_raw_text_as_before() -> None:
    tok = build_tokenizer(DataConfig(tokenizer="word", word_split="punct"), WIKI)
    assert isinstance(tok, WordTokenizer) and tok.split == "punct"
    words = [tok.words[i] for i in tok.encode("a <unk> b\n")]
    assert words[1:4] == ["<", "unk", ">"]  # a literal <unk> is ordinary text here


def test_whitespace_decode_is_the_text_as_tokenised() -> None:
    tok = whitespace_tokenizer()
    text = "The game began , carrying <unk> @-@ sales .\n\nIt met critics .\n"
    assert tok.decode(tok.encode(text)) == text
    assert tok.decode(tok.encode("  The   game \n")) == "The game\n"  # spacing normalised


def test_split_is_saved_and_old_checkpoints_load_as_punct() -> None:
    tok = whitespace_tokenizer()
    again = tokenizer_from_dict(json.loads(json.dumps(tok.to_dict())))
    assert isinstance(again, WordTokenizer) and again.split == "whitespace"
    assert np.array_equal(again.encode(WIKI), tok.encode(WIKI))
    old = tokenizer_from_dict({"kind": "word", "words": ["a", "b"]})  # before --word-split
    assert isinstance(old, WordTokenizer) and old.split == "punct"


def test_word_split_is_for_the_word_tokenizer_only() -> None:
    with pytest.raises(ConfigError, match="--word-split whitespace applies to --tokenizer word"):
        DataConfig(tokenizer="char", word_split="whitespace")
    with pytest.raises(ConfigError, match="unknown --word-split"):
        DataConfig(tokenizer="word", word_split="spaces")
    DataConfig(tokenizer="char")  # auto, the default, is fine with any tokenizer


# ---- auto -----------------------------------------------------------------------------------
def test_auto_takes_wikitext_and_ptb_style_corpora_as_pretokenised() -> None:
    assert choose_word_split("auto", WIKI)[0] == "whitespace"
    ptb = " no , it was n't black monday .\n but while the exchange did n't fall , it did .\n"
    assert choose_word_split("auto", ptb * 50)[0] == "whitespace"  # spaced punctuation
    assert "literal <unk>" in (looks_pretokenised(" a <unk> b <unk> c <unk> \n") or "")


def test_auto_leaves_raw_text_and_stray_markers_to_punct() -> None:
    assert choose_word_split("auto", VERSE * 20)[0] == "punct"
    assert looks_pretokenised("HTML has <unk> once , maybe .\n" + VERSE * 20) is None
    assert choose_word_split("punct", WIKI) == ("punct", "")  # an explicit choice stands


# ---- perplexity that compares ---------------------------------------------------------------
def uniform_model(vocab: int) -> RNNLM:
    """Every next word equally likely: its perplexity is the vocabulary size, exactly."""
    model = RNNLM(ModelConfig(vocab_size=vocab, embed_size=8, hidden_size=8))
    with torch.no_grad():
        model.decoder.weight.zero_()
        model.decoder.bias.zero_()
    return model


def test_perplexity_counts_words_and_eos_as_word_language_model_does() -> None:
    tok = whitespace_tokenizer()
    score = score_text(uniform_model(tok.vocab_size), tok, WIKI, "wiki", batch_size=2, bptt=5)
    n = len(wlm_words(WIKI))  # 56 words and 6 <eos>, counted as word_language_model counts
    assert (score.text_tokens, score.tokens) == (n, n - 1)  # the first token is context only
    assert score.perplexity == pytest.approx(tok.vocab_size, rel=1e-5)
    assert score.unit == "word (with <eos>)"
    # Bits per character divide the same nats by the characters those tokens spell.
    first = WIKI.index(" ", 1)  # the text after the first token
    assert score.chars == len(WIKI) - first
    assert score.bits_per_char == pytest.approx(
        (n - 1) * math.log(tok.vocab_size) / (score.chars * math.log(2)), rel=1e-5
    )


def test_perplexity_is_the_mean_loss_of_a_plain_forward_pass() -> None:
    """The figure word_language_model's evaluate() computes: exp of the mean cross-entropy
    over every predicted token, here from one forward pass over the whole text."""
    tok = whitespace_tokenizer()
    torch.manual_seed(0)
    model = RNNLM(ModelConfig(vocab_size=tok.vocab_size, embed_size=8, hidden_size=8)).eval()
    ids = torch.as_tensor(tok.encode(WIKI).astype(np.int64))[None]
    with torch.no_grad():
        log_probs = model(ids[:, :-1]).log_probs
        loss = torch.nn.functional.nll_loss(log_probs[0], ids[0, 1:])
    score = score_text(model, tok, WIKI, batch_size=1, bptt=1000)
    assert score.perplexity == pytest.approx(math.exp(float(loss)), rel=1e-4)


def test_a_last_line_without_a_line_end_still_gets_its_eos() -> None:
    tok = whitespace_tokenizer()
    model = uniform_model(tok.vocab_size)
    assert score_text(model, tok, WIKI.rstrip("\n")).tokens == len(wlm_words(WIKI)) - 1


def test_evaluate_counts_marked_unk_apart_from_missing_words() -> None:
    tok = whitespace_tokenizer()
    score = score_text(uniform_model(tok.vocab_size), tok, "<unk> zebra yak quokka .\n")
    assert (score.marked_unk, score.oov_tokens) == (1, 3)  # the three animals are not in WIKI


# ---- samples --------------------------------------------------------------------------------
def unk_loving_model(vocab: int) -> RNNLM:
    model = uniform_model(vocab)
    with torch.no_grad():
        model.decoder.bias[0] = 3.0  # <unk> about 20 times likelier than any other word
    return model


def test_samples_never_hold_unk_unless_asked() -> None:
    tok = whitespace_tokenizer()
    model = unk_loving_model(tok.vocab_size)
    plain = generate_text(model, tok, [], GenerateConfig(length=200, seed=1))[0]
    shown = generate_text(model, tok, [], GenerateConfig(length=200, seed=1, show_unk=True))[0]
    assert "<unk>" not in plain and len(plain.split()) > 100
    assert shown.count("<unk>") > 50
    greedy = GenerateConfig(length=5, seed=1)
    greedy.sampling.greedy = True
    assert "<unk>" not in generate_text(model, tok, [], greedy)[0]


def test_sentencepiece_samples_never_draw_its_unknown_piece_either() -> None:
    sp = build_tokenizer(DataConfig(tokenizer="sentencepiece", vocab_size=300), VERSE * 12)
    banned = unk_masked(GenerateConfig().sampling, sp).banned
    assert banned == (0,) and sp.decode([0]) != ""  # id 0 would print as a visible mark
    char = build_tokenizer(DataConfig(), VERSE)
    assert unk_masked(GenerateConfig().sampling, char).banned == ()  # no unknown token


# ---- end to end -----------------------------------------------------------------------------
def wikistyle(tmp_path: Path, one_line: bool = False) -> Path:
    text = (WIKI * 15).replace("\n", " ") if one_line else WIKI * 15
    path = tmp_path / "wiki.txt"
    path.write_text(text, encoding="utf-8")
    return path


def test_train_announces_whitespace_mode_and_everything_uses_it(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "run"
    args = ["train", str(wikistyle(tmp_path)), "--tokenizer", "word", "--out", str(out)]
    result = runner.invoke(app, [*args, *MICRO_ARGS])
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert "word split whitespace: the corpus looks pre-tokenised" in result.stderr
    ck = load(out / "best.safetensors")
    assert ck.tokenizer["split"] == "whitespace" and ck.config.data.word_split == "auto"
    word_small = PRESETS["word-small"]  # the default preset follows the tokenizer
    assert ck.config.model.dropout == word_small["model"]["dropout"]
    assert ck.config.train.optimizer == word_small["train"]["optimizer"] == "sgd"
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in rows if "val_bpc" in r]
    assert evals and all(r["val_ppl"] == pytest.approx(math.exp(r["val_loss"])) for r in evals)

    sample = runner.invoke(app, ["sample", str(out), "--length", "30", "--seed", "1"])
    assert sample.exit_code == 0, sample.output
    assert "<unk>" not in sample.stdout and "<eos>" not in sample.stdout

    test = tmp_path / "test.txt"
    test.write_text(WIKI, encoding="utf-8")
    result = runner.invoke(app, ["evaluate", str(out), str(test), "--json"])
    assert result.exit_code == 0, result.output
    total = json.loads(result.stdout)["total"]
    assert total["perplexity_per"] == "word (with <eos>)"
    assert total["tokens"] == len(wlm_words(WIKI)) and total["marked_unk_tokens"] == 3
    assert "perplexity per word, with <eos>" in result.stderr


def test_a_corpus_on_one_line_trains_and_evaluates(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "run"
    corpus = wikistyle(tmp_path, one_line=True)
    args = ["train", str(corpus), "--tokenizer", "word", "--word-split", "whitespace"]
    result = runner.invoke(app, [*args, "--out", str(out), *MICRO_ARGS])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["evaluate", str(out), str(corpus), "--json"])
    assert result.exit_code == 0, result.output
    total = json.loads(result.stdout)["total"]
    assert total["tokens"] == len(corpus.read_text().split()) + 1  # one line, one <eos>
    assert total["oov_tokens"] == 0 and np.isfinite(total["perplexity"])


def test_an_evaluation_text_of_unseen_words_warns_with_its_oov_rate(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "run"
    args = ["train", str(wikistyle(tmp_path)), "--tokenizer", "word", "--out", str(out)]
    assert runner.invoke(app, [*args, *MICRO_ARGS]).exit_code == 0
    foreign = tmp_path / "foreign.txt"
    foreign.write_text("zebra yak quokka The game okapi .\n" * 5, encoding="utf-8")
    result = runner.invoke(app, ["evaluate", str(out), str(foreign)])
    assert result.exit_code == 0, result.output
    assert "warning: 50.0% of the tokens of" in result.stderr  # 4 of 7 words + <eos>
    assert "outside the model's vocabulary" in result.stderr
    same = runner.invoke(app, ["evaluate", str(out), str(wikistyle(tmp_path))])
    assert "warning" not in same.stderr
