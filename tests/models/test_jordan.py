"""The Jordan network (charlm/models/jordanloop.py, charlm/models/cells/jordan.py): its decay,
its hand-written backward, its gradient through the fed-back softmax, its options, and
`inspect gradients` on a run. What every cell does is tests/models/test_cell_contract.py."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from charlm.cli import app
from charlm.config.schema import ModelConfig
from charlm.errors import ConfigError
from charlm.models import registry
from charlm.models.cells.jordan import flow_gradients
from charlm.models.jordanloop import dropout_masks
from charlm.models.lm import RNNLM
from charlm.rundir import checkpoint as ckpt_io

runner = CliRunner()
SMALL = ["--batch-size", "4", "--bptt", "16", "--eval-every", "10", "--sample-length", "20"]


def _hand_model(decay: float) -> RNNLM:
    """Vocabulary 2, embedding 1, one hidden unit: every weight written out."""
    cfg = ModelConfig(model="jordan", vocab_size=2, embed_size=1, hidden_size=1, jordan_decay=decay)
    model = RNNLM(cfg).eval()
    with torch.no_grad():
        model.embed.weight.copy_(torch.tensor([[0.5], [-0.5]]))
        model.rnn.inputs[0].weight.fill_(0.4)  # W
        model.rnn.inputs[0].bias.fill_(0.1)  # b
        model.rnn.context.weight.copy_(torch.tensor([[0.3, -0.2]]))  # U (H, V)
        model.decoder.weight.copy_(torch.tensor([[0.6], [-0.6]]))  # D (V, H)
        model.decoder.bias.copy_(torch.tensor([0.05, -0.05]))
    return model


def _softmax2(z0: float, z1: float) -> tuple[float, float]:
    e0, e1 = math.exp(z0), math.exp(z1)
    return e0 / (e0 + e1), e1 / (e0 + e1)


def test_decay_zero_keeps_only_the_last_output() -> None:
    model = _hand_model(0.0)
    out = model(torch.tensor([[1]]), torch.full((1, 1, 2), 0.5))
    assert out.hidden[0, 0].tolist() == pytest.approx(out.log_probs[0, 0].exp().tolist())


def test_the_loop_alone_passes_gradcheck() -> None:
    # Every output used: the top layer's output, the logits, the context. (The whole model's
    # gradcheck is the contract's, tests/models/test_cell_contract.py.)
    torch.manual_seed(0)
    cfg = ModelConfig(
        model="jordan", vocab_size=4, embed_size=3, hidden_size=3, num_layers=2, jordan_decay=0.5
    )
    model = RNNLM(cfg).double().eval()
    s0 = torch.softmax(torch.randn(1, 2, 4, dtype=torch.float64), -1).requires_grad_()
    emb = torch.randn(2, 3, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda e, s: model.rnn(e, s, model.decoder), (emb, s0))


def _autograd_loop(model: RNNLM, x: torch.Tensor, s: torch.Tensor, masks: torch.Tensor | None):
    """The equations through plain autograd: what JordanLoop's hand-written backward must match."""
    stack, H = model.rnn, model.cfg.hidden_size
    emb, ctx, logits = model.embed(x), s[0], []
    for t in range(x.size(1)):
        u = ctx @ stack.context.weight.t()
        h = torch.tanh(stack.inputs[0](emb[:, t]) + u[:, :H])
        for layer in range(1, stack.num_layers):
            below = h if masks is None else h * masks[t, layer - 1]
            h = torch.tanh(stack.inputs[layer](below) + u[:, layer * H : (layer + 1) * H])
        z = model.decoder(h if masks is None else h * masks[t, -1])
        ctx = stack.decay * ctx + torch.softmax(z, -1)
        logits.append(z)
    return torch.stack(logits, 1), ctx[None]


def test_the_hand_written_backward_matches_autograd_with_dropout() -> None:
    torch.manual_seed(4)
    cfg = ModelConfig(
        model="jordan", vocab_size=6, embed_size=4, hidden_size=5, num_layers=3, dropout=0.3,
        jordan_decay=0.6,
    )  # fmt: skip
    model = RNNLM(cfg).double().train()
    x, s = torch.tensor([[1, 4, 2, 0, 5], [3, 3, 1, 2, 0]]), torch.rand(1, 2, 6).double()
    torch.manual_seed(9)
    masks = dropout_masks(model.rnn, 5, 2, s)
    assert masks is not None and (masks == 0).any()  # dropout is really on
    torch.manual_seed(9)
    grads = []
    loop = lambda: model.rnn(model.embed(x), s, model.decoder)[1:]  # noqa: E731
    for run in (loop, lambda: _autograd_loop(model, x, s, masks)):
        model.zero_grad()
        logits, after = run()
        (logits.sin().sum() + (after * torch.arange(6.0)).sum()).backward()
        grads.append(
            [logits.detach(), after.detach()] + [p.grad.clone() for p in model.parameters()]
        )
    for mine, reference in zip(*grads, strict=True):
        torch.testing.assert_close(mine, reference)


def test_the_gradient_reaches_back_through_the_fed_back_softmax() -> None:
    # y is not detached: the loss at the last step depends on the first token.
    torch.manual_seed(1)
    cfg = ModelConfig(model="jordan", vocab_size=5, embed_size=4, hidden_size=6)
    model = RNNLM(cfg)
    emb = model.embed(torch.tensor([[1, 2, 3]])).detach().requires_grad_()
    _, logits, _ = model.rnn(emb, None, model.decoder)
    (grad,) = torch.autograd.grad(logits[0, -1].sum(), emb)
    assert grad[0, 0].abs().sum() > 0


