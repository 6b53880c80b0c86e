"""An interpolated modified Kneser-Ney n-gram model over token ids, in NumPy.

Chen and Goodman (1998): each order discounts its counts by D1, D2 or D3+ (estimated from
that order's count-of-counts) and gives the mass it took to the next lower order, down to
a uniform distribution over the vocabulary. The top order counts n-grams; the lower orders
count continuations (how many distinct tokens precede an n-gram), so a token that is common
only after one context does not look common everywhere.

No n-gram is ever a Python tuple. The k-gram ending at position j gets a dense integer id:
its key is ``id of the (k-1)-gram ending at j-1`` * V + token[j], and its id is the rank of
that key among the distinct keys of order k (``np.unique``). Keys stay below
(distinct n-grams) * V, far inside int64, at any order. Lookups are ``np.searchsorted``
over those sorted keys, vectorised over every position of a text at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Discounts are clamped into [MIN_DISCOUNT, k] for count k: a toy corpus can make the
# count-of-counts formula give 0 or less, and without a positive discount an unseen token
# after a seen context would get probability 0.
MIN_DISCOUNT = 0.05


@dataclass
class Order:
    """The n-grams of one order k, and the statistics of their (k-1)-token contexts."""

    keys: np.ndarray  # (G,) int64, sorted: context id * V + last token
    counts: np.ndarray  # (G,) int32: raw counts at the top order, continuation counts below
    discounts: np.ndarray  # (4,) float64: D(0) = 0, D1, D2, D3+
    totals: np.ndarray  # (C,) int32: sum of counts after each context
    backoff_mass: np.ndarray  # (C,) float64: D1 N1 + D2 N2 + D3+ N3+ of each context


def discounts(counts: np.ndarray) -> np.ndarray:
    """D1, D2, D3+ from the numbers of n-grams seen once to four times (Chen and Goodman)."""
    n1, n2, n3, n4 = (int(np.count_nonzero(counts == c)) for c in (1, 2, 3, 4))
    d = np.array([0.0, 0.5, 1.0, 1.5])  # used where the counts cannot say
    if n1 and n2:
        y = n1 / (n1 + 2 * n2)
        d[1] = 1 - 2 * y * n2 / n1
        if n3:
            d[2] = 2 - 3 * y * n3 / n2
            if n4:
                d[3] = 3 - 4 * y * n4 / n3
    d[1:] = np.clip(d[1:], MIN_DISCOUNT, [1.0, 2.0, 3.0])
    return d


def make_order(keys: np.ndarray, counts: np.ndarray, n_contexts: int, vocab: int) -> Order:
    d = discounts(counts)
    ctx = keys // vocab
    # Int32 halves the memory of the largest arrays: no count exceeds the corpus length.
    totals = np.bincount(ctx, weights=counts, minlength=n_contexts).astype(np.int32)
    mass = d[np.minimum(counts, 3)]
    mass[counts == 0] = 0.0
    backoff = np.bincount(ctx, weights=mass, minlength=n_contexts)
    return Order(keys, counts, d, totals, backoff)


@dataclass
class Counts:
    """Every order's distinct n-grams with raw and continuation counts: any model up to N."""

    vocab: int
    keys: list[np.ndarray]  # keys[k - 1]: the sorted keys of order k
    raw: list[np.ndarray | None]  # None below the top when only the top model was wanted
    continuation: list[np.ndarray]  # none for the highest order counted

    @property
    def max_order(self) -> int:
        return len(self.keys)

    def model(self, order: int) -> NgramModel:
        """The order-``order`` model: raw counts on top, continuation counts below."""
        if not 1 <= order <= self.max_order or self.raw[order - 1] is None:
            raise ValueError(f"order {order} was not counted for a model of its own")
        arrays = {}
        for k in range(1, order + 1):
            arrays[f"keys_{k}"] = self.keys[k - 1]
            arrays[f"counts_{k}"] = self.raw[k - 1] if k == order else self.continuation[k - 1]
        return NgramModel.from_arrays(self.vocab, order, arrays)


def count_ngrams(
    tokens: np.ndarray, vocab: int, max_order: int, every_model: bool = True
) -> Counts:
    """Count orders 1..max_order of ``tokens`` (ids below ``vocab``).

    ``every_model``: keep the raw counts of every order, so that the models of every order
    up to max_order can be built (a search); otherwise only the top order's (less memory).
    """
    x = np.asarray(tokens, dtype=np.int64)
    if len(x) == 0:
        raise ValueError("no tokens to count")
    keys, raw, cont = [], [], []
    prev_ids = np.zeros(len(x), dtype=np.int64)  # the empty context, ending anywhere
    for k in range(1, max_order + 1):
        if len(x) < k:
            break
        # The k-gram ending at j (j = k-1 .. T-1): its (k-1)-token prefix ended at j-1.
        key = prev_ids[: len(x) - k + 1] * vocab + x[k - 1 :]
        uniq, first, ids, n = np.unique(
            key, return_index=True, return_inverse=True, return_counts=True
        )
        if k > 1:
            # A distinct k-gram's suffix is the (k-1)-gram ending where it ends: count each
            # distinct k-gram once against its suffix, giving that suffix's continuations.
            suffix = prev_ids[first + 1]
            cont.append(np.bincount(suffix, minlength=len(keys[-1])).astype(np.int32))
            if not every_model:
                raw[-1] = None
        keys.append(uniq)
        raw.append(n.astype(np.int32))
        prev_ids = ids.reshape(-1).astype(np.int64)
    return Counts(vocab, keys, raw, cont)


