"""Gradient flow through time: measured gradients against hand-computed Jacobian products."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from charlm.config.schema import ModelConfig
from charlm.errors import ConfigError
from charlm.inspection.gradflow import FlowConfig, fresh_model, measure, state_gradients
from charlm.models.lm import RNNLM


def _tiny_rnn(seed: int = 0) -> RNNLM:
    torch.manual_seed(seed)
    model = RNNLM(ModelConfig(model="rnn", vocab_size=5, embed_size=3, hidden_size=2)).eval()
    with torch.no_grad():  # weights large enough that the gradient changes visibly per step
        for p in model.parameters():
            p.normal_(0.0, 0.8)
    return model


def _by_hand(model: RNNLM, ids: np.ndarray, carry_in: int, K: int) -> list[np.ndarray]:
    """dL_t/dh_{t-k} for k = 0..K, t = carry_in + K, as the product of step Jacobians
    dh_s/dh_{s-1} = diag(1 - h_s^2) W_hh, in float64, from the model's weights."""
    w = {n: p.detach().double().numpy() for n, p in model.named_parameters()}
    E, W_ih, W_hh = w["embed.weight"], w["rnn.weight_ih_l0"], w["rnn.weight_hh_l0"]
    b = w["rnn.bias_ih_l0"] + w["rnn.bias_hh_l0"]
    h, hs = np.zeros(2), []
    t = carry_in + K
    for s in range(t + 1):
        h = np.tanh(W_ih @ E[ids[s]] + W_hh @ h + b)
        hs.append(h)
    logits = w["decoder.weight"] @ hs[t] + w["decoder.bias"]
    p = np.exp(logits - logits.max())
    p /= p.sum()
    p[ids[t + 1]] -= 1.0  # d(-log softmax)/d logits
    g = p @ w["decoder.weight"]  # row vector dL_t/dh_t
    grads = [g]
    for k in range(1, K + 1):
        s = t - k + 1  # dh_s/dh_{s-1}
        jacobian = np.diag(1.0 - hs[s] ** 2) @ W_hh
        g = g @ jacobian
        grads.append(g)
    return grads


def test_two_unit_tanh_rnn_matches_the_product_of_jacobians() -> None:
    model = _tiny_rnn()
    K, carry_in = 12, 5
    cfg = FlowConfig(max_lag=K, positions=1, carry_in=carry_in)
    ids = np.random.default_rng(1).integers(0, 5, cfg.tokens_needed())  # one possible t
    flow = measure(model, ids, cfg, "tiny")
    expected = [np.linalg.norm(g) for g in _by_hand(model, ids, carry_in, K)]
    measured = flow.curve("h").mean_norm
    assert len(measured) == K + 1
    np.testing.assert_allclose(measured, expected, rtol=1e-5, atol=1e-12)
    assert expected[K] < 0.5 * expected[0]  # the check is not of a flat line


def test_gradient_vectors_not_only_norms_match() -> None:
    model = _tiny_rnn(seed=3)
    ids = np.random.default_rng(2).integers(0, 5, 10)
    window = torch.as_tensor(ids[:9]).unsqueeze(0)
    target = torch.as_tensor(ids[9:10])
    grads = state_gradients(model, window, target, [(torch.zeros(1, 2),)])[("h", 0)][0]
    hand = _by_hand(model, ids, carry_in=0, K=8)  # lag k is step 8 - k
    for k, g in enumerate(hand):
        np.testing.assert_allclose(grads[8 - k].numpy(), g, rtol=1e-4, atol=1e-7)


def test_fresh_lstm_keeps_more_gradient_at_lag_50_than_an_elman_rnn() -> None:
    cfg = ModelConfig(vocab_size=20, embed_size=16, hidden_size=32)
    ids = np.random.default_rng(0).integers(0, 20, 3000)
    flow_cfg = FlowConfig(max_lag=50, positions=16, carry_in=20)
    lstm = fresh_model(cfg, "lstm")
    h = cfg.hidden_size
    assert torch.all(lstm.rnn.bias_ih_l0[h : 2 * h] == 1.0)  # forget bias 1
    lstm_curve = measure(lstm, ids, flow_cfg, "lstm").curve("h").mean_norm
    rnn_curve = measure(fresh_model(cfg, "rnn"), ids, flow_cfg, "rnn").curve("h").mean_norm
    assert lstm_curve[50] > rnn_curve[50]
    assert lstm_curve[50] / lstm_curve[0] > 100 * rnn_curve[50] / rnn_curve[0]