def test_the_gradient_through_time_follows_the_context_by_hand() -> None:
    # Two steps, decay 0: the loss at step 2 reaches h_1 only through y_1 = softmax(D h_1 + d)
    # fed back as s_2 = y_1: dL/dh_1 = D^T (y_1 * (g - <g, y_1>)), g = U^T dL/da_2.
    model = _hand_model(0.0)
    window, target = torch.tensor([[0, 1]]), torch.tensor([1])
    grads = flow_gradients(model, window, target, torch.full((1, 1, 2), 0.5))[("h", 0)]

    h1 = math.tanh(0.4 * 0.5 + 0.1 + 0.3 * 0.5 - 0.2 * 0.5)
    y1 = _softmax2(0.6 * h1 + 0.05, -0.6 * h1 - 0.05)
    h2 = math.tanh(0.4 * -0.5 + 0.1 + 0.3 * y1[0] - 0.2 * y1[1])
    y2 = _softmax2(0.6 * h2 + 0.05, -0.6 * h2 - 0.05)
    dh2 = 0.6 * y2[0] - 0.6 * (y2[1] - 1.0)  # D^T (softmax - one-hot of target 1)
    da2 = dh2 * (1 - h2 * h2)
    g = (0.3 * da2, -0.2 * da2)  # dL/ds_2
    inner = g[0] * y1[0] + g[1] * y1[1]
    dz1 = (y1[0] * (g[0] - inner), y1[1] * (g[1] - inner))
    dh1 = 0.6 * dz1[0] - 0.6 * dz1[1]

    assert grads[0, :, 0].tolist() == pytest.approx([dh1, dh2], rel=1e-6)


def test_impossible_decays_are_refused() -> None:
    for bad in (-0.1, 1.0, 1.5, float("nan"), float("inf")):
        with pytest.raises(ConfigError, match="--jordan-decay"):
            registry.check(ModelConfig(model="jordan", jordan_decay=bad))
    with pytest.raises(ConfigError, match="applies to --model jordan only"):
        registry.check(ModelConfig(model="lstm", jordan_decay=0.5))


def test_large_vocabularies_keep_the_full_softmax() -> None:
    cfg = ModelConfig(model="jordan", vocab_size=6000, embed_size=4, hidden_size=4)
    model = RNNLM(cfg)
    assert not model.adaptive  # the whole distribution is fed back at every step
    out = model(torch.tensor([[1, 5999]]))
    assert out.log_probs.shape == (1, 2, 6000) and out.hidden.shape == (1, 1, 6000)


def test_tied_weights_share_the_decoder_that_feeds_the_context() -> None:
    cfg = ModelConfig(model="jordan", vocab_size=6, embed_size=4, hidden_size=4, tie_weights=True)
    model = RNNLM(cfg)
    assert model.decoder.weight is model.embed.weight
    model(torch.tensor([[1, 2, 3]]), targets=torch.tensor([[2, 3, 4]])).nll.sum().backward()
    assert model.embed.weight.grad.abs().sum() > 0


def _train(corpus: Path, out: Path, *extra: str) -> None:
    result = runner.invoke(
        app,
        ["train", str(corpus), "--model", "jordan", "--preset", "tiny", "--max-steps", "20",
         "--seed", "1", "--out", str(out), *SMALL, *extra],
    )  # fmt: skip
    assert result.exit_code == 0, result.output


def test_inspect_gradients_of_a_jordan_run_beside_fresh_models(
    corpus_file: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    _train(corpus_file, run, "--jordan-decay", "0.5")
    gradients = runner.invoke(app, ["inspect", "gradients", str(run), "--max-lag", "4",
                                    "--positions", "2", "--compare", "jordan,rnn", "--json",
                                    "-q"])  # fmt: skip
    assert gradients.exit_code == 0, gradients.output
    flows = json.loads(gradients.stdout)["models"]
    assert [f["model"] for f in flows] == ["jordan", "jordan", "rnn"]
    assert len(flows[0]["curves"][0]["mean_norm"]) == 5  # lags 0..4


def test_the_saved_decay_is_the_one_used(corpus_file: Path, tmp_path: Path) -> None:
    _train(corpus_file, tmp_path / "a", "--jordan-decay", "0.9")
    _train(corpus_file, tmp_path / "b")
    ck = ckpt_io.load(tmp_path / "a" / ckpt_io.LATEST)
    assert ck.config.model.jordan_decay == 0.9
    losses = []
    for decay in (0.9, 0.0):  # the same weights read under two decays
        model = RNNLM(dataclasses.replace(ck.config.model, jordan_decay=decay)).eval()
        ckpt_io.load_weights(model, ck)
        x, y = torch.tensor([[1, 2, 3, 4, 5, 6]]), torch.tensor([[2, 3, 4, 5, 6, 7]])
        nll = model(x, targets=y).nll
        losses.append(nll.detach())
    assert not torch.allclose(losses[0], losses[1])
    a = ckpt_io.load(tmp_path / "a" / ckpt_io.LATEST).model
    b = ckpt_io.load(tmp_path / "b" / ckpt_io.LATEST).model
    assert not torch.equal(a["decoder.weight"], b["decoder.weight"])  # the decay trained


@pytest.mark.parametrize("bad", ["1", "-0.1", "nan", "inf", "x"])
def test_the_cli_refuses_impossible_decays_in_one_line(
    corpus_file: Path, tmp_path: Path, bad: str
) -> None:
    result = runner.invoke(
        app, ["train", str(corpus_file), "--model", "jordan", "--jordan-decay", bad,
              "--out", str(tmp_path / "run"), *SMALL],
    )  # fmt: skip
    lines = result.stderr.strip().splitlines()
    assert result.exit_code != 0 and len(lines) == 1, result.output
    assert lines[0].startswith("charlm: error: ") and "--jordan-decay" in lines[0]
    assert not (tmp_path / "run").exists()
