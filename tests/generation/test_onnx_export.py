"""The ONNX export: every cell it can express computes the model's scores to 1e-5 through
onnxruntime; the metadata is what a runtime needs; the cells it cannot express are refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from charlm.config.schema import ModelConfig, RunConfig
from charlm.data.tokenizers import CharTokenizer
from charlm.generation.onnx_export import (
    TOLERANCE,
    ExportError,
    export_onnx,
    state_specs,
    unexportable_cells,
)
from charlm.models import registry
from charlm.models.lm import RNNLM

TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\n"


def _model(cell: str, tok: CharTokenizer) -> RNNLM:
    torch.manual_seed(0)
    base = ModelConfig(vocab_size=tok.vocab_size, embed_size=6, hidden_size=10, num_layers=2)
    return RNNLM(registry.for_cell(base, cell), loading=False).eval()


def _session(path: Path) -> tuple[ort.InferenceSession, dict]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    return session, {k.removeprefix("charlm."): json.loads(v) for k, v in meta.items()}


@pytest.mark.parametrize("cell", [c for c in registry.names() if c not in unexportable_cells()])
def test_scores_through_onnxruntime_equal_the_models_over_a_text(cell: str, tmp_path: Path) -> None:
    tok = CharTokenizer.train(TEXT)
    model = _model(cell, tok)
    path = tmp_path / "model.onnx"
    export_onnx(model, tok, RunConfig(model=model.cfg), path)
    session, meta = _session(path)
    ids = [int(i) for i in tok.encode(TEXT)]
    with torch.no_grad():
        expected = model(torch.tensor([ids])).log_probs[0].numpy()  # (T, V)
    state = {s["name"]: np.zeros(s["shape"], np.float32) for s in meta["states"]}
    for t, token in enumerate(ids):
        out = session.run(None, {"ids": np.array([token], np.int64), **state})
        state = dict(zip(state, out[1:], strict=True))
        np.testing.assert_allclose(out[0][0], expected[t], atol=TOLERANCE, rtol=0)


def test_the_metadata_holds_what_a_runtime_needs(tmp_path: Path) -> None:
    tok = CharTokenizer.train(TEXT)
    model = _model("lstm", tok)
    path = tmp_path / "model.onnx"
    export_onnx(model, tok, RunConfig(model=model.cfg), path)
    session, meta = _session(path)
    assert meta["vocab"] == [tok.decode([i]) for i in range(tok.vocab_size)]
    assert meta["kind"] == "char" and meta["format"] == 1
    assert [s["name"] for s in meta["states"]] == ["h", "c"]
    assert meta["states"][0]["shape"] == [2, 1, 10]
    assert meta["start"] == [int(tok.encode("\n")[0])]
    assert meta["config"]["model"]["hidden_size"] == 10
    assert [i.name for i in session.get_inputs()] == ["ids", "h", "c"]
    assert [o.name for o in session.get_outputs()] == ["scores", "h_out", "c_out"]


def test_a_batch_of_streams_runs_in_one_call(tmp_path: Path) -> None:
    tok = CharTokenizer.train(TEXT)
    model = _model("gru", tok)
    path = tmp_path / "model.onnx"
    export_onnx(model, tok, RunConfig(model=model.cfg), path)
    session, _ = _session(path)
    h = np.zeros((2, 5, 10), np.float32)
    scores, h_out = session.run(None, {"ids": np.arange(5, dtype=np.int64), "h": h})
    assert scores.shape == (5, tok.vocab_size) and h_out.shape == (2, 5, 10)


@pytest.mark.parametrize("cell", sorted(unexportable_cells()))
def test_a_cell_it_cannot_express_is_refused_in_one_line(cell: str, tmp_path: Path) -> None:
    tok = CharTokenizer.train(TEXT)
    with pytest.raises(ExportError, match=f"--model {cell} cannot be exported"):
        export_onnx(_model(cell, tok), tok, RunConfig(), tmp_path / "m.onnx")
    assert not list(tmp_path.iterdir())


def test_state_specs_follow_the_cells_carried_state() -> None:
    tok = CharTokenizer.train(TEXT)
    for cell in registry.names():
        model = _model(cell, tok)
        shapes = [s.shape for s in state_specs(model)]
        assert shapes == [tuple(t.shape) for t in _tensors(model.init_hidden(1))]


def _tensors(hidden: object) -> list[torch.Tensor]:
    return list(hidden) if isinstance(hidden, tuple) else [hidden]  # type: ignore[list-item]
