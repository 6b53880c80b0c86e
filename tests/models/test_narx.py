"""The NARX network's hand-written time loop against the same loop through autograd."""

from __future__ import annotations

import pytest
import torch

from charlm.config.schema import ModelConfig
from charlm.models.cells.narx import steps
from charlm.models.jordanloop import dropout_masks
from charlm.models.lm import RNNLM


@pytest.mark.parametrize(("layers", "delays", "dropout"), [(1, (1, 1), 0.0), (3, (3, 2), 0.3)])
def test_the_hand_written_loop_matches_autograd(
    layers: int, delays: tuple[int, int], dropout: float
) -> None:
    torch.manual_seed(5)
    cfg = ModelConfig(
        model="narx", vocab_size=7, embed_size=3, hidden_size=5, num_layers=layers,
        dropout=dropout, input_delays=delays[0], output_delays=delays[1],
    )  # fmt: skip
    model = RNNLM(cfg).double().train()
    ids = torch.tensor([[1, 4, 2, 0, 6, 3], [3, 3, 1, 2, 0, 5]])
    width = (delays[0] - 1 + delays[1]) * 3
    state = torch.randn(1, 2, width, dtype=torch.float64, requires_grad=True)
    torch.manual_seed(9)
    masks = dropout_masks(model.rnn, 6, 2, state)
    assert (masks is not None and (masks == 0).any()) == (dropout > 0)

    def hand() -> tuple[torch.Tensor, ...]:
        torch.manual_seed(9)  # the loop draws the same masks
        return model.rnn(model.embed(ids), state, model.decoder)

    def reference() -> tuple[torch.Tensor, ...]:
        tops, logits, _, after = steps(model.rnn, model.embed(ids), state, model.decoder, masks)
        return torch.stack(tops, 1), torch.stack(logits, 1), after

    results = []
    for run in (hand, reference):
        model.zero_grad()
        state.grad = None
        top, logits, after = run()
        weights = torch.arange(after.numel(), dtype=torch.float64).reshape(after.shape)
        (logits.sin().sum() + top.cos().sum() + (after * weights).sum()).backward()
        grads = [p.grad.clone() for p in model.parameters()] + [state.grad.clone()]
        results.append([top.detach(), logits.detach(), after.detach(), *grads])
    for mine, want in zip(*results, strict=True):
        torch.testing.assert_close(mine, want)


def test_the_loop_runs_under_autocast_in_its_own_dtype() -> None:
    torch.manual_seed(1)
    model = RNNLM(ModelConfig(model="narx", vocab_size=6, embed_size=4, hidden_size=8)).eval()
    ids = torch.tensor([[1, 2, 3, 4]])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        _, logits, after = model.rnn(model.embed(ids), None, model.decoder)
    plain = model.rnn(model.embed(ids), None, model.decoder)[1]
    assert after.dtype == torch.float32
    torch.testing.assert_close(logits.float(), plain, atol=0.05, rtol=0.05)
