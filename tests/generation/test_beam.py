"""Beam search against enumeration on a model small enough to list every continuation."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from charlm.config.schema import ModelConfig
from charlm.data.tokenizers import CharTokenizer, WordTokenizer
from charlm.errors import ConfigError
from charlm.generation.beam import BeamConfig, complete
from charlm.generation.generate import GenerateConfig, generate_text
from charlm.generation.sampling import SamplingConfig
from charlm.models import registry
from charlm.models.lm import RNNLM


def _model(vocab: int, cell: str = "lstm", seed: int = 0) -> RNNLM:
    torch.manual_seed(seed)
    cfg = registry.for_cell(
        ModelConfig(vocab_size=vocab, embed_size=4, hidden_size=8, num_layers=2, dropout=0.0),
        cell,
    )
    model = RNNLM(cfg).eval()
    with torch.no_grad():  # sharper than the initial weights, so the ranking is not a tie
        for p in model.parameters():
            p.mul_(3)
    return model


def _logprob(model: RNNLM, context: list[int], ids: tuple[int, ...]) -> float:
    with torch.no_grad():
        lp = model(torch.tensor([[*context, *ids]])).log_probs[0]
    n = len(context)
    return float(sum(lp[n - 1 + k, t] for k, t in enumerate(ids)))


def _enumerated(model: RNNLM, tok: CharTokenizer, context: list[int], length: int):
    """Every outcome of at most ``length`` tokens: a text ended by its first space after its
    first character, or ``length`` tokens without one; each with its log-probability."""
    space = tok.encode(" ")[0]
    found: dict[str, float] = {}
    for n in range(1, length + 1):
        for ids in itertools.product(range(tok.vocab_size), repeat=n):
            inner = ids[1:-1] if n > 1 else ()
            if space in inner:
                continue  # ended earlier
            if n > 1 and ids[-1] == space:
                text = tok.decode(ids[:-1])
            elif n == length:
                text = tok.decode(ids)
            else:
                continue
            lp = _logprob(model, context, ids)
            found[text] = np.logaddexp(found.get(text, -math.inf), lp)
    return sorted(found.items(), key=lambda kv: -kv[1])


@pytest.mark.parametrize("cell", ["lstm", "gru", "jordan"])
def test_a_wide_beam_finds_the_exact_most_probable_texts(cell: str) -> None:
    tok = CharTokenizer(list("ab "))
    model = _model(tok.vocab_size, cell)
    context = [int(i) for i in tok.encode("ab")]
    truth = _enumerated(model, tok, context, 4)
    cfg = BeamConfig(beam=81, results=5, length=4, stop=(" ",))
    found = complete(model, tok, context, cfg)
    assert [h.text for h in found] == [t for t, _ in truth[:5]]
    assert [h.logprob for h in found] == pytest.approx([lp for _, lp in truth[:5]], abs=1e-5)


def test_a_narrow_beam_is_greedy_decoding() -> None:
    tok = CharTokenizer(list("abcd \n"))
    model = _model(tok.vocab_size)
    context = [int(i) for i in tok.encode("ab")]
    greedy = GenerateConfig(30, seed=0, sampling=SamplingConfig(greedy=True))
    expected = generate_text(model, tok, context, greedy)[0]
    (found,) = complete(model, tok, context, BeamConfig(beam=1, results=1, length=30))
    assert found.text == expected and found.ended == "length" and found.tokens == 30


def test_results_are_distinct_and_ranked() -> None:
    tok = CharTokenizer(list("abcd \n"))
    model = _model(tok.vocab_size, seed=1)
    found = complete(model, tok, [0], BeamConfig(beam=8, results=8, length=6, stop=(" ", "\n")))
    texts = [h.text for h in found]
    assert len(set(texts)) == len(texts) == 8
    assert [h.score for h in found] == sorted((h.score for h in found), reverse=True)
    assert all(" " not in t[1:] and "\n" not in t[1:] for t in texts)


def test_length_normalisation_ranks_by_log_probability_per_token() -> None:
    tok = CharTokenizer(list("ab "))
    model = _model(tok.vocab_size)
    cfg = BeamConfig(beam=81, results=5, length=4, stop=(" ",), length_norm=1.0)
    found = complete(model, tok, [0], cfg)
    assert all(h.score == pytest.approx(h.logprob / h.tokens) for h in found)
    assert [h.score for h in found] == sorted((h.score for h in found), reverse=True)


def test_a_word_model_completes_whole_words_without_unk() -> None:
    tok = WordTokenizer(["the", "king", "queen", ",", "is"])
    model = _model(tok.vocab_size)
    context = [int(i) for i in tok.encode("the king is")]
    found = complete(model, tok, context, BeamConfig(beam=10, results=4, length=3, stop=(" ",)))
    assert found and all("<unk>" not in h.text for h in found)
    # One token each: the next word's leading space ends it, whatever that word is.
    assert all(len(tok.encode(h.text)) == 1 and " " not in h.text[1:] for h in found)
    # The mass of every token that can follow a word, not of one of them: p(word) itself.
    with torch.no_grad():
        lp = model(torch.tensor([context])).log_probs[0, -1]
    best = found[0]
    word_id = int(tok.encode(best.text.strip())[0])
    assert best.logprob <= float(lp[word_id]) + 1e-6


@pytest.mark.parametrize(
    "kwargs",
    [{"beam": 0}, {"beam": 2, "results": 3}, {"length": 0}, {"stop": ("",)}, {"length_norm": -1}],
)
def test_impossible_settings_are_refused(kwargs: dict) -> None:
    with pytest.raises(ConfigError):
        BeamConfig(**{"beam": 5, "results": 1, **kwargs})
