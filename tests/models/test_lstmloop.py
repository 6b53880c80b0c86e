"""charlm's LSTM time loop (lstmloop.py): nn.LSTM's arithmetic, its rule, and training by it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from charlm.config.schema import ModelConfig
from charlm.data.corpus import read_corpus
from charlm.models import lstmloop
from charlm.models.lm import RNNLM
from charlm.training.setup import new_trainer
from charlm.training.trainer import Trainer
from tests.helpers import micro_config, straight_and_resumed
from tests.helpers.marks import needs_bf16

F64 = torch.float64


def _lstm(layers: int, hidden: int = 6, size_in: int = 5, dropout: float = 0.0) -> nn.LSTM:
    torch.manual_seed(layers)
    rnn = nn.LSTM(size_in, hidden, num_layers=layers, batch_first=True, dropout=dropout)
    return rnn.double()


def _grads(out: tuple, inputs: list[torch.Tensor], gy: torch.Tensor) -> tuple:
    o, (h, c) = out
    loss = (o * gy).sum() + (h * 0.3).sum() + (c * 0.7).sum()  # every output reaches the loss
    return torch.autograd.grad(loss, inputs)


@pytest.mark.parametrize("layers", [1, 2, 3])
def test_the_loop_computes_what_nn_lstm_computes_in_float64(layers: int) -> None:
    rnn = _lstm(layers)
    x = torch.randn(3, 7, 5, dtype=F64, requires_grad=True)
    h0 = torch.randn(layers, 3, 6, dtype=F64, requires_grad=True)
    c0 = torch.randn(layers, 3, 6, dtype=F64, requires_grad=True)
    theirs, mine = rnn(x, (h0, c0)), lstmloop.lstm_forward(rnn, x, (h0, c0))
    for a, b in zip((theirs[0], *theirs[1]), (mine[0], *mine[1]), strict=True):
        assert a.shape == b.shape and a.dtype == b.dtype
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    inputs = [x, h0, c0, *rnn.parameters()]
    gy = torch.randn_like(theirs[0])
    for a, b in zip(_grads(theirs, inputs, gy), _grads(mine, inputs, gy), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


def test_the_loop_starts_from_zeros_without_a_state() -> None:
    rnn = _lstm(2)
    x = torch.randn(2, 4, 5, dtype=F64)
    torch.testing.assert_close(lstmloop.lstm_forward(rnn, x)[0], rnn(x)[0], rtol=0, atol=1e-12)


def test_a_stacked_loops_gradients_pass_gradcheck() -> None:
    rnn = _lstm(2, hidden=3, size_in=2)
    x = torch.randn(2, 4, 2, dtype=F64, requires_grad=True)
    h0 = torch.randn(2, 2, 3, dtype=F64, requires_grad=True)
    c0 = torch.randn(2, 2, 3, dtype=F64, requires_grad=True)
    # The upper layer's recurrent weight is checked too: gradcheck perturbs it in place, and
    # the loop reads it from the module.
    w = rnn.weight_hh_l1

    def f(x: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor, _w: torch.Tensor) -> tuple:
        out, (h, c) = lstmloop.lstm_forward(rnn, x, (h0, c0))
        return out, h, c

    assert torch.autograd.gradcheck(f, (x, h0, c0, w))


def test_between_layers_the_loop_drops_out_as_nn_lstm_does() -> None:
    rnn = _lstm(2, dropout=0.5)
    x = torch.randn(3, 5, 5, dtype=F64)
    rnn.train()
    torch.manual_seed(4)
    dropped = lstmloop.lstm_forward(rnn, x)[0]
    torch.manual_seed(4)
    again = lstmloop.lstm_forward(rnn, x)[0]
    rnn.dropout = 0.0
    plain = lstmloop.lstm_forward(rnn, x)[0]
    torch.testing.assert_close(dropped, again, rtol=0, atol=0)  # the seed decides the mask
    assert (dropped - plain).abs().max() > 1e-3  # and there is one
    assert (dropped != 0).all()  # between the layers only: the top output is not dropped
    one = _lstm(1)  # one layer: nothing between, so no dropout at all
    one.dropout = 0.5  # (set after: nn.LSTM warns about it, rightly)
    one.train()
    torch.testing.assert_close(lstmloop.lstm_forward(one, x)[0], one(x)[0], rtol=0, atol=1e-12)


def _bf16_run(rnn: nn.LSTM, x: torch.Tensor, gy: torch.Tensor, loop: bool, amp: bool) -> list:
    """Output, final state and the gradients of (x, every parameter) of one run."""
    x = x.clone().requires_grad_(True)
    rnn.zero_grad()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
        out, (h, c) = lstmloop.lstm_forward(rnn, x) if loop else rnn(x)
    (out.float() * gy).sum().backward()
    return [out.float(), h.float(), c.float(), x.grad, *(p.grad.clone() for p in rnn.parameters())]


def test_in_bf16_the_loop_is_as_close_to_float32_as_nn_lstm_is() -> None:
    # Outputs and every gradient (the bf16 branch of the backward, which float64 never takes),
    # each against float32 nn.LSTM: no further off than nn.LSTM's own bf16 is, give or take.
    torch.manual_seed(0)
    rnn = nn.LSTM(8, 64, num_layers=2, batch_first=True)
    x, gy = torch.randn(4, 20, 8), torch.randn(4, 20, 64)
    exact = _bf16_run(rnn, x, gy, loop=False, amp=False)
    mine = _bf16_run(rnn, x, gy, loop=True, amp=True)
    theirs = _bf16_run(rnn, x, gy, loop=False, amp=True)
    assert all(t.dtype == torch.float32 for t in mine)  # the state and the gradients
    for e, m, t in zip(exact, mine, theirs, strict=True):
        err_mine = ((m - e).norm() / e.norm()).item()
        err_theirs = ((t - e).norm() / e.norm()).item()
        assert 0 < err_mine < max(2 * err_theirs, 1e-2), (err_mine, err_theirs)


def test_the_rule_runs_the_loop_only_for_wide_lstms_training_in_bf16_on_a_cpu() -> None:
    wide, narrow = lstmloop.LOOP_FROM_HIDDEN, lstmloop.LOOP_FROM_HIDDEN - 1
    x = torch.zeros(2, 3, 4)
    lstm, gru = nn.LSTM(4, wide, batch_first=True), nn.GRU(4, wide, batch_first=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert lstmloop.uses_loop(lstm, x)
        assert not lstmloop.uses_loop(nn.LSTM(4, narrow, batch_first=True), x)
        assert not lstmloop.uses_loop(gru, x)
        assert not lstmloop.uses_loop(nn.LSTM(4, wide), x)  # time-first: not this loop's
        with torch.no_grad():  # evaluation and sampling
            assert not lstmloop.uses_loop(lstm, x)
        assert not lstmloop.uses_loop(lstm.eval(), x)
    assert not lstmloop.uses_loop(lstm.train(), x)  # float32: nn.LSTM
    with torch.autocast("cpu", dtype=torch.float16):
        assert not lstmloop.uses_loop(lstm, x)


def test_a_wide_lstm_model_trains_through_the_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lstmloop, "LOOP_FROM_HIDDEN", 16)
    calls: list[int] = []
    real = lstmloop.lstm_forward
    monkeypatch.setattr(lstmloop, "lstm_forward", lambda *a: calls.append(1) or real(*a))
    model = RNNLM(ModelConfig(vocab_size=11, embed_size=8, hidden_size=16, num_layers=2))
    x = torch.randint(0, 11, (3, 9))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        model.train()
        log_probs = model(x).log_probs
        assert calls == [1]
        model.eval()
        with torch.no_grad():
            model(x)
    assert calls == [1]  # evaluation ran nn.LSTM
    log_probs.sum().backward()
    assert model.rnn.weight_hh_l1.grad is not None


@needs_bf16
def test_a_run_through_the_loop_resumes_exactly_and_learns_as_nn_lstm_does(
    corpus_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real = lstmloop.lstm_forward
    monkeypatch.setattr(lstmloop, "lstm_forward", lambda *a: calls.append(1) or real(*a))

    def make(run_dir: Path) -> Trainer:
        config = micro_config(epochs=2, max_steps=None, eval_every=7, amp="bf16", lr=2e-2)
        return new_trainer(config, read_corpus(str(corpus_file)), run_dir, seed=5)[0]

    reference = make(tmp_path / "ref")  # the micro model's 16 units: nn.LSTM
    reference.run()
    assert not calls
    monkeypatch.setattr(lstmloop, "LOOP_FROM_HIDDEN", 16)
    straight, _, a, b = straight_and_resumed(make, tmp_path)
    assert calls  # these runs trained by the loop
    assert all(torch.equal(a[k], b[k]) for k in a)
    # bf16 rounds differently in the two, so the runs part; they must learn alike.
    ref_best, best = reference.state.best_val, straight.state.best_val
    assert best != ref_best and abs(best - ref_best) < 0.05 * ref_best
