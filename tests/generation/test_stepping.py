"""Recorded states: h, c and the gates each step, checked against torch's own layers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from charlm.config.schema import ModelConfig
from charlm.generation.numpy_cells import GATES, NumpyStepper
from charlm.generation.stepping import Stepper, TorchStepper, make_stepper
from charlm.models.lm import RNNLM

V, H, T = 23, 16, 30
TOL = {"atol": 3e-5, "rtol": 1e-5}


def random_model(kind: str, vocab: int = V, layers: int = 2) -> RNNLM:
    torch.manual_seed(0)
    model = RNNLM(ModelConfig(model=kind, vocab_size=vocab, embed_size=8, hidden_size=H,
                              num_layers=layers))  # fmt: skip
    with torch.no_grad():
        for p in model.parameters():  # weights large enough that every gate matters
            p.normal_(0.0, 0.4)
    return model.eval()


def layer_outputs(model: RNNLM, ids: np.ndarray) -> list[torch.Tensor]:
    """Each layer's h over the whole sequence (B, T, H): one-layer copies of the stack, chained."""
    rnn = model.rnn
    x = model.embed(torch.as_tensor(ids))
    outs = []
    for k in range(rnn.num_layers):
        extra = {"nonlinearity": rnn.nonlinearity} if type(rnn) is nn.RNN else {}
        one = type(rnn)(x.shape[-1], H, batch_first=True, **extra)
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(one, f"{name}_l0").data.copy_(getattr(rnn, f"{name}_l{k}"))
        x, _ = one(x)
        outs.append(x)
    return outs


def cell_states(model: RNNLM, ids: np.ndarray) -> list[torch.Tensor]:
    """The LSTM cell state of every layer after every step, (T, L, B, H), from nn.LSTM."""
    emb, hidden, cs = model.embed(torch.as_tensor(ids)), None, []
    for t in range(ids.shape[1]):
        _, hidden = model.rnn(emb[:, t : t + 1], hidden)
        cs.append(hidden[1])
    return cs


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
        assert st.kind == kind and set(st.gates) == set(GATES[kind])
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
    expected, _ = model.log_probs(torch.as_tensor(ids))
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

    def forward(self, x, hidden=None):  # type: ignore[no-untyped-def]
        logits, hidden = super().forward(x, hidden)
        return logits * 2.0, hidden


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
    names = ("h", "c", *GATES[kind]) if kind == "lstm" else ("h", *GATES[kind])
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
