"""The Kneser-Ney n-gram model against a plain reference, and its basic guarantees."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from charlm.evaluation.ngram import MIN_DISCOUNT, count_ngrams, discounts

V = 6  # token 5 never occurs in the toy corpus: it must still get some probability
TOY = [0, 1, 2, 0, 1, 3, 0, 1, 2, 2, 4, 0, 1, 2, 3, 3, 0, 2, 1, 0, 1, 2, 4, 4, 0, 1]


def reference_prob(corpus: list[int], order: int, history: list[int], w: int) -> float:
    """Interpolated modified Kneser-Ney as Chen and Goodman write it, one probability at a time."""
    raw = Counter()
    for k in range(1, order + 1):
        for i in range(len(corpus) - k + 1):
            raw[tuple(corpus[i : i + k])] += 1

    def counts(k: int) -> dict[tuple[int, ...], int]:
        if k == order:
            return {g: c for g, c in raw.items() if len(g) == k}
        # Continuation count: how many distinct tokens come right before the k-gram.
        cont = Counter()
        for g in raw:
            if len(g) == k + 1:
                cont[g[1:]] += 1
        return dict(cont)

    def discount(c: dict[tuple[int, ...], int]) -> list[float]:
        n = [sum(1 for v in c.values() if v == r) for r in (1, 2, 3, 4)]
        d = [0.0, 0.5, 1.0, 1.5]
        if n[0] and n[1]:
            y = n[0] / (n[0] + 2 * n[1])
            d[1] = 1 - 2 * y * n[1] / n[0]
            if n[2]:
                d[2] = 2 - 3 * y * n[2] / n[1]
                if n[3]:
                    d[3] = 3 - 4 * y * n[3] / n[2]
        return [0.0] + [min(max(d[r], MIN_DISCOUNT), r) for r in (1, 2, 3)]

    def p(k: int) -> float:
        if k == 0:
            return 1.0 / V
        lower = p(k - 1)
        if len(history) < k - 1:
            return lower
        ctx = tuple(history[len(history) - (k - 1) :]) if k > 1 else ()
        c = counts(k)
        d = discount(c)
        after = {g: v for g, v in c.items() if g[:-1] == ctx}
        total = sum(after.values())
        if total == 0:
            return lower
        mass = sum(d[min(v, 3)] for v in after.values())
        n = c.get((*ctx, w), 0)
        return (max(n - d[min(n, 3)], 0.0) + mass * lower) / total

    return p(order)


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_matches_the_reference_on_a_toy_corpus(order: int) -> None:
    model = count_ngrams(np.array(TOY), V, 4).model(order)
    text = [0, 1, 2, 4, 5, 0, 3, 3, 1, 2, 0, 1]  # seen, unseen and never-counted tokens
    got = np.exp(model.log_probs(np.array(text)))
    want = [reference_prob(TOY, order, text[:j], text[j]) for j in range(1, len(text))]
    np.testing.assert_allclose(got, want, rtol=1e-12)


@pytest.mark.parametrize("order", range(1, 9))
def test_every_distribution_sums_to_one(order: int) -> None:
    rng = np.random.default_rng(order)
    corpus = rng.integers(0, V - 1, size=3000)
    corpus[rng.integers(0, 3000, size=300)] = 0  # skewed, so counts of 1..4+ all occur
    model = count_ngrams(corpus, V, 8).model(order)
    for _ in range(30):
        if rng.random() < 0.5:  # a context seen in training, else a random one
            start = int(rng.integers(0, 2900))
            context = corpus[start : start + int(rng.integers(0, 12))]
        else:
            context = rng.integers(0, V, size=int(rng.integers(0, 12)))
        dist = model.distribution(context)
        assert dist.shape == (V,)
        assert dist.sum() == pytest.approx(1.0, abs=1e-9)
        assert (dist > 0).all()


def test_an_unseen_context_backs_off_to_the_unigram_level() -> None:
    model = count_ngrams(np.array(TOY), V, 5).model(5)
    unseen = model.distribution(np.array([3, 4, 5]))  # token 5 never occurs in training
    np.testing.assert_allclose(unseen, model.distribution(np.array([], dtype=np.int64)))
    assert unseen[5] > 0
    seen = model.distribution(np.array([0, 1]))
    assert seen.argmax() == 2  # '0 1' is followed by 2 most often in TOY
    assert seen[5] > 0 and seen[5] < unseen[5]


def test_discounts_follow_the_count_of_counts() -> None:
    # n1 = 3, n2 = 2, n3 = 1, n4 = 1: Y = 3/7, D1 = 3/7, D2 = 19/14, D3+ = 9/7.
    d = discounts(np.array([1, 1, 1, 2, 2, 3, 4, 9]))
    np.testing.assert_allclose(d, [0.0, 3 / 7, 19 / 14, 9 / 7])


def test_one_count_serves_every_lower_order() -> None:
    corpus = np.random.default_rng(0).integers(0, V, size=500)
    high = count_ngrams(corpus, V, 6)
    for n in (1, 3, 5):
        alone = count_ngrams(corpus, V, n).model(n)
        np.testing.assert_allclose(high.model(n).log_probs(corpus), alone.log_probs(corpus))


def test_round_trips_through_its_arrays() -> None:
    model = count_ngrams(np.array(TOY), V, 4).model(4)
    again = type(model).from_arrays(V, 4, model.to_arrays())
    np.testing.assert_array_equal(again.log_probs(np.array(TOY)), model.log_probs(np.array(TOY)))


def test_top_only_counts_give_the_same_top_model_and_no_other() -> None:
    corpus = np.random.default_rng(1).integers(0, V, size=400)
    lean = count_ngrams(corpus, V, 4, every_model=False)
    full = count_ngrams(corpus, V, 4)
    np.testing.assert_array_equal(lean.model(4).log_probs(corpus), full.model(4).log_probs(corpus))
    with pytest.raises(ValueError, match="not counted"):
        lean.model(2)
