"""Token splits and the truncated-BPTT batcher."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from charlm.errors import DataError


@dataclass
class Splits:
    """Contiguous splits: train first, then test, then validation at the very end."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def check_splits(splits: Splits, batch_size: int, bptt: int) -> None:
    need = batch_size * bptt + 1
    if len(splits.train) < need:
        raise DataError(
            f"the training split has {len(splits.train):,} tokens, fewer than one batch window "
            f"(--batch-size {batch_size} x --bptt {bptt} + 1 = {need:,}): use a larger corpus "
            "or lower --batch-size / --bptt"
        )
    if len(splits.val) < 2:
        raise DataError(
            f"the validation split has {len(splits.val)} token(s), too few to score: "
            "raise --val-frac or use a larger corpus"
        )


class StripeBatcher:
    """Truncated backpropagation through time over B contiguous stripes.

    The N training tokens are cut into B stripes of L = (N - 1) // B tokens. Stripe b is
    row b of a (B, L) matrix; its targets are the same tokens shifted left by one:

        tokens:  t0 t1 ... t(L-1) | tL ... t(2L-1) | ... | t((B-1)L) ... t(BL-1) | (< B spare)
                 \\__ stripe 0 __/ \\_ stripe 1 __/       \\____ stripe B-1 _____/

                     window 0     window 1           last window (L mod bptt, if any)
        row 0     [ x x ... x ][ x x ... x ] ... [ x x ]
        row 1     [ x x ... x ][ x x ... x ] ... [ x x ]     hidden state of row b flows
         ...                                                  left to right across windows
        row B-1   [ x x ... x ][ x x ... x ] ... [ x x ]     and is detached at every |

    So each window is a (B, bptt) batch whose row b continues row b of the previous window,
    and every target t1 ... tBL is visited exactly once per epoch (fewer than B tokens at
    the very end are left over).

    Data-parallel: rank r of W lays out W x B stripes and keeps rows [r B, (r+1) B) (views,
    nothing copied), so W processes with batch B visit exactly what one with W x B visits.
    """

    def __init__(
        self, tokens: np.ndarray, batch_size: int, bptt: int, rank: int = 0, world: int = 1
    ) -> None:
        self.batch_size, self.bptt = batch_size, bptt
        rows = batch_size * world
        self.stripe_len = (len(tokens) - 1) // rows
        n = rows * self.stripe_len
        mine = slice(rank * batch_size, (rank + 1) * batch_size)
        self.inputs = tokens[:n].reshape(rows, self.stripe_len)[mine]
        self.targets = tokens[1 : n + 1].reshape(rows, self.stripe_len)[mine]

    def __len__(self) -> int:
        return -(-self.stripe_len // self.bptt)

    @property
    def tokens_per_epoch(self) -> int:
        return self.batch_size * self.stripe_len

    def window(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The k-th (B, T) window of inputs and targets, T = bptt except maybe the last."""
        s = slice(k * self.bptt, min((k + 1) * self.bptt, self.stripe_len))
        return _long(self.inputs[:, s]), _long(self.targets[:, s])

    def windows(self, start: int = 0) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
        for k in range(start, len(self)):
            yield (k, *self.window(k))


def eval_windows(
    tokens: np.ndarray, batch_size: int, bptt: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Windows that score every target t1 ... t(N-1) exactly once: (inputs, targets, mask).

    Like StripeBatcher, but stripes are L = ceil((N - 1) / B) long and the tail is padded,
    so nothing is left over; the mask is 0 on padding. Rows beyond the text are dropped.
    """
    n_targets = len(tokens) - 1
    b, stripe = eval_layout(n_targets, batch_size)
    # Gathered window by window, never padded as a whole: the tokens may be a memory-mapped
    # file far larger than memory. Padding (past the last target) repeats the last token.
    rows = np.arange(b)[:, None] * stripe
    for s in range(0, stripe, bptt):
        pos = rows + np.arange(s, min(s + bptt, stripe))  # (b, w) input positions
        x, y = tokens[np.minimum(pos, n_targets)], tokens[np.minimum(pos + 1, n_targets)]
        yield _long(x), _long(y), torch.from_numpy(pos < n_targets)


def eval_layout(n_targets: int, batch_size: int) -> tuple[int, int]:
    """(rows, stripe length) of ``eval_windows``: at most batch_size rows of ceil(N / rows).

    Rows that would hold only padding are dropped, so every row scores something; data-
    parallel scoring (``distributed.eval_shard``) splits these same rows between ranks.
    """
    b = max(1, min(batch_size, n_targets))
    stripe = -(-n_targets // b)
    return -(-n_targets // stripe), stripe


def _long(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.int64))


def split_sizes(n: int, val_frac: float, test_frac: float) -> tuple[int, int, int]:
    """(train, test, val) lengths of contiguous splits of n characters."""
    n_val, n_test = round(n * val_frac), round(n * test_frac)
    return n - n_val - n_test, n_test, n_val
