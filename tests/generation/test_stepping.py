"""Recorded states: h, c and the gates each step, checked against torch's own layers."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn

from charlm.config.schema import ModelConfig
from charlm.generation.numpy_cells import NumpyStepper
from charlm.generation.stepping import Stepper, TorchStepper, make_stepper
from charlm.models import registry
from charlm.models.lm import RNNLM
from tests.helpers.reference import H, V, cell_states, layer_outputs, random_model

T = 30
TOL = {"atol": 3e-5, "rtol": 1e-5}


def plain_gates(kind: str, rnn: nn.Module, k: int, x: torch.Tensor, h: torch.Tensor) -> dict:
    """The gates written out from the layer's weights, as in torch's documentation."""
    w_ih, w_hh = getattr(rnn, f"weight_ih_l{k}"), getattr(rnn, f"weight_hh_l{k}")
    gi = x @ w_ih.T + getattr(rnn, f"bias_ih_l{k}")
    gh = h @ w_hh.T + getattr(rnn, f"bias_hh_l{k}")
    if kind == "rnn":
        return {"pre": gi + gh}
    if kind == "lstm":
        i, f, g, o = (gi + gh).chunk(4, dim=-1)
        return {"input": i.sigmoid(), "forget": f.sigmoid(), "output": o.sigmoid(),
                "candidate": g.tanh()}  # fmt: skip
    (ri, zi, ni), (rh, zh, nh) = gi.chunk(3, dim=-1), gh.chunk(3, dim=-1)
    r = (ri + rh).sigmoid()
    return {"reset": r, "update": (zi + zh).sigmoid(), "candidate": (ni + r * nh).tanh()}


def run(stepper: Stepper, model: RNNLM, ids: np.ndarray) -> list:
    stepper.start(model.init_hidden(1), ids.shape[0])
    recorded = []
    for t in range(ids.shape[1]):
        stepper.step(ids[:, t])
        recorded.append(stepper.states())
    return recorded


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("record", [NumpyStepper, TorchStepper])
@torch.no_grad()
def test_recorded_states_match_torch(kind: str, record: type) -> None:
    model = random_model(kind)
    ids = np.random.default_rng(1).integers(0, V, size=(2, T))  # two streams at once
    recorded = run(record(model, record=True), model, ids)
    hs = layer_outputs(model, ids)
    cs = cell_states(model, ids) if kind == "lstm" else []
    emb = model.embed(torch.as_tensor(ids))
    for t, st in enumerate(recorded):
        assert st.kind == kind and set(st.gates) == set(registry.get(kind).gates)
        for k in range(2):
            np.testing.assert_allclose(st.h[k], hs[k][:, t].numpy(), **TOL)
            if kind == "lstm":
                np.testing.assert_allclose(st.c[k], cs[t][k].numpy(), **TOL)
            x = emb[:, t] if k == 0 else hs[k - 1][:, t]
            h_prev = hs[k][:, t - 1] if t else torch.zeros(2, H)
            for name, want in plain_gates(kind, model.rnn, k, x, h_prev).items():
                np.testing.assert_allclose(st.gates[name][k], want.numpy(), atol=1e-4, rtol=1e-5)
    assert kind == "lstm" or recorded[0].c == []


@torch.no_grad()
def test_recording_an_adaptive_softmax_model() -> None:
    # The torch path records through the same cells and still gives the model's log-probs.
    model = random_model("lstm", vocab=6000)
    assert model.adaptive
    stepper = make_stepper(model, record=True)
    assert isinstance(stepper, TorchStepper)
    ids = np.array([[5, 4000, 17, 2500, 9]])
    expected = model(torch.as_tensor(ids)).log_probs
    hs = layer_outputs(model, ids)
    stepper.start(model.init_hidden(1), 1)
    for t in range(ids.shape[1]):
        np.testing.assert_allclose(stepper.step(ids[:, t]), expected[:, t].numpy(), atol=1e-4)
        np.testing.assert_allclose(stepper.states().h[1], hs[1][:, t].numpy(), **TOL)


@pytest.mark.parametrize("kind", ["lstm", "gru", "peephole"])
def test_recording_leaves_the_scores_alone(kind: str) -> None:
    model = random_model(kind)
    ids = np.random.default_rng(2).integers(0, V, size=(3, 12))
    plain, recording = make_stepper(model), make_stepper(model, record=True)
    assert isinstance(recording, NumpyStepper)
    plain.start(model.init_hidden(1), 3)
    recording.start(model.init_hidden(1), 3)
    for t in range(ids.shape[1]):
        np.testing.assert_array_equal(plain.step(ids[:, t]), recording.step(ids[:, t]))
    with pytest.raises(ValueError, match="record=True"):
        plain.states()


class ShiftedLogits(RNNLM):
    """The known layers under a forward pass the cells do not reproduce."""

    def forward(self, x, hidden=None, targets=None):  # type: ignore[no-untyped-def]
        out = super().forward(x, hidden, targets)
        return replace(out, log_probs=torch.log_softmax(out.log_probs * 2.0, dim=-1))


def test_a_model_the_cells_do_not_reproduce_is_not_recorded() -> None:
    torch.manual_seed(0)
    model = ShiftedLogits(ModelConfig(vocab_size=V, embed_size=8, hidden_size=H)).eval()
    assert isinstance(make_stepper(model), TorchStepper)  # it still samples
    with pytest.raises(ValueError, match="cannot record"):
        make_stepper(model, record=True)


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("record", [NumpyStepper, TorchStepper])
def test_write_states_writes_what_states_returns(kind: str, record: type) -> None:
    model = random_model(kind)
    stepper = record(model, record=True)
    stepper.start(model.init_hidden(1), 1)
    names = registry.get(kind).recorded
    out = {name: np.full((3, 2, H), np.nan, np.float32) for name in names}
    for t, token in enumerate([1, 5, 2]):
        stepper.step(np.array([token]))
        stepper.write_states(out, t)
        st = stepper.states()
        for k in range(2):
            np.testing.assert_array_equal(out["h"][t, k], st.h[k][0])
            if kind == "lstm":
                np.testing.assert_array_equal(out["c"][t, k], st.c[k][0])
            for name, per_layer in st.gates.items():
                np.testing.assert_array_equal(out[name][t, k], per_layer[k][0])
    with pytest.raises(ValueError, match="record=True"):
        make_stepper(model, record=False).write_states(out, 0)