class NgramModel:
    """P(token | up to order-1 tokens before it), interpolated down to uniform."""

    def __init__(self, vocab: int, orders: list[Order]) -> None:
        self.vocab, self.orders = vocab, orders

    @property
    def order(self) -> int:
        return len(self.orders)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Keys and counts of every order: all the model is (the rest follows from them)."""
        out = {}
        for k, o in enumerate(self.orders, start=1):
            out[f"keys_{k}"], out[f"counts_{k}"] = o.keys, o.counts
        return out

    @classmethod
    def from_arrays(cls, vocab: int, order: int, arrays: dict[str, np.ndarray]) -> NgramModel:
        orders, n_contexts = [], 1
        for k in range(1, order + 1):
            keys = np.asarray(arrays[f"keys_{k}"], dtype=np.int64)
            counts = np.asarray(arrays[f"counts_{k}"], dtype=np.int32)
            orders.append(make_order(keys, counts, n_contexts, vocab))
            n_contexts = len(keys)
        return cls(vocab, orders)

    def context_ids(self, tokens: np.ndarray) -> list[np.ndarray]:
        """ids[m][j]: the id of the m-gram ending at position j, or -1 when never seen."""
        y = np.asarray(tokens, dtype=np.int64)
        ids = [np.zeros(len(y), dtype=np.int64)]
        for m in range(1, self.order):
            prev = np.full(len(y), -1, dtype=np.int64)
            prev[1:] = ids[-1][:-1]
            if m == 1:
                prev[0] = 0  # a unigram's context is empty: it exists at every position
            ids.append(_find(self.orders[m - 1].keys, prev, y, self.vocab))
        return ids

    def probs(self, contexts: list[np.ndarray], targets: np.ndarray) -> np.ndarray:
        """P(targets[i] | the context whose m-gram ids are contexts[m][i]), for every i."""
        t = np.asarray(targets, dtype=np.int64)
        p = np.full(len(t), 1.0 / self.vocab)
        for k, o in enumerate(self.orders, start=1):
            ctx = contexts[k - 1]
            known = ctx >= 0
            safe = np.where(known, ctx, 0)
            total = np.where(known, o.totals[safe] if len(o.totals) else 0.0, 0.0)
            seen = total > 0  # an unseen context (or one never followed) backs off whole
            idx = _find(o.keys, safe, t, self.vocab)
            c = np.where(idx >= 0, o.counts[np.maximum(idx, 0)], 0).astype(np.int64)
            top = np.maximum(c - o.discounts[np.minimum(c, 3)], 0.0)
            denom = np.where(seen, total, 1.0)
            mixed = (top + o.backoff_mass[safe] * p) / denom
            p = np.where(seen, mixed, p)
        return p

    def log_probs(self, tokens: np.ndarray) -> np.ndarray:
        """Natural log-probability of tokens[1:], each given every token before it."""
        ids = self.context_ids(tokens)
        y = np.asarray(tokens, dtype=np.int64)
        return np.log(self.probs([c[:-1] for c in ids], y[1:]))

    def distribution(self, context: np.ndarray) -> np.ndarray:
        """P(every vocabulary token | context): a (V,) array."""
        y = np.asarray(context, dtype=np.int64)
        if len(y) == 0:
            last = [np.zeros(1, dtype=np.int64)] + [np.full(1, -1)] * (self.order - 1)
        else:
            last = [c[-1:] for c in self.context_ids(y)]
        contexts = [np.repeat(c, self.vocab) for c in last]
        return self.probs(contexts, np.arange(self.vocab))


def _find(keys: np.ndarray, ctx: np.ndarray, tokens: np.ndarray, vocab: int) -> np.ndarray:
    """Rank of key ctx * V + token among ``keys``, or -1 (also where ctx is -1)."""
    want = ctx * vocab + tokens
    if len(keys) == 0:
        return np.full(len(want), -1, dtype=np.int64)
    at = np.minimum(np.searchsorted(keys, want), len(keys) - 1)
    hit = (keys[at] == want) & (ctx >= 0)
    return np.where(hit, at, -1).astype(np.int64)


def sample(
    model: NgramModel,
    prime: np.ndarray,
    max_tokens: int,
    rng: np.random.Generator,
    stop: np.ndarray | None = None,
    temperature: float = 1.0,
) -> np.ndarray:
    """Tokens drawn one at a time from the model's distribution after ``prime``.

    Stops after ``max_tokens``, or as soon as the tokens so far (prime included) end with
    ``stop``, which is then left out, as ``charlm sample --stop`` leaves its text out.
    Only the last order-1 tokens are a context, so each step costs the same.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be above 0 (got {temperature})")
    tokens = [int(t) for t in np.asarray(prime, dtype=np.int64)]
    start, tail = len(tokens), [] if stop is None else [int(t) for t in stop]
    for _ in range(max_tokens):
        p = model.distribution(np.array(tokens[-(model.order - 1) :] if model.order > 1 else []))
        if temperature != 1.0:  # p ** (1/T), renormalised: softmax(logits / T)
            p = p ** (1.0 / temperature)
        tokens.append(int(rng.choice(model.vocab, p=p / p.sum())))
        if tail and tokens[-len(tail) :] == tail:
            return np.array(tokens[start : max(start, len(tokens) - len(tail))], dtype=np.int64)
    return np.array(tokens[start:], dtype=np.int64)
