"""The LSTM-type cells: the plain LSTM and the peephole LSTM, step by step by hand; the peephole
stack's gradients; the gate-bias options; the peephole model end to end on the command line."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from charlm.cli import app
from charlm.config.schema import ConfigError, ModelConfig
from charlm.data.corpus import read_corpus
from charlm.generation.numpy_cells import NumpyStepper
from charlm.generation.stepping import make_stepper, run_prime
from charlm.models.lm import RNNLM
from charlm.models.peephole import PeepholeLSTM
from charlm.training.setup import new_trainer
from charlm.training.trainer import Trainer
from tests.conftest import micro_config, straight_and_resumed

runner = CliRunner()


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def one_layer(kind: str, inputs: int, units: int) -> torch.nn.Module:
    """The recurrent module of a one-layer model, as RNNLM builds it, in float64."""
    cfg = ModelConfig(model=kind, vocab_size=3, embed_size=inputs, hidden_size=units)
    return RNNLM(cfg).rnn.double()


def load(rnn: torch.nn.Module, **weights: list) -> None:
    with torch.no_grad():
        for name, value in weights.items():
            getattr(rnn, name).copy_(torch.tensor(value, dtype=torch.float64))


# The LSTM tutorial's example: a 1-unit cell with one input, C_0 = H_0 = 0.5, two steps.
# Gate order in the weights is PyTorch's: input, forget, candidate, output.
W = {"i": 0.5, "f": 0.3, "g": 0.4, "o": 0.2}  # input weights
U = {"i": 0.25, "f": 0.7, "g": 0.1, "o": 0.6}  # recurrent weights
B = {"i": 0.01, "f": 0.5, "g": -0.2, "o": 0.15}  # biases
X = [1.0, -0.5]  # the inputs at steps 1 and 2


def test_plain_lstm_two_steps_by_hand() -> None:
    h, c = 0.5, 0.5
    expected = []
    for x in X:
        i = sigmoid(W["i"] * x + U["i"] * h + B["i"])
        f = sigmoid(W["f"] * x + U["f"] * h + B["f"])
        g = math.tanh(W["g"] * x + U["g"] * h + B["g"])
        o = sigmoid(W["o"] * x + U["o"] * h + B["o"])
        c = f * c + i * g
        h = o * math.tanh(c)
        expected.append((h, c))

    rnn = one_layer("lstm", 1, 1)
    order = "ifgo"
    load(
        rnn,
        weight_ih_l0=[[W[k]] for k in order],
        weight_hh_l0=[[U[k]] for k in order],
        bias_ih_l0=[B[k] for k in order],
        bias_hh_l0=[0.0] * 4,
    )
    state = (torch.full((1, 1, 1), 0.5, dtype=torch.float64),) * 2
    out, (_, c_n) = rnn(torch.tensor([[[X[0]], [X[1]]]], dtype=torch.float64), state)
    assert out[0, :, 0].tolist() == pytest.approx([e[0] for e in expected], abs=1e-12)
    assert c_n.item() == pytest.approx(expected[-1][1], abs=1e-12)


# A 2-unit peephole cell, one input: every weight written out, unit by unit.
P_W = {"i": [0.5, -0.3], "f": [0.3, 0.2], "g": [0.4, 0.6], "o": [0.2, -0.1]}  # (unit,)
P_U = {  # (unit, unit): row is the receiving unit
    "i": [[0.25, 0.1], [-0.2, 0.3]],
    "f": [[0.7, -0.4], [0.05, 0.5]],
    "g": [[0.1, 0.2], [0.3, -0.6]],
    "o": [[0.6, 0.0], [-0.1, 0.4]],
}
P_B = {"i": [0.01, -0.1], "f": [0.5, 1.0], "g": [-0.2, 0.1], "o": [0.15, 0.0]}
PEEP = {"i": [0.3, -0.5], "f": [-0.2, 0.4], "o": [0.9, 0.25]}  # diagonal: one per unit


def test_peephole_two_steps_by_hand() -> None:
    h, c = [0.5, 0.5], [0.5, 0.5]
    expected = []
    for x in X:

        def pre(k: str, u: int, x: float = x, h: list[float] = h) -> float:
            return P_W[k][u] * x + P_U[k][u][0] * h[0] + P_U[k][u][1] * h[1] + P_B[k][u]

        i = [sigmoid(pre("i", u) + PEEP["i"][u] * c[u]) for u in (0, 1)]  # sees c_{t-1}
        f = [sigmoid(pre("f", u) + PEEP["f"][u] * c[u]) for u in (0, 1)]
        g = [math.tanh(pre("g", u)) for u in (0, 1)]
        c = [f[u] * c[u] + i[u] * g[u] for u in (0, 1)]
        o = [sigmoid(pre("o", u) + PEEP["o"][u] * c[u]) for u in (0, 1)]  # sees c_t
        h = [o[u] * math.tanh(c[u]) for u in (0, 1)]
        expected.append((h, c))

    rnn = one_layer("peephole", 1, 2)
    assert isinstance(rnn, PeepholeLSTM)
    order = "ifgo"
    load(
        rnn,
        weight_ih_l0=[[P_W[k][u]] for k in order for u in (0, 1)],
        weight_hh_l0=[P_U[k][u] for k in order for u in (0, 1)],
        bias_ih_l0=[P_B[k][u] for k in order for u in (0, 1)],
        bias_hh_l0=[0.0] * 8,
        weight_peep_l0=[PEEP["i"], PEEP["f"], PEEP["o"]],
    )
    state = (torch.full((1, 1, 2), 0.5, dtype=torch.float64),) * 2
    out, (h_n, c_n) = rnn(torch.tensor([[[X[0]], [X[1]]]], dtype=torch.float64), state)
    for t, (h_t, _) in enumerate(expected):
        assert out[0, t].tolist() == pytest.approx(h_t, abs=1e-12)
    assert h_n[0, 0].tolist() == pytest.approx(expected[-1][0], abs=1e-12)
    assert c_n[0, 0].tolist() == pytest.approx(expected[-1][1], abs=1e-12)


def test_peephole_stack_gradients_pass_gradcheck() -> None:
    torch.manual_seed(0)
    stack = PeepholeLSTM(3, 4, num_layers=2).double()
    names = [n for n, _ in stack.named_parameters()]
    params = [p.detach().clone().requires_grad_() for p in stack.parameters()]
    x = torch.randn(2, 5, 3, dtype=torch.float64, requires_grad=True)  # (B, T, I)
    h0 = torch.randn(2, 2, 4, dtype=torch.float64, requires_grad=True)  # (L, B, H)
    c0 = torch.randn(2, 2, 4, dtype=torch.float64, requires_grad=True)

    def run(x: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor, *ps: torch.Tensor) -> tuple:
        out, (h_n, c_n) = torch.func.functional_call(
            stack, dict(zip(names, ps, strict=True)), (x, (h0, c0))
        )
        return out, h_n, c_n

    assert torch.autograd.gradcheck(run, (x, h0, c0, *params))


def test_peephole_float32_agrees_with_float64() -> None:
    # float32 on a CPU goes through oneDNN's packed products where torch has them.
    torch.manual_seed(1)
    stack = PeepholeLSTM(8, 16, num_layers=2)
    x = torch.randn(3, 7, 8)
    out, _ = stack(x)
    out.square().sum().backward()
    grads = {n: p.grad.clone() for n, p in stack.named_parameters()}
    stack.zero_grad()
    stack.double()
    out64, _ = stack(x.double())
    out64.square().sum().backward()
    torch.testing.assert_close(out.double(), out64, atol=1e-5, rtol=0)
    for n, p in stack.named_parameters():
        torch.testing.assert_close(grads[n].double(), p.grad, atol=1e-4, rtol=1e-4)


def test_peephole_dropout_falls_between_layers_only_in_training() -> None:
    torch.manual_seed(2)
    stack = PeepholeLSTM(4, 6, num_layers=2, dropout=0.5)
    x = torch.randn(2, 5, 4)
    stack.eval()
    assert torch.equal(stack(x)[0], stack(x)[0])
    stack.train()
    assert not torch.equal(stack(x)[0], stack(x)[0])
    one = PeepholeLSTM(4, 6, num_layers=1, dropout=0.5).train()
    assert torch.equal(one(x)[0], one(x)[0])  # no layer above to drop into


@pytest.mark.parametrize("kind", ["lstm", "peephole"])
@pytest.mark.parametrize(("forget", "input_"), [(1.0, 0.0), (2.5, -1.0)])
def test_gate_biases_land_in_their_slices(kind: str, forget: float, input_: float) -> None:
    H = 5
    cfg = ModelConfig(
        model=kind, vocab_size=7, embed_size=3, hidden_size=H, num_layers=2,
        forget_bias=forget, input_bias=input_,
    )  # fmt: skip
    rnn = RNNLM(cfg).rnn
    for k in range(2):
        b_ih, b_hh = getattr(rnn, f"bias_ih_l{k}"), getattr(rnn, f"bias_hh_l{k}")
        assert torch.all(b_ih[:H] == input_)
        assert torch.all(b_ih[H : 2 * H] == forget)
        assert torch.all(b_ih[2 * H :] == 0) and torch.all(b_hh == 0)


@pytest.mark.parametrize("kind", ["gru", "rnn"])
def test_other_cells_refuse_gate_biases(kind: str) -> None:
    ModelConfig(model=kind, forget_bias=1.0, input_bias=0.0)  # the defaults are no choice
    with pytest.raises(ConfigError, match="--forget-bias sets an LSTM gate"):
        ModelConfig(model=kind, forget_bias=2.0)
    with pytest.raises(ConfigError, match=r"--input-bias .* use --model lstm or peephole"):
        ModelConfig(model=kind, input_bias=-1.0)


def random_peephole(layers: int = 2, vocab: int = 23) -> RNNLM:
    torch.manual_seed(0)
    cfg = ModelConfig(model="peephole", vocab_size=vocab, embed_size=8, hidden_size=16,
                      num_layers=layers, dropout=0.2)  # fmt: skip
    model = RNNLM(cfg)
    with torch.no_grad():
        for p in model.parameters():  # weights large enough that every gate matters
            p.normal_(0.0, 0.4)
    return model.eval()


def test_sampling_uses_the_numpy_step_for_peephole_and_it_matches_over_50_steps() -> None:
    model = random_peephole()
    stepper = make_stepper(model)
    assert isinstance(stepper, NumpyStepper)  # the self-check accepted it
    ids = np.random.default_rng(1).integers(0, 23, size=(3, 50))
    with torch.no_grad():
        expected = model.log_probs(torch.as_tensor(ids))[0].numpy()  # (3, 50, V)
    stepper.start(model.init_hidden(1), 3)
    for t in range(50):
        z = stepper.step(ids[:, t]).astype(np.float64)
        got = z - np.logaddexp.reduce(z, axis=-1, keepdims=True)
        np.testing.assert_allclose(got, expected[:, t], atol=2e-5, rtol=0)


def test_peephole_numpy_step_records_its_gates() -> None:
    model = random_peephole()
    ids = np.random.default_rng(2).integers(0, 23, size=12)
    stepper = make_stepper(model, record=True)
    stepper.start(model.init_hidden(1), 1)
    c_before = [np.zeros((1, 16), np.float32)] * 2
    for t in range(len(ids)):
        stepper.step(ids[t : t + 1])
        s = stepper.states()
        assert s.kind == "peephole" and set(s.gates) == {"input", "forget", "output", "candidate"}
        for k in range(2):
            g = {name: s.gates[name][k] for name in s.gates}
            np.testing.assert_allclose(
                s.c[k], g["forget"] * c_before[k] + g["input"] * g["candidate"], atol=1e-6
            )
            np.testing.assert_allclose(s.h[k], g["output"] * np.tanh(s.c[k]), atol=1e-6)
        c_before = s.c
    # ... and the state it ends in is the model's own.
    _, (h, c) = run_prime(model, ids)
    np.testing.assert_allclose(np.stack(s.h)[:, 0], h[:, 0].numpy(), atol=1e-5)
    np.testing.assert_allclose(np.stack(s.c)[:, 0], c[:, 0].numpy(), atol=1e-5)


def test_peephole_run_resumes_exactly(corpus_file: Path, tmp_path: Path) -> None:
    def trainer(run_dir: Path) -> Trainer:
        config = micro_config("peephole", epochs=2, max_steps=None, eval_every=7)
        return new_trainer(config, read_corpus(str(corpus_file)), run_dir, seed=5)[0]

    _, _, a, b = straight_and_resumed(trainer, tmp_path)
    assert any(k.startswith("rnn.weight_peep") for k in a)
    assert all(torch.equal(a[k], b[k]) for k in a)


def cli(*args: str) -> object:
    return runner.invoke(app, [str(a) for a in args])


def test_peephole_end_to_end_on_the_command_line(corpus_file: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    result = cli("train", corpus_file, "--model", "peephole", "--preset", "tiny",
                 "--max-steps", "20", "--input-bias", "-1", "--out", run, "--seed", "1",
                 "--threads", "1", "--quiet")  # fmt: skip
    assert result.exit_code == 0, result.output
    config = json.loads((run / "config.json").read_text())
    assert config["model"] | {"forget_bias": 1.0, "input_bias": -1.0} == config["model"]
    assert config["model"]["model"] == "peephole"

    sample = cli("sample", run, "--length", "40", "--seed", "1", "-q")
    assert sample.exit_code == 0 and len(sample.stdout) == 40
    prime = cli("prime", run, "First", "--length", "30", "--seed", "1", "-q")
    assert prime.exit_code == 0 and prime.stdout.startswith("First")
    scored = cli("evaluate", run, corpus_file, "--json", "-q")
    assert scored.exit_code == 0, scored.output
    assert 0 < json.loads(scored.stdout)["files"][0]["bits_per_char"] < 8
    units = cli("inspect", "units", run, "--file", corpus_file)
    assert units.exit_code == 0, units.output
    assert "forget" in units.stderr + units.stdout

    # A resume keeps the run's biases: a different one is ignored, with a warning.
    again = cli("train", "--resume", run, "--max-steps", "22", "--input-bias", "0", "--quiet")
    assert again.exit_code == 0, again.output
    assert json.loads((run / "config.json").read_text())["model"]["input_bias"] == -1.0


def test_gate_bias_for_a_gru_is_one_line(corpus_file: Path, tmp_path: Path) -> None:
    result = cli("train", corpus_file, "--model", "gru", "--forget-bias", "2",
                 "--out", tmp_path / "run", "--max-steps", "2")  # fmt: skip
    assert result.exit_code != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("charlm: error: --forget-bias")
    assert not (tmp_path / "run").exists()


def test_two_peephole_ranks_follow_one_process(corpus_file: Path, tmp_path: Path) -> None:
    from tests.training.test_distributed import _assert_same_weights, _finish, _fresh, _ranks, _rows

    straight, split = tmp_path / "one", tmp_path / "two"
    peephole = ("--model", "peephole")
    ranks = _ranks(2, *_fresh(corpus_file, split, 8, 6), *peephole)
    result = cli("train", *_fresh(corpus_file, straight, 16, 6), *peephole)
    assert result.exit_code == 0, result.output
    _finish(ranks)
    one, two = _rows(straight), _rows(split)
    for key, row in two.items():
        assert row["train_loss"] == pytest.approx(one[key]["train_loss"], rel=1e-5), key
    _assert_same_weights(straight, split)


def test_gradient_flow_steps_the_peephole_model_as_it_runs() -> None:
    from charlm.inspection.gradflow import FlowConfig, _cells, measure

    model = random_peephole()
    ids = np.random.default_rng(3).integers(0, 23, size=(2, 9))
    x = model.embed(torch.as_tensor(ids))
    with torch.no_grad():
        expected, _ = model.rnn(x)
        state = [(torch.zeros(2, 16, dtype=torch.float64),) * 2 for _ in range(2)]
        for t in range(9):  # the cells inspect gradients steps, one layer at a time
            inp = x[:, t].double()
            for k, cell in enumerate(_cells(model)):
                state[k] = cell(inp, state[k])
                inp = state[k][0]
            np.testing.assert_allclose(inp.numpy(), expected[:, t].numpy(), atol=1e-5)
    flow = measure(model, ids.reshape(-1), FlowConfig(max_lag=4, positions=2, carry_in=3), "p")
    assert {(c.state, c.layer) for c in flow.curves} == {("h", 0), ("c", 0), ("h", 1), ("c", 1)}
    assert flow.kind == "peephole" and flow.curve("c").mean_norm[0] > 0
