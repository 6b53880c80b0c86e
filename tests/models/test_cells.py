"""The cells with an LSTM's gates: their gate-bias options, the peephole stack's own loop and
recorded gates, and the peephole model across data-parallel ranks.

What every cell does (steps by hand, gradcheck, resume, the NumPy step, the command line) is
checked in tests/models/test_cell_contract.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from charlm.cli import app
from charlm.config.schema import ModelConfig
from charlm.errors import ConfigError
from charlm.generation.stepping import make_stepper, run_prime
from charlm.models import registry
from charlm.models.cells.peephole import PeepholeLSTM
from charlm.models.lm import RNNLM

runner = CliRunner()


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


@pytest.mark.parametrize("kind", registry.takers("forget_bias"))
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


@pytest.mark.parametrize(
    "kind", [n for n in registry.names() if n not in registry.takers("forget_bias")]
)
def test_other_cells_refuse_gate_biases(kind: str) -> None:
    registry.check(ModelConfig(model=kind, forget_bias=1.0, input_bias=0.0))  # defaults: no choice
    with pytest.raises(ConfigError, match="--forget-bias sets an LSTM gate"):
        registry.check(ModelConfig(model=kind, forget_bias=2.0))
    with pytest.raises(ConfigError, match=r"--input-bias .* use --model lstm or peephole"):
        RNNLM(ModelConfig(model=kind, input_bias=-1.0))


def random_peephole(layers: int = 2, vocab: int = 23) -> RNNLM:
    torch.manual_seed(0)
    cfg = ModelConfig(model="peephole", vocab_size=vocab, embed_size=8, hidden_size=16,
                      num_layers=layers, dropout=0.2)  # fmt: skip
    model = RNNLM(cfg)
    with torch.no_grad():
        for p in model.parameters():  # weights large enough that every gate matters
            p.normal_(0.0, 0.4)
    return model.eval()


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


def cli(*args: str) -> object:
    return runner.invoke(app, [str(a) for a in args])


def test_a_peephole_run_keeps_its_gate_biases(corpus_file: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    result = cli("train", corpus_file, "--model", "peephole", "--preset", "tiny",
                 "--max-steps", "20", "--input-bias", "-1", "--out", run, "--seed", "1",
                 "--threads", "1", "--quiet")  # fmt: skip
    assert result.exit_code == 0, result.output
    config = json.loads((run / "config.json").read_text())
    assert config["model"] | {"forget_bias": 1.0, "input_bias": -1.0} == config["model"]
    units = cli("inspect", "units", run, "--file", corpus_file)
    assert units.exit_code == 0, units.output
    assert "forget" in units.stderr + units.stdout  # its gates' saturation

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
    from tests.helpers.ranks import (
        assert_same_weights,
        finish,
        fresh_args,
        metric_rows,
        start_ranks,
    )

    straight, split = tmp_path / "one", tmp_path / "two"
    peephole = ("--model", "peephole")
    ranks = start_ranks(2, *fresh_args(corpus_file, split, 8, 6), *peephole)
    result = cli("train", *fresh_args(corpus_file, straight, 16, 6), *peephole)
    assert result.exit_code == 0, result.output
    finish(ranks)
    one, two = metric_rows(straight), metric_rows(split)
    for key, row in two.items():
        assert row.get("train_loss", 0) == pytest.approx(one[key].get("train_loss", 0), rel=1e-5)
    assert_same_weights(straight, split)
