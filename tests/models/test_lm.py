"""The model: gates, detaching at window boundaries, tied weights (what every cell does:
tests/models/test_cell_contract.py)."""

from __future__ import annotations

import pytest
import torch

from charlm.config.schema import ModelConfig
from charlm.errors import ConfigError
from charlm.models.lm import RNNLM, detach_hidden, hidden_tensors


def test_lstm_forget_gate_bias_starts_at_one() -> None:
    model = RNNLM(ModelConfig(vocab_size=10, embed_size=4, hidden_size=6, num_layers=2))
    for layer in range(2):
        b = getattr(model.rnn, f"bias_ih_l{layer}") + getattr(model.rnn, f"bias_hh_l{layer}")
        i, f, g, _ = b.detach().chunk(4)
        assert torch.all(f == 1.0) and torch.all(i == 0) and torch.all(g == 0)


def test_rnn_is_elman_tanh() -> None:
    model = RNNLM(ModelConfig(model="rnn", vocab_size=10, hidden_size=6))
    assert model.rnn.nonlinearity == "tanh"


def test_no_gradient_flows_past_a_window_boundary() -> None:
    torch.manual_seed(0)
    model = RNNLM(ModelConfig(vocab_size=4, embed_size=3, hidden_size=5, num_layers=2))
    x0 = torch.tensor([[0, 1, 0, 1]])  # window 0 uses tokens 0 and 1 only
    x1 = torch.tensor([[2, 3, 2, 3]])  # window 1 uses tokens 2 and 3 only
    h = model(x0).hidden
    model(x1, detach_hidden(h), targets=x1).nll.mean().backward()
    grad = model.embed.weight.grad
    assert grad[2:].abs().sum() > 0  # window 1's own inputs get gradient
    assert torch.all(grad[:2] == 0)  # window 0's inputs get none through the carried state
    # ... but the values do carry over: window 1 depends on window 0's final state.
    with torch.no_grad():
        fresh = model(x1, targets=x1).nll
        carried = model(x1, detach_hidden(h), targets=x1).nll
    assert not torch.allclose(fresh, carried)
    assert all(t.grad_fn is None for t in hidden_tensors(detach_hidden(h)))


def test_tied_weights_share_one_matrix_and_need_equal_sizes() -> None:
    model = RNNLM(ModelConfig(vocab_size=9, embed_size=8, hidden_size=8, tie_weights=True))
    assert model.decoder.weight is model.embed.weight
    with pytest.raises(ConfigError, match="--embed-size equal to --hidden-size"):
        ModelConfig(embed_size=8, hidden_size=16, tie_weights=True)
