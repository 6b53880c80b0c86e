"""The NumPy step reproduces the torch model exactly (within float tolerance)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn

from charlm.config.schema import ModelConfig
from charlm.generation.numpy_cells import NumpyStepper
from charlm.generation.stepping import TorchStepper, make_stepper, run_prime
from charlm.models.lm import RNNLM

V = 23


def random_model(kind: str, layers: int = 2, seed: int = 0) -> RNNLM:
    torch.manual_seed(seed)
    model = RNNLM(ModelConfig(model=kind, vocab_size=V, embed_size=8, hidden_size=16,
                              num_layers=layers, dropout=0.2))  # fmt: skip
    with torch.no_grad():
        for p in model.parameters():  # weights large enough that every gate matters
            p.normal_(0.0, 0.4)
    return model.eval()


def log_softmax(scores: np.ndarray) -> np.ndarray:
    z = scores.astype(np.float64)
    return z - np.logaddexp.reduce(z, axis=-1, keepdims=True)


def reference(model: RNNLM, ids: np.ndarray) -> np.ndarray:
    """(B, T, V) log-probabilities from the model's own forward pass."""
    with torch.no_grad():
        return model(torch.as_tensor(ids, dtype=torch.long)).log_probs.numpy()


@pytest.mark.parametrize("layers", [1, 3])
def test_numpy_step_matches_the_model_at_any_depth(layers: int) -> None:
    # Every cell's NumPy step at two layers: tests/models/test_cell_contract.py.
    model = random_model("lstm", layers)
    ids = np.random.default_rng(1).integers(0, V, size=(3, 40))  # three streams at once
    expected = reference(model, ids)
    stepper = NumpyStepper(model)
    stepper.start(model.init_hidden(1), 3)
    for t in range(ids.shape[1]):
        got = log_softmax(stepper.step(ids[:, t]))
        np.testing.assert_allclose(got, expected[:, t], atol=2e-5, rtol=0)


def test_run_prime_in_chunks_equals_one_pass() -> None:
    model = random_model("lstm")
    ids = np.random.default_rng(3).integers(0, V, size=50)
    rows: list[torch.Tensor] = []
    last, _ = run_prime(model, ids, on_chunk=lambda start, lp: rows.append(lp), chunk=7)
    np.testing.assert_allclose(torch.cat(rows).numpy(), reference(model, ids[None])[0], atol=1e-5)
    np.testing.assert_allclose(last, rows[-1][-1].numpy())


class DeepDecoder(RNNLM):
    """An output layer that is not a plain nn.Linear (as an adaptive softmax would be)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__(cfg)
        self.decoder = nn.Sequential(nn.Linear(cfg.hidden_size, cfg.vocab_size), nn.Tanh())


class ShiftedLogits(RNNLM):
    """Same layers as the fast path knows, but a forward pass it does not: the guard notices."""

    def forward(self, x, hidden=None, targets=None):  # type: ignore[no-untyped-def]
        out = super().forward(x, hidden, targets)
        return replace(out, log_probs=torch.log_softmax(out.log_probs * 2.0, dim=-1))


@pytest.mark.parametrize("cls", [DeepDecoder, ShiftedLogits])
def test_other_models_fall_back_to_the_torch_step(cls: type[RNNLM]) -> None:
    torch.manual_seed(0)
    model = cls(ModelConfig(vocab_size=V, embed_size=8, hidden_size=16, num_layers=2)).eval()
    stepper = make_stepper(model)
    assert isinstance(stepper, TorchStepper)
    ids = np.random.default_rng(4).integers(0, V, size=12)
    expected = reference(model, ids[None])[0]
    stepper.start(model.init_hidden(1), 1)
    for t in range(12):
        got = log_softmax(stepper.step(ids[t : t + 1]))
        np.testing.assert_allclose(got[0], expected[t], atol=1e-5)


def test_fast_path_can_be_turned_off() -> None:
    assert isinstance(make_stepper(random_model("gru"), fast=False), TorchStepper)


def test_an_adaptive_softmax_model_samples_through_the_torch_step() -> None:
    torch.manual_seed(0)
    model = RNNLM(ModelConfig(vocab_size=6000, embed_size=8, hidden_size=16)).eval()
    assert model.adaptive  # a vocabulary this large gets an adaptive softmax
    stepper = make_stepper(model)
    assert isinstance(stepper, TorchStepper)
    ids = np.array([5, 4000, 17])
    expected = reference(model, ids[None])[0]
    stepper.start(model.init_hidden(1), 1)
    for t in range(3):
        np.testing.assert_allclose(log_softmax(stepper.step(ids[t : t + 1]))[0], expected[t],
                                   atol=1e-5)  # fmt: skip