def test_init_scale_past_spectral_radius_one_makes_the_rnn_explode() -> None:
    cfg = ModelConfig(vocab_size=20, embed_size=16, hidden_size=64)
    ids = np.random.default_rng(0).integers(0, 20, 2000)
    flow_cfg = FlowConfig(max_lag=30, positions=8, carry_in=10)
    calm, wild = (fresh_model(cfg, "rnn", init_scale=s) for s in (1.0, 3.0))
    calm_flow, wild_flow = (measure(m, ids, flow_cfg, "rnn") for m in (calm, wild))
    assert calm_flow.spectral_radius < 1 < wild_flow.spectral_radius
    assert calm_flow.curve().mean_norm[30] < calm_flow.curve().mean_norm[0]
    assert wild_flow.curve().mean_norm[30] > wild_flow.curve().mean_norm[0]
    assert calm_flow.curve().vanished_at() is not None
    assert wild_flow.curve().vanished_at() is None


def test_lower_layer_gets_gradient_up_through_the_layers_above_at_lag_0() -> None:
    cfg = ModelConfig(model="gru", vocab_size=9, embed_size=4, hidden_size=8, num_layers=2)
    ids = np.random.default_rng(0).integers(0, 9, 200)
    flow = measure(fresh_model(cfg, "gru"), ids, FlowConfig(max_lag=5, positions=4), "gru")
    assert {(c.state, c.layer) for c in flow.curves} == {("h", 0), ("h", 1)}
    assert flow.curve("h", layer=0).mean_norm[0] > 0


def test_lstm_reports_the_cell_too_and_json_names_every_curve() -> None:
    cfg = ModelConfig(vocab_size=9, embed_size=4, hidden_size=8)
    ids = np.random.default_rng(0).integers(0, 9, 200)
    doc = measure(fresh_model(cfg, "lstm"), ids, FlowConfig(max_lag=5, positions=4), "x").to_dict()
    assert [(c["state"], c["layer"]) for c in doc["curves"]] == [("c", 0), ("h", 0)]
    assert all(len(c["mean_norm"]) == 6 for c in doc["curves"])


def test_a_text_too_short_for_the_lags_says_what_to_lower() -> None:
    model = _tiny_rnn()
    with pytest.raises(ConfigError, match="--max-lag 200 with --carry-in 100 needs 302"):
        measure(model, np.zeros(100, dtype=np.int64), FlowConfig(), "x")


def test_a_vanished_gradient_stays_measurable_far_below_float32() -> None:
    cfg = ModelConfig(model="rnn", vocab_size=9, embed_size=4, hidden_size=8)
    ids = np.random.default_rng(0).integers(0, 9, 400)
    flow = measure(fresh_model(cfg, "rnn"), ids, FlowConfig(max_lag=200, positions=2), "rnn")
    curve = flow.curve().mean_norm
    assert 0 < curve[200] < 1e-46  # below float32's smallest subnormal, yet not 0


def test_fresh_models_follow_their_seed_and_leave_the_global_stream_alone() -> None:
    cfg = ModelConfig(model="rnn", vocab_size=7, embed_size=4, hidden_size=6)
    before = torch.get_rng_state()
    a, b, c = (
        fresh_model(cfg, "rnn", seed=1),
        fresh_model(cfg, "rnn", seed=1),
        fresh_model(cfg, "rnn", seed=2),
    )
    assert torch.equal(torch.get_rng_state(), before)
    assert torch.equal(a.rnn.weight_hh_l0, b.rnn.weight_hh_l0)
    assert not torch.equal(a.rnn.weight_hh_l0, c.rnn.weight_hh_l0)
