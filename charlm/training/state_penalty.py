"""A penalty on how much the hidden state changes from one step to the next.

Added to the training loss only, never to a validation score or a reported loss. On the top
layer's states h_1..h_T of a window (before dropout), with ||.|| the Euclidean norm over the
H units and the mean over the batch and the T - 1 steps t = 2..T of the window:

    norm:  beta * mean_t (||h_t|| - ||h_{t-1}||)^2     Krueger and Memisevic 2016, the
                                                        norm-stabiliser
    diff:  beta * mean_t ||h_t - h_{t-1}||^2            Merity et al. 2017, temporal
                                                        activation regularisation (TAR)

Merity et al.'s code averages over the units as well; here they are summed, as the formula
reads, so a beta of theirs is H times one of these. The step into the window (from the
carried state) is left out: the carried state may just have been reset to zero
(``--reset-prob``), a jump the model did not make.
"""

from __future__ import annotations

import torch


def state_penalty(states: torch.Tensor, beta: float, kind: str) -> torch.Tensor:
    """beta times the mean squared change of ``states`` (B, T, H) along T; a scalar."""
    h = states.float()
    if h.size(1) < 2:  # a one-step window has no change to penalise
        return h.new_zeros(())
    if kind == "norm":
        norms = h.norm(dim=-1)  # (B, T)
        change = (norms[:, 1:] - norms[:, :-1]).pow(2)  # (B, T - 1)
    elif kind == "diff":
        change = (h[:, 1:] - h[:, :-1]).pow(2).sum(-1)  # (B, T - 1)
    else:
        raise ValueError(f"unknown state penalty '{kind}': norm or diff")
    return beta * change.mean()
