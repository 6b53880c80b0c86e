"""The echo-state network: its fixed reservoir, its options, and that the read-out learns.
(Its arithmetic, like every cell's, is checked in tests/models/test_cell_contract.py.)"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from charlm.cli import app
from charlm.config.options import resolve_config
from charlm.config.schema import ModelConfig, RunConfig, TrainConfig
from charlm.data.corpus import read_corpus
from charlm.errors import ConfigError
from charlm.generation.load import load_model
from charlm.inspection.units import Space
from charlm.models import registry
from charlm.models.cells.esn import SPARSITY, spectral_radius
from charlm.models.lm import RNNLM, count_parameters
from charlm.rundir import checkpoint as ckpt_io
from charlm.training.setup import new_trainer
from tests.helpers import MICRO_ARGS, micro_config


def _esn(**model: object) -> RNNLM:
    return RNNLM(ModelConfig(**({"model": "esn", "vocab_size": 7} | model)))  # type: ignore[arg-type]


def _set(p: torch.nn.Parameter, rows: list[list[float]] | list[float]) -> None:
    with torch.no_grad():
        p.copy_(torch.tensor(rows))


def test_each_reservoir_has_the_spectral_radius_asked_and_sparse_rows() -> None:
    model = _esn(hidden_size=40, num_layers=2, spectral_radius=0.7)
    for layer in range(2):
        w = getattr(model.rnn, f"weight_hh_l{layer}").detach().double().numpy()
        assert np.abs(np.linalg.eigvals(w)).max() == pytest.approx(0.7, rel=1e-6)
        assert ((w != 0).sum(axis=1) == math.ceil(SPARSITY * 40)).all()
    assert spectral_radius(np.array([[0.0, 2.0], [0.5, 0.0]])) == pytest.approx(1.0)


def test_the_reservoir_follows_the_seed() -> None:
    def reservoir(seed: int) -> torch.Tensor:
        torch.manual_seed(seed)
        return _esn(hidden_size=12).rnn.weight_hh_l0.detach().clone()

    assert torch.equal(reservoir(3), reservoir(3))
    assert not torch.equal(reservoir(3), reservoir(4))


def test_only_the_read_out_is_trained_and_counted_as_trained() -> None:
    model = _esn(embed_size=4, hidden_size=10)
    trained = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trained == {"decoder.weight", "decoder.bias"}
    assert count_parameters(model, trained_only=True) == 10 * 7 + 7
    fixed = 7 * 4 + (10 * 4 + 10 * 10 + 2 * 10)  # embedding, W_in, W, two biases
    assert count_parameters(model) == fixed + 10 * 7 + 7


def test_the_reservoir_stays_fixed_through_training_and_the_checkpoint(
    corpus_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = micro_config("esn", max_steps=8, weight_decay=0.5)  # decay must not reach it
    trainer, _ = new_trainer(config, read_corpus(str(corpus_file)), tmp_path, seed=2)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    optimized = {id(p) for g in trainer.optimizer.param_groups for p in g["params"]}
    assert optimized == {id(trainer.model.decoder.weight), id(trainer.model.decoder.bias)}
    trainer.run()
    after = trainer.model.state_dict()
    for name, value in before.items():
        same = torch.equal(value, after[name])
        assert same != name.startswith("decoder."), name
    # Loading never draws a reservoir only to overwrite it (an eigendecomposition per load).
    monkeypatch.setattr(
        "charlm.models.cells.esn.reservoir", lambda *a: pytest.fail("reservoir drawn on load")
    )
    loaded = load_model(tmp_path / ckpt_io.LATEST).model
    for name, value in loaded.state_dict().items():
        assert torch.equal(value, after[name]), name  # the reservoir is saved, not redrawn
    assert not any(p.requires_grad for p in loaded.rnn.parameters())


def test_training_a_tiny_corpus_lowers_the_loss(corpus_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = [*MICRO_ARGS, "--max-steps", "60", "--eval-every", "20", "--lr", "3e-2"]
    result = CliRunner().invoke(
        app, ["train", str(corpus_file), "--model", "esn", "--out", str(out), *args]
    )
    assert result.exit_code == 0, result.output
    assert "parameters, " in result.stderr and " of them fixed" in result.stderr
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    val = [r["val_loss"] for r in rows if "val_loss" in r]
    vocab = json.loads((out / "config.json").read_text())["model"]["vocab_size"]
    assert val[-1] < val[0] - 0.3 and val[-1] < math.log(vocab) - 0.5  # below uniform


def _fitted(given: dict) -> tuple[RunConfig, list[str]]:
    """The settings as `charlm train` resolves them, then fitted to the cell."""
    return registry.fit(resolve_config(None, given)[0], given)


def test_esn_options_are_checked() -> None:
    with pytest.raises(ConfigError, match="--no-tie-weights"):
        RNNLM(ModelConfig(model="esn", embed_size=8, hidden_size=8, tie_weights=True))
    with pytest.raises(ConfigError, match="--no-tie-weights"):  # asked for, not a preset's
        _fitted({"model": "esn", "tokenizer": "word", "tie_weights": True})
    with pytest.raises(ConfigError, match="add --model esn"):
        _fitted({"spectral_radius": 0.5})
    with pytest.raises(ConfigError, match="--spectral-radius must be greater than 0"):
        resolve_config(None, {"model": "esn", "spectral_radius": 0.0})
    with pytest.raises(ConfigError, match="trains none"):
        registry.fit(
            RunConfig(model=ModelConfig(model="esn"), train=TrainConfig(state_penalty=0.1))
        )
    config, notes = _fitted({"model": "esn", "tokenizer": "word"})
    assert not config.model.tie_weights and any("untied" in n for n in notes)
    cfg = _fitted({"model": "esn", "spectral_radius": 1.2})[0]
    assert replace(cfg.model, vocab_size=5).spectral_radius == 1.2


def test_inspect_units_names_an_esn_unit_as_the_elman_rnn_s() -> None:
    # The unit names are checked against the config before recording: an ESN's are the RNN's.
    space = Space.of_model(ModelConfig(model="esn", vocab_size=5, hidden_size=8))
    assert space.names == ("h", "pre")
