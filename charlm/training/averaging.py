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
        torch._foreach_lerp_(self._mean, [p.detach() for p in model.parameters()], 1.0 / n)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.model.state_dict()
