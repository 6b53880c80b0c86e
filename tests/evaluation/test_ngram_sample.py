"""Sampling from the Kneser-Ney model: its own distribution, seeded, stopping where asked."""

from __future__ import annotations

import numpy as np
import pytest

from charlm.evaluation.ngram import count_ngrams, sample

V = 5
CORPUS = np.array([0, 1, 2, 3] * 50 + [0, 1, 4, 3] * 25)  # after 0 1: 2 twice as often as 4


def model(order: int = 3):
    return count_ngrams(CORPUS, V, order).model(order)


def test_draws_follow_the_models_distribution() -> None:
    m = model()
    rng = np.random.default_rng(0)
    draws = np.array([sample(m, np.array([0, 1]), 1, rng)[0] for _ in range(3000)])
    want = m.distribution(np.array([0, 1]))
    seen = np.bincount(draws, minlength=V) / len(draws)
    assert want[2] > 0.6 and want[4] > 0.25  # the test means something: two likely tokens
    np.testing.assert_allclose(seen, want, atol=0.03)


def test_the_same_seed_gives_the_same_tokens() -> None:
    m = model()
    a = sample(m, np.array([0]), 50, np.random.default_rng(7))
    b = sample(m, np.array([0]), 50, np.random.default_rng(7))
    c = sample(m, np.array([0]), 50, np.random.default_rng(8))
    assert len(a) == 50 and np.array_equal(a, b) and not np.array_equal(a, c)


def test_stops_at_the_stop_sequence_and_leaves_it_out() -> None:
    out = sample(model(), np.array([0]), 100, np.random.default_rng(1), stop=np.array([3, 0]))
    full = sample(model(), np.array([0]), 100, np.random.default_rng(1)).tolist()
    end = next(i for i in range(1, len(full)) if full[i - 1 : i + 1] == [3, 0])
    assert out.tolist() == full[: end - 1]  # the same draws, cut before the 3 0


def test_a_low_temperature_sharpens_and_zero_is_refused() -> None:
    m = model()
    rng = np.random.default_rng(0)
    cold = [sample(m, np.array([0, 1]), 1, rng, temperature=0.2)[0] for _ in range(300)]
    assert cold.count(2) / len(cold) > 0.95
    with pytest.raises(ValueError, match="temperature"):
        sample(m, np.array([0]), 1, rng, temperature=0)


def test_a_unigram_model_samples_without_context() -> None:
    out = sample(model(1), np.array([], dtype=np.int64), 20, np.random.default_rng(0))
    assert len(out) == 20 and set(out.tolist()) <= set(range(V))


def test_the_music_bench_samples_whole_tunes_from_a_5_gram() -> None:
    from bench.music import ngram_tunes
    from charlm.music.abc import split_tunes

    one = "X:1\nT:A\nM:4/4\nL:1/8\nK:G\nGABc dedB|dBAG E4|]\n\n"
    two = "X:1\nT:B\nM:6/8\nL:1/8\nK:D\nDFA dAF|GBd cBA|]\n\n"
    text = ngram_tunes((one + two) * 30, tunes=5, seed=3)
    tunes = split_tunes(text)
    assert len(tunes) == 5 and text.count("\n\n") == 5 and text.endswith("\n\n")
    assert all(t.text().startswith("X:1\nT:") for t in tunes)  # primed, then the model's
    assert ngram_tunes((one + two) * 30, tunes=5, seed=3) == text  # seeded
