"""The running mean of a model's weights over the last part of a run (Polyak / SWA averaging).

A uniform mean rather than an exponential one: the mean of the last n steps' weights needs no
decay rate to choose, only where it starts (``--average-from``), and it stays well defined in a
run bounded by the clock, whose number of remaining steps is not known in advance (a decay tied
to it would change with the machine's load). It is the averaging of AWD-LSTM's NT-ASGD. An
exponential mean with decay 1 - 1/n is the same thing, which is how it is updated: one in-place
lerp over all parameters per step.
"""

from __future__ import annotations

import copy
import functools

import torch

from charlm.models.lm import RNNLM


class WeightAverage:
    """A copy of the model whose parameters are the mean of the model's over the steps added.

    The copy is what evaluation, sampling and checkpoints use; the model itself goes on
    training. Tied weights stay tied in the copy (``copy.deepcopy`` keeps shared tensors shared,
    and ``parameters()`` lists a shared one once).
    """

    def __init__(self, model: RNNLM) -> None:
        self.model = copy.deepcopy(model)  # starts as the current weights: the mean of one step
        self.model.requires_grad_(False)
        self.model.eval()
        self._mean = list(self.model.parameters())

    @torch.no_grad()
    def add(self, model: RNNLM, n: int) -> None:
        """Fold ``model``'s weights into the mean, making it the mean of ``n`` steps' weights.

        mean_n = mean_{n-1} + (w_n - mean_{n-1}) / n; for n = 1 the lerp gives w_1 exactly.
        """
        lerp_all(self._mean, [p.detach() for p in model.parameters()], 1.0 / n)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.model.state_dict()


def lerp_all(means: list[torch.Tensor], values: list[torch.Tensor], weight: float) -> None:
    """``m += weight * (v - m)`` for each pair, in place: one fused call where torch has one.

    The loop of public ``lerp_`` gives the same numbers.
    """
    if _fused_lerp_works():
        torch._foreach_lerp_(means, values, weight)
        return
    for m, v in zip(means, values, strict=True):
        m.lerp_(v, weight)


@functools.cache
def _fused_lerp_works() -> bool:
    """Whether torch's fused list lerp is there and right. It is private to torch, so it is
    tried once on a probe, never on the mean itself: a failure halfway would corrupt it."""
    probe = [torch.zeros(2)]
    try:
        torch._foreach_lerp_(probe, [torch.ones(2)], 0.25)
    except Exception:  # missing (AttributeError), or a changed signature: any failure
        return False
    return bool(torch.equal(probe[0], torch.full((2,), 0.25)))
