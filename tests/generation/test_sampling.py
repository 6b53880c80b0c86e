"""Choosing tokens: temperature, bias, top-k, top-p, greedy, seeds, stop strings."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from charlm.config.schema import ModelConfig
from charlm.data.tokenizers import CharTokenizer, WordTokenizer
from charlm.errors import ConfigError
from charlm.generation.generate import (
    Detokenizer,
    GenerateConfig,
    StopScanner,
    generate_text,
    sample_text,
)
from charlm.generation.sampling import SamplingConfig, choose, distribution
from charlm.models.lm import RNNLM

TEXT = "the quick brown fox jumps over the lazy dog. THE END\n"


@pytest.fixture
def lm() -> tuple[RNNLM, CharTokenizer]:
    tok = CharTokenizer.train(TEXT)
    torch.manual_seed(0)
    model = RNNLM(ModelConfig(vocab_size=tok.vocab_size, embed_size=8, hidden_size=16,
                              num_layers=2))  # fmt: skip
    with torch.no_grad():
        model.decoder.weight.mul_(100.0)  # peaked: no near-ties between the top two tokens
    return model.eval(), tok


def gen(lm: tuple[RNNLM, CharTokenizer], prime: str = "the ", **kw: object) -> list[str]:
    model, tok = lm
    sampling = {k: kw.pop(k) for k in list(kw) if k in SamplingConfig.__dataclass_fields__}
    cfg = GenerateConfig(sampling=SamplingConfig(**sampling), **kw)  # type: ignore[arg-type]
    return generate_text(model, tok, tok.encode(prime), cfg)


def test_bias_is_temperature_one_over_one_plus_b() -> None:
    logits = np.random.default_rng(0).normal(size=(4, 30)) * 3
    for b in (0.0, 0.5, 2.0, 9.0):
        p_bias = distribution(logits, SamplingConfig(bias=b))
        graves = np.exp((1 + b) * logits)  # p_i ~ exp((1 + b) z_i)
        np.testing.assert_allclose(p_bias, graves / graves.sum(-1, keepdims=True), rtol=1e-12)
        p_temp = distribution(logits, SamplingConfig(temperature=1 / (1 + b)))
        np.testing.assert_allclose(p_bias, p_temp, rtol=1e-12)


def test_bias_samples_like_the_equivalent_temperature(lm) -> None:  # type: ignore[no-untyped-def]
    biased = gen(lm, length=200, seed=5, bias=1.5)
    tempered = gen(lm, length=200, seed=5, temperature=1 / 2.5)
    assert biased == tempered
    assert biased != gen(lm, length=200, seed=5)  # and it does change the text


def test_low_temperature_equals_greedy(lm) -> None:  # type: ignore[no-untyped-def]
    with torch.no_grad():
        lm[0].decoder.weight.mul_(10.0)  # top-two gaps well above T = 0.01 at every step
    greedy = gen(lm, length=150, seed=1, greedy=True)
    assert gen(lm, length=150, seed=2, temperature=0.01) == greedy
    assert gen(lm, length=150, seed=2, temperature=20.0) != greedy


@pytest.mark.parametrize("cfg", [SamplingConfig(), SamplingConfig(top_p=0.99)])
def test_draws_follow_the_distribution(cfg: SamplingConfig) -> None:
    # Gumbel-max draws, and inverse-CDF draws (the top-p path; 0.99 keeps all four here).
    logits = np.log(np.array([[0.5, 0.3, 0.15, 0.05]]))
    rng = np.random.default_rng(0)
    draws = np.concatenate([choose(np.repeat(logits, 1000, 0), cfg, rng) for _ in range(20)])
    freq = np.bincount(draws, minlength=4) / len(draws)
    np.testing.assert_allclose(freq, [0.5, 0.3, 0.15, 0.05], atol=0.01)


def test_top_k_never_leaves_the_k_most_likely() -> None:
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(500, 40))
    for k in (1, 3, 10):
        ids = choose(logits, SamplingConfig(top_k=k, temperature=5.0), rng)
        ranks = (logits > logits[np.arange(500), ids][:, None]).sum(-1)
        assert ranks.max() < k
        if k == 3:
            assert len(np.unique(ranks)) == 3  # all three are actually used
    np.testing.assert_array_equal(choose(logits, SamplingConfig(top_k=1), rng), logits.argmax(-1))


def test_top_p_keeps_the_nucleus() -> None:
    p = np.array([[0.5, 0.25, 0.15, 0.1]])
    kept = distribution(np.log(p), SamplingConfig(top_p=0.7))
    np.testing.assert_allclose(kept, [[2 / 3, 1 / 3, 0, 0]])
    rng = np.random.default_rng(2)
    ids = choose(np.log(np.repeat(p, 2000, 0)), SamplingConfig(top_p=0.7), rng)
    assert set(np.unique(ids)) == {0, 1}
    np.testing.assert_allclose(distribution(np.log(p), SamplingConfig(top_p=1.0)), p)


def test_seeds_repeat_and_differ(lm) -> None:  # type: ignore[no-untyped-def]
    a = gen(lm, length=100, seed=7, num_samples=3)
    assert a == gen(lm, length=100, seed=7, num_samples=3)
    assert a != gen(lm, length=100, seed=8, num_samples=3)
    assert len(set(a)) == 3  # the streams of a batch are independent


def test_the_prime_conditions_the_sample(lm) -> None:  # type: ignore[no-untyped-def]
    a = gen(lm, prime="the quick ", length=60, seed=1, greedy=True)
    b = gen(lm, prime="THE END", length=60, seed=1, greedy=True)
    assert a != b
    # The same as a plain torch loop that feeds the prime, then its own greedy choices.
    model, tok = lm
    expected, x, hidden = [], torch.as_tensor(tok.encode("the quick "), dtype=torch.long), None
    with torch.no_grad():
        for _ in range(60):
            out = model(x[None], hidden)
            log_probs, hidden = out.log_probs, out.hidden
            expected.append(int(log_probs[0, -1].argmax()))
            x = torch.tensor(expected[-1:])
    assert a == [tok.decode(expected)]


def test_stop_string_ends_a_sample(lm) -> None:  # type: ignore[no-untyped-def]
    full = gen(lm, length=300, seed=3)[0]
    stop = full[40:42]
    cut = gen(lm, length=300, seed=3, stop=(stop,))[0]
    assert cut == full[: full.index(stop)]
    assert stop not in cut


def test_stop_scanner_holds_back_partial_matches() -> None:
    s = StopScanner(["\n\n", "END"])
    assert s.feed("ab") == "ab"
    assert s.feed("\n") == ""  # could be the start of \n\n
    assert s.feed("c") == "\nc"
    assert s.feed("E") + s.feed("N") == ""
    assert s.feed("D!") == ""
    assert s.done and s.feed("more") == ""
    t = StopScanner(["xyz"])
    assert t.feed("ax") == "a"
    assert t.flush() == "x"


def test_word_detokenizer_rebuilds_the_text() -> None:
    text = 'He said , " go home . "\nShe went .'
    tok = WordTokenizer(["He", "said", ",", '"', "go", "home", ".", "She", "went"])
    ids = [int(i) for i in tok.encode(text)]
    d = Detokenizer(tok, ids[:2])
    pieces = [d.push(i) for i in ids[2:]]
    assert tok.decode(ids[:2]) + "".join(pieces) == 'He said, "go home."\nShe went.'
    assert pieces[:3] == [",", ' "', "go"]  # spacing from context, not token by token


def test_options_are_checked() -> None:
    for bad in ({"temperature": 0.0}, {"bias": -1.0}, {"top_k": 0}, {"top_p": 1.5}):
        with pytest.raises(ConfigError):
            SamplingConfig(**bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        GenerateConfig(stop=("",))


def test_training_samples_and_the_cli_share_one_loop(lm) -> None:  # type: ignore[no-untyped-def]
    # samples.txt is generate_text from the start context with a named seed: nothing else differs.
    model, tok = lm
    model.train()
    a = sample_text(model, tok, 40, 0.8, seed=4)
    assert model.training  # training mode comes back after sampling
    assert a == sample_text(model, tok, 40, 0.8, seed=4) != sample_text(model, tok, 40, 0.8, seed=5)
    cfg = GenerateConfig(40, seed=4, sampling=SamplingConfig(temperature=0.8))
    assert a == generate_text(model, tok, [], cfg)[0]
