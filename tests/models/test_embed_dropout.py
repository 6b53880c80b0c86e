"""--embed-dropout: dropout on the embedding output alone, in training only; --dropout unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from charlm.cli import app
from charlm.config.options import resolve_config
from charlm.config.schema import ModelConfig
from charlm.errors import ConfigError
from charlm.models.lm import RNNLM
from charlm.rundir import checkpoint as ckpt_io
from tests.helpers import MICRO_ARGS


def _model(dropout: float, embed_dropout: float | None) -> RNNLM:
    torch.manual_seed(0)
    cfg = ModelConfig(
        vocab_size=11, embed_size=32, hidden_size=16, dropout=dropout, embed_dropout=embed_dropout
    )
    return RNNLM(cfg)


def _rnn_input_and_features(model: RNNLM, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """What the recurrent layers read and gave, and what the decoder read (its features)."""
    seen: list[torch.Tensor] = []
    handle = model.rnn.register_forward_hook(lambda m, args, out: seen.append(out[0]))
    inputs: list[torch.Tensor] = []
    pre = model.rnn.register_forward_pre_hook(lambda m, args: inputs.append(args[0]))
    features: list[torch.Tensor] = []
    read = model.decoder.register_forward_pre_hook(lambda m, args: features.append(args[0]))
    with torch.no_grad():
        model(x)
    for hook in (handle, pre, read):
        hook.remove()
    return inputs[0], seen[0], features[0]


X = torch.randint(0, 11, (4, 50))


def test_embed_dropout_drops_only_the_embedding_in_training() -> None:
    model = _model(dropout=0.0, embed_dropout=0.5).train()
    rnn_in, rnn_out, features = _rnn_input_and_features(model, X)
    emb = model.embed(X).detach()
    dropped = rnn_in == 0
    assert 0.3 < dropped.float().mean() < 0.7  # about half of the embedding is dropped
    torch.testing.assert_close(rnn_in[~dropped], 2 * emb[~dropped])  # the rest scaled by 1/(1-p)
    assert torch.equal(features, rnn_out)  # the top layer's output is left alone


def test_embed_dropout_is_off_in_evaluation() -> None:
    model = _model(dropout=0.0, embed_dropout=0.5).eval()
    rnn_in, _, _ = _rnn_input_and_features(model, X)
    assert torch.equal(rnn_in, model.embed(X).detach())


def test_zero_embed_dropout_keeps_dropout_on_the_output_only() -> None:
    model = _model(dropout=0.5, embed_dropout=0.0).train()
    rnn_in, rnn_out, features = _rnn_input_and_features(model, X)
    assert torch.equal(rnn_in, model.embed(X).detach())
    assert 0.3 < (features == 0).float().mean() < 0.7 and not torch.equal(features, rnn_out)


def test_left_out_it_follows_dropout_exactly_as_before() -> None:
    # The same masks from the same random stream: runs made before the option keep their meaning.
    results = []
    for embed_dropout in (None, 0.3):
        model = _model(dropout=0.3, embed_dropout=embed_dropout).train()
        torch.manual_seed(7)
        results.append(_rnn_input_and_features(model, X))
    assert all(torch.equal(a, b) for a, b in zip(*results, strict=True))
    assert (results[0][0] == 0).any()


def test_impossible_values_are_refused() -> None:
    for value in (-0.1, 1.0, float("nan")):
        with pytest.raises(ConfigError, match=r"--embed-dropout must be in \[0, 1\)"):
            resolve_config(None, {"embed_dropout": value})


def test_the_option_reaches_the_run_and_its_checkpoint(corpus_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["train", str(corpus_file), "--out", str(out), *MICRO_ARGS, "--embed-dropout", "0.25"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert json.loads((out / "config.json").read_text())["model"]["embed_dropout"] == 0.25
    ck = ckpt_io.load(out / ckpt_io.BEST)
    assert ck.config.model.embed_dropout == 0.25
    assert ck.config.model.dropout == ModelConfig().dropout  # the default preset's, untouched
    assert RNNLM(ck.config.model).embed_drop.p == 0.25
