"""What every registered cell must do, checked cell by cell: the registry's cells and a toy one
registered here (tests/toy_cell.py), so a new cell is tested without a line of test code but
its hand-written step (``HAND``).

Two steps by hand against the model, gradcheck, an exact resume, the NumPy step against the
model, gradient flow, the recorded gates, and the command line from train to inspect.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from charlm.cli import app
from charlm.config.options import flag
from charlm.config.schema import ModelConfig
from charlm.data.corpus import read_corpus
from charlm.generation.stepping import TorchStepper, make_stepper, run_prime
from charlm.inspection.gradflow import FlowConfig, _cells, measure
from charlm.inspection.recording import record
from charlm.models import registry
from charlm.models.lm import RNNLM, Hidden, hidden_from_tensors, hidden_tensors
from charlm.training.setup import new_trainer
from tests import toy_cell
from tests.helpers import MICRO_ARGS, micro_config, straight_and_resumed

V, E, H, L = 7, 5, 6, 2
# A value other than the default for every option a cell may take: each cell gets its own.
OPTION_VALUES = {
    "forget_bias": 1.5,
    "input_bias": -0.5,
    "jordan_decay": 0.5,
    "spectral_radius": 0.8,
    "window": 3,
    "input_delays": 3,
    "output_delays": 2,
}
CELLS = [*registry.names(), toy_cell.NAME]


@pytest.fixture(params=CELLS)
def cell(request: pytest.FixtureRequest) -> Iterator[str]:
    """Each registered cell; the toy one registered for the test alone."""
    if request.param != toy_cell.NAME:
        yield request.param
        return
    registry.register(toy_cell.SPEC)
    try:
        yield toy_cell.NAME
    finally:
        registry.unregister(toy_cell.NAME)


def own_options(name: str) -> dict[str, float]:
    return {k: v for k, v in OPTION_VALUES.items() if k in registry.get(name).options}


def model_of(name: str, scale: float = 0.5, seed: int = 0, **sizes: int) -> RNNLM:
    """A small model of the cell, its weights drawn large enough that every gate matters."""
    torch.manual_seed(seed)
    dims = {"vocab_size": V, "embed_size": E, "hidden_size": H, "num_layers": L} | sizes
    cfg = ModelConfig(model=name, dropout=0.0, **dims, **own_options(name))
    model = RNNLM(cfg)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, scale)
    return model.eval()


def random_state(model: RNNLM, batch: int, dtype: torch.dtype = torch.float64) -> Hidden:
    shapes = model.spec.state_shapes(model.cfg, batch)
    return hidden_from_tensors([torch.rand(s, dtype=dtype) for s in shapes])


# ---- the cells' equations, written out once more in float64 -----------------------------
def sigmoid(a: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-a))


def affine(p: dict[str, np.ndarray], k: int, x: np.ndarray, h: np.ndarray) -> np.ndarray:
    return (
        p[f"weight_ih_l{k}"] @ x
        + p[f"bias_ih_l{k}"]
        + p[f"weight_hh_l{k}"] @ h
        + p[f"bias_hh_l{k}"]
    )


def lstm_step(p: dict, k: int, x: np.ndarray, state: tuple) -> tuple:
    h, c = state
    i, f, g, o = np.split(affine(p, k, x, h), 4)
    c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
    return sigmoid(o) * np.tanh(c), c


def peephole_step(p: dict, k: int, x: np.ndarray, state: tuple) -> tuple:
    h, c = state
    a_i, a_f, a_g, a_o = np.split(affine(p, k, x, h), 4)
    p_i, p_f, p_o = p[f"weight_peep_l{k}"]
    c_new = sigmoid(a_f + p_f * c) * c + sigmoid(a_i + p_i * c) * np.tanh(a_g)
    return sigmoid(a_o + p_o * c_new) * np.tanh(c_new), c_new


def gru_step(p: dict, k: int, x: np.ndarray, state: tuple) -> tuple:
    (h,) = state
    r_i, z_i, n_i = np.split(p[f"weight_ih_l{k}"] @ x + p[f"bias_ih_l{k}"], 3)
    r_h, z_h, n_h = np.split(p[f"weight_hh_l{k}"] @ h + p[f"bias_hh_l{k}"], 3)
    r, z = sigmoid(r_i + r_h), sigmoid(z_i + z_h)
    n = np.tanh(n_i + r * n_h)
    return ((1 - z) * n + z * h,)


def tanh_step(p: dict, k: int, x: np.ndarray, state: tuple) -> tuple:
    (h,) = state
    return (np.tanh(affine(p, k, x, h)),)


def log_softmax(z: np.ndarray) -> np.ndarray:
    return z - np.logaddexp.reduce(z, axis=-1, keepdims=True)


def arrays(module: torch.nn.Module) -> dict[str, np.ndarray]:
    return {n: v.detach().double().numpy() for n, v in module.named_parameters()}


HandRun = Callable[[RNNLM, list[int], list[np.ndarray]], tuple[np.ndarray, list[np.ndarray]]]


def layered(step: Callable[..., tuple]) -> HandRun:
    """A stack of ``step`` layers under the embedding and decoder, one stream, by hand."""

    def run(model: RNNLM, ids: list[int], hidden: list[np.ndarray]) -> tuple:
        p, m = arrays(model.rnn), arrays(model)
        state = [tuple(t[k, 0] for t in hidden) for k in range(model.cfg.num_layers)]
        rows = []
        for token in ids:
            x = m["embed.weight"][token]
            for k in range(len(state)):
                state[k] = step(p, k, x, state[k])
                x = state[k][0]
            rows.append(log_softmax(m["decoder.weight"] @ x + m["decoder.bias"]))
        final = [np.stack([s[j] for s in state])[:, None] for j in range(len(state[0]))]
        return np.array(rows), final

    return run


def jordan_run(model: RNNLM, ids: list[int], hidden: list[np.ndarray]) -> tuple:
    """Context s fed by the softmax of the output: s_t = mu s_{t-1} + y_{t-1}."""
    m, mu, Hs = arrays(model), model.cfg.jordan_decay, model.cfg.hidden_size
    s, U, rows = hidden[0][0, 0], m["rnn.context.weight"], []
    for token in ids:
        u, h = U @ s, m["embed.weight"][token]
        for k in range(model.cfg.num_layers):
            w, b = m[f"rnn.inputs.{k}.weight"], m[f"rnn.inputs.{k}.bias"]
            h = np.tanh(w @ h + b + u[k * Hs : (k + 1) * Hs])
        z = m["decoder.weight"] @ h + m["decoder.bias"]
        s = mu * s + np.exp(log_softmax(z))
        rows.append(log_softmax(z))
    return np.array(rows), [s[None, None]]


def tdnn_run(model: RNNLM, ids: list[int], hidden: list[np.ndarray]) -> tuple:
    """Each layer reads its last D inputs: h^l_t = tanh(W^l [h^{l-1}_{t-D+1..t}] + b^l)."""
    m, D, L = arrays(model), model.cfg.window, model.cfg.num_layers
    widths = [model.cfg.embed_size] + [model.cfg.hidden_size] * (L - 1)
    flat, pasts, at = hidden[0][0, 0], [], 0
    for w in widths:  # each layer's last D - 1 inputs, oldest first
        pasts.append([flat[at + j * w : at + (j + 1) * w] for j in range(D - 1)])
        at += (D - 1) * w
    rows = []
    for token in ids:
        h = m["embed.weight"][token]
        for k in range(L):
            line = [*pasts[k], h]
            pasts[k] = line[1:]
            h = np.tanh(
                m[f"rnn.layers.{k}.weight"] @ np.concatenate(line) + m[f"rnn.layers.{k}.bias"]
            )
        rows.append(log_softmax(m["decoder.weight"] @ h + m["decoder.bias"]))
    return np.array(rows), [np.concatenate([v for past in pasts for v in past])[None, None]]


def narx_run(model: RNNLM, ids: list[int], hidden: list[np.ndarray]) -> tuple:
    """h^l_t = tanh(W^l in + U^l [y_{t-B..t-1}] + b^l), y_t = softmax(D h^L_t + d) F."""
    m, cfg = arrays(model), model.cfg
    E, Hs, A = cfg.embed_size, cfg.hidden_size, cfg.input_delays
    flat = hidden[0][0, 0]
    xs = [flat[j * E : (j + 1) * E] for j in range(A - 1)]
    ys = [flat[(A - 1 + j) * E : (A + j) * E] for j in range(cfg.output_delays)]
    rows = []
    for token in ids:
        xs = [*xs, m["embed.weight"][token]]
        u = m["rnn.feedback.weight"] @ np.concatenate(ys)
        h = np.concatenate(xs[-A:])
        xs = xs[len(xs) - (A - 1) :] if A > 1 else []
        for k in range(cfg.num_layers):
            w, b = m[f"rnn.inputs.{k}.weight"], m[f"rnn.inputs.{k}.bias"]
            h = np.tanh(w @ h + b + u[k * Hs : (k + 1) * Hs])
        z = log_softmax(m["decoder.weight"] @ h + m["decoder.bias"])
        ys = [*ys[1:], m["rnn.expect.weight"] @ np.exp(z)]
        rows.append(z)
    return np.array(rows), [np.concatenate([*xs, *ys])[None, None]]


HAND: dict[str, HandRun] = {
    "lstm": layered(lstm_step),
    "gru": layered(gru_step),
    "rnn": layered(tanh_step),
    "peephole": layered(peephole_step),
    "jordan": jordan_run,
    "esn": layered(tanh_step),  # a fixed tanh reservoir: the Elman step
    "tdnn": tdnn_run,
    "narx": narx_run,
    toy_cell.NAME: layered(toy_cell.by_hand),
}


def test_two_steps_by_hand_are_the_model(cell: str) -> None:
    assert cell in HAND, f"write {cell}'s step by hand in HAND: the contract checks against it"
    model = model_of(cell).double()
    torch.manual_seed(1)
    hidden = random_state(model, 1)  # a carried state, so that it is seen to matter
    ids = [1, 4]
    with torch.no_grad():
        out = model(torch.tensor([ids]), hidden)
    want, want_state = HAND[cell](model, ids, [t.numpy() for t in hidden_tensors(hidden)])
    np.testing.assert_allclose(out.log_probs[0].numpy(), want, atol=1e-12, rtol=0)
    got_state = [t.numpy() for t in hidden_tensors(out.hidden)]
    assert len(got_state) == len(want_state)
    for got, expected in zip(got_state, want_state, strict=True):
        np.testing.assert_allclose(got, expected, atol=1e-12, rtol=0)


def test_gradients_pass_gradcheck(cell: str) -> None:
    model = model_of(cell, vocab_size=4, embed_size=3, hidden_size=3).double()
    names = [n for n, _ in model.named_parameters()]
    params = [p.detach().clone().requires_grad_() for p in model.parameters()]
    torch.manual_seed(2)
    state = [t.requires_grad_() for t in hidden_tensors(random_state(model, 2))]
    x = torch.tensor([[0, 3, 1], [2, 2, 0]])

    def run(*tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        hidden = hidden_from_tensors(list(tensors[: len(state)]))
        weights = dict(zip(names, tensors[len(state) :], strict=True))
        out = torch.func.functional_call(model, weights, (x, hidden))
        return (out.log_probs, *hidden_tensors(out.hidden))

    assert torch.autograd.gradcheck(run, (*state, *params), eps=1e-6, atol=1e-5)


def test_an_interrupted_run_resumes_exactly(cell: str, corpus_file: Path, tmp_path: Path) -> None:
    # Two layers, dropout, resets and a carried state: resume restores all of it exactly.
    def make(run_dir: Path):  # type: ignore[no-untyped-def]
        config = micro_config(cell, epochs=2, max_steps=None, eval_every=7)
        config = replace(config, model=replace(config.model, **own_options(cell)))
        return new_trainer(config, read_corpus(str(corpus_file)), run_dir, seed=5)[0]

    straight, resumed, a, b = straight_and_resumed(make, tmp_path)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.state.best_val == straight.state.best_val


def test_the_numpy_step_is_the_model(cell: str) -> None:
    model = model_of(cell, scale=0.4)
    stepper = make_stepper(model)
    assert not isinstance(stepper, TorchStepper)  # the NumPy step, and it passed its self-check
    ids = np.random.default_rng(1).integers(0, V, size=(3, 40))  # three streams at once
    with torch.no_grad():
        expected = model(torch.as_tensor(ids)).log_probs.numpy()
    stepper.start(model.init_hidden(1), 3)
    for t in range(ids.shape[1]):
        got = log_softmax(stepper.step(ids[:, t]).astype(np.float64))
        np.testing.assert_allclose(got, expected[:, t], atol=2e-5, rtol=0)
    # ... and from a state primed by the model.
    last, hidden = run_prime(model, ids[0, :20])
    np.testing.assert_allclose(last, expected[0, 19], atol=1e-5)
    stepper.start(hidden, 2)
    for t in range(20, 30):
        got = log_softmax(stepper.step(ids[[0, 0], t]).astype(np.float64))
        np.testing.assert_allclose(got, expected[[0, 0], t], atol=2e-5, rtol=0)


def test_gradient_flow_steps_the_model_and_gives_finite_norms(cell: str) -> None:
    model, spec = model_of(cell, scale=0.4), registry.get(cell)
    ids = np.random.default_rng(3).integers(0, V, size=80)
    flow = measure(model, ids, FlowConfig(max_lag=4, positions=3, carry_in=3), cell)
    assert flow.kind == cell
    assert {(c.state, c.layer) for c in flow.curves} == {
        (s, k) for s in spec.states for k in range(L)
    }
    for c in flow.curves:
        assert len(c.mean_norm) == 5 and all(math.isfinite(v) for v in c.mean_norm)
        assert c.mean_norm[0] > 0
    if spec.flow_cell is not None:  # its cells, stepped layer by layer, are the model's layers
        x = model.embed(torch.as_tensor(ids[:9])[None]).detach()
        state: list = [None] * L
        with torch.no_grad():
            top = model(torch.as_tensor(ids[:9])[None]).states[0]
            for t in range(9):
                inp = x[:, t].double()
                for k, step in enumerate(_cells(model)):
                    state[k] = step(inp, state[k])
                    inp = state[k][0] if isinstance(state[k], tuple) else state[k]
                np.testing.assert_allclose(inp[0].numpy(), top[t].numpy(), atol=1e-5)


def test_recording_keeps_every_state_and_gate_the_spec_names(cell: str) -> None:
    model, spec = model_of(cell, scale=0.4), registry.get(cell)
    ids = np.random.default_rng(4).integers(0, V, size=30)
    rec = record(model, ids)
    assert rec.kind == cell and rec.names == spec.recorded
    for name in spec.recorded:
        assert rec.states[name].shape == (30, L, H) and np.isfinite(rec.states[name]).all()
    for gate in spec.sigmoid_gates:
        values = rec.states[gate]
        assert (values > 0).all() and (values < 1).all() and values.std() > 0.01, gate
    with torch.no_grad():  # the recorded top layer is the model's own
        top = model(torch.as_tensor(ids)[None]).states[0].numpy()
    np.testing.assert_allclose(rec.states["h"][:, -1], top, atol=3e-5)


def test_a_fresh_model_starts_near_the_uniform_loss(cell: str) -> None:
    torch.manual_seed(0)
    cfg = ModelConfig(model=cell, vocab_size=65, embed_size=16, hidden_size=32)
    model = RNNLM(cfg)
    x, y = torch.randint(0, 65, (8, 50)), torch.randint(0, 65, (8, 50))
    with torch.no_grad():
        nll = model(x, targets=y).nll
    assert abs(nll.mean().item() - math.log(65)) < 0.1


def test_the_spec_says_what_the_docs_and_help_need(cell: str) -> None:
    spec = registry.get(cell)
    assert spec.title and spec.help and "\n" not in spec.help
    assert "$" in spec.equations  # markdown with its equations
    assert f"(`--model {cell}`)" in registry.equations_page()
    assert cell in registry.model_help()
    assert set(spec.sigmoid_gates) <= set(spec.gates)
    assert (spec.numpy_layers is None) != (spec.numpy_network is None)  # one NumPy step
    assert (spec.flow_cell is None) != (spec.flow_gradients is None)  # one gradient flow


def cli(*args: object) -> object:
    return CliRunner().invoke(app, [str(a) for a in args])


def test_train_sample_prime_evaluate_and_inspect_on_the_command_line(
    cell: str, corpus_file: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    options = [str(a) for k, v in own_options(cell).items() for a in (flag(k), v)]
    result = cli("train", corpus_file, "--model", cell, *options, "--out", run, *MICRO_ARGS)
    assert result.exit_code == 0, result.output
    config = json.loads((run / "config.json").read_text())["model"]
    assert config["model"] == cell and config | own_options(cell) == config

    sample = cli("sample", run, "--length", "40", "--seed", "1", "-q")
    assert sample.exit_code == 0 and len(sample.stdout) == 40, sample.output
    prime = cli("prime", run, "First", "--length", "30", "--seed", "1", "-q")
    assert prime.exit_code == 0 and prime.stdout.startswith("First"), prime.output
    scored = cli("evaluate", run, corpus_file, "--json", "-q")
    assert scored.exit_code == 0, scored.output
    assert 0 < json.loads(scored.stdout)["files"][0]["bits_per_char"] < 8
    units = cli("inspect", "units", run, "--file", corpus_file, "--max-chars", "200",
                "--unit", "0:h:3", "-q")  # fmt: skip
    assert units.exit_code == 0, units.output
