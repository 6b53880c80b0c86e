"""The truncated-BPTT batcher and evaluation windows."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from charlm.data.batching import Splits, StripeBatcher, check_splits, eval_layout, eval_windows
from charlm.errors import DataError


def test_windows_continue_each_stripe() -> None:
    tokens = np.arange(1001) % 251
    b = StripeBatcher(tokens.astype(np.uint8), batch_size=4, bptt=30)
    assert b.stripe_len == 250 and len(b) == 9  # 8 full windows and one of 10
    x0, y0 = b.window(0)
    x1, _ = b.window(1)
    assert x0.shape == (4, 30) and b.window(8)[0].shape == (4, 10)
    # Row r of window 1 starts where row r of window 0 stopped: the hidden state carries over.
    assert (x1[:, 0] == y0[:, -1]).all()
    # Targets are the inputs shifted by one.
    assert (y0[:, :-1] == x0[:, 1:]).all()


@settings(max_examples=60, deadline=None)
@given(n=st.integers(2, 600), batch=st.integers(1, 17), bptt=st.integers(1, 40))
def test_every_training_target_visited_once_per_epoch(n: int, batch: int, bptt: int) -> None:
    if n - 1 < batch:
        return
    tokens = np.arange(n, dtype=np.int64)  # token value == position, so targets name themselves
    b = StripeBatcher(tokens, batch, bptt)
    seen = np.concatenate([y.reshape(-1).numpy() for _, _, y in b.windows()])
    assert sorted(seen.tolist()) == list(range(1, batch * b.stripe_len + 1))
    assert n - 1 - len(seen) < batch  # at most batch - 1 tokens left over at the end
    assert b.tokens_per_epoch == len(seen)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(2, 600), batch=st.integers(1, 40), bptt=st.integers(1, 50))
def test_eval_windows_score_every_target_exactly_once(n: int, batch: int, bptt: int) -> None:
    tokens = np.arange(n, dtype=np.int64)
    scored = []
    for x, y, mask in eval_windows(tokens, batch, bptt):
        assert x.shape == y.shape == mask.shape
        scored += y[mask].tolist()
    assert sorted(scored) == list(range(1, n))


@given(n_targets=st.integers(1, 5000), batch=st.integers(1, 300))
def test_eval_layout_covers_the_targets_with_no_row_of_pure_padding(
    n_targets: int, batch: int
) -> None:
    rows, stripe = eval_layout(n_targets, batch)
    assert 1 <= rows <= batch
    assert rows * stripe >= n_targets  # every target has a place
    assert (rows - 1) * stripe < n_targets  # the last row holds at least one target
    assert stripe == -(-n_targets // min(batch, n_targets))  # as short as the batch allows


def test_split_too_small_for_one_window_names_the_fix() -> None:
    splits = Splits(train=np.zeros(100, np.uint8), val=np.zeros(10, np.uint8), test=np.zeros(0))
    with pytest.raises(DataError, match=r"100 tokens.*--batch-size 4 x --bptt 32"):
        check_splits(splits, batch_size=4, bptt=32)
    check_splits(splits, batch_size=3, bptt=33)  # 3 * 33 + 1 = 100: exactly one window
