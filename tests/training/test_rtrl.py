"""Real-time recurrent learning gives full BPTT's gradient, however the sequence is windowed."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from charlm.cli import app
from charlm.config.schema import ModelConfig, RunConfig, TrainConfig
from charlm.data.corpus import read_corpus
from charlm.errors import ConfigError
from charlm.models.lm import RNNLM, detach_hidden, hidden_from_tensors
from charlm.training import rtrl
from charlm.training.rtrl import RTRL
from charlm.training.setup import new_trainer
from tests.helpers import MICRO_ARGS, micro_config, straight_and_resumed


def _model(cell: str) -> RNNLM:
    torch.manual_seed(0)
    cfg = ModelConfig(model=cell, vocab_size=5, embed_size=3, hidden_size=4, dropout=0.0)
    model = RNNLM(cfg).double()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.6)
    return model


def _gradients(model: RNNLM) -> dict[str, torch.Tensor]:
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad(set_to_none=True)
    return grads


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_rtrl_gradient_is_full_bptt_over_the_same_sequence(cell: str) -> None:
    model = _model(cell)
    torch.manual_seed(1)
    x, y = torch.randint(0, 5, (2, 12)), torch.randint(0, 5, (2, 12))
    shapes = model.spec.state_shapes(model.cfg, 2)
    hidden = hidden_from_tensors([torch.rand(s, dtype=torch.float64) for s in shapes])
    scale = 1 / x.numel()

    out = model(x, hidden, targets=y)  # BPTT through all 12 steps
    (out.nll.sum() * scale).backward()
    want = _gradients(model)

    learner = RTRL(model)
    state, P, total = hidden, learner.zeros(2), 0.0
    for part in (slice(0, 5), slice(5, 12)):  # two windows: the sensitivity carries the rest
        loss, state, P = learner.window(x[:, part], y[:, part], state, P, scale)
        total += float(loss)
    assert total == pytest.approx(float(out.nll.detach().sum()), abs=1e-10)
    got = _gradients(model)
    assert want.keys() == got.keys()
    for name in want:
        torch.testing.assert_close(got[name], want[name], atol=1e-10, rtol=0, msg=name)
    torch.testing.assert_close(detach_hidden(state), detach_hidden(out.hidden), atol=1e-12, rtol=0)


def test_truncated_bptt_is_not_the_full_gradient() -> None:
    # The check above could not tell RTRL from BPTT truncated at the windows: this is the gap.
    model = _model("rnn")
    torch.manual_seed(1)
    x, y = torch.randint(0, 5, (2, 12)), torch.randint(0, 5, (2, 12))
    model(x, targets=y).nll.sum().backward()
    full = _gradients(model)["rnn.weight_hh_l0"]
    first = model(x[:, :5], targets=y[:, :5])
    first.nll.sum().backward()
    model(x[:, 5:], detach_hidden(first.hidden), targets=y[:, 5:]).nll.sum().backward()
    truncated = _gradients(model)["rnn.weight_hh_l0"]
    assert (full - truncated).abs().max() > 1e-4


@pytest.mark.parametrize(
    ("model", "train", "says"),
    [
        ({"model": "gru"}, {}, "--model rnn or lstm"),
        ({"model": "lstm", "num_layers": 2}, {}, "--layers 2"),
        ({"model": "rnn", "hidden_size": 512}, {}, "--hidden-size 512"),
        ({"model": "rnn", "hidden_size": 64}, {"state_penalty": 0.1}, "--state-penalty"),
    ],
)
def test_rtrl_refuses_what_it_does_not_train(model: dict, train: dict, says: str) -> None:
    config = RunConfig(ModelConfig(**model), train=TrainConfig(algorithm="rtrl", **train))
    with pytest.raises(ConfigError, match=says):
        rtrl.check(config)
    rtrl.check(RunConfig(ModelConfig(**model), train=TrainConfig(**train)))  # bptt: any model


def test_an_rtrl_run_resumes_exactly_with_its_sensitivities(
    corpus_file: Path, tmp_path: Path
) -> None:
    # Resets, dropout and carried sensitivities across windows: a resume restores them all.
    def make(run_dir: Path):  # type: ignore[no-untyped-def]
        config = micro_config("lstm", max_steps=None, eval_every=7, algorithm="rtrl")
        config = replace(config, model=replace(config.model, num_layers=1, hidden_size=6))
        return new_trainer(config, read_corpus(str(corpus_file)), run_dir, seed=5)[0]

    straight, resumed, a, b = straight_and_resumed(make, tmp_path)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # The checkpoint the resume read kept the sensitivities after h and c, one row per stripe.
    assert straight.rtrl is not None and resumed.rtrl is not None
    assert len(straight.checkpoint(full=True).hidden) == 3


def test_train_with_rtrl_on_the_command_line(corpus_file: Path, tmp_path: Path) -> None:
    args = [*MICRO_ARGS, "--model", "rnn", "--algorithm", "rtrl", "--hidden-size", "8"]
    result = CliRunner().invoke(app, ["train", str(corpus_file), "--out", str(tmp_path), *args])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "config.json").read_text())["train"]["algorithm"] == "rtrl"
