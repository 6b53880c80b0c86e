"""charlm fill: gaps filled by a forward and a backward model, each reading its own way."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from typer.testing import CliRunner

from charlm.cli import app
from charlm.config.schema import ModelConfig
from charlm.data.tokenizers import CharTokenizer
from charlm.generation.fill import fill, gap_log_probs
from charlm.inspection.surprisal import both_ways
from charlm.models.lm import RNNLM
from tests.helpers import MICRO_ARGS


def _model(reverse: bool, seed: int) -> RNNLM:
    torch.manual_seed(seed)
    cfg = ModelConfig(model="gru", vocab_size=4, embed_size=3, hidden_size=5, reverse=reverse)
    return RNNLM(cfg).eval()


def test_each_model_reads_up_to_the_gap_from_its_own_side() -> None:
    ids = np.array([0, 1, 2, 3, 2, 1])
    for reverse in (False, True):
        model = _model(reverse, 1)
        got = gap_log_probs(model, ids, [3])[0]
        # The model's own distribution after reading the text before the gap, its way.
        side = ids[:3] if not reverse else ids[4:][::-1]
        with torch.no_grad():
            want = model(torch.as_tensor(side.copy())[None]).log_probs[0, -1].double().numpy()
        np.testing.assert_allclose(got, want, atol=1e-5)


def test_both_directions_multiply_and_a_leading_gap_is_uniform_forward() -> None:
    tok = CharTokenizer("abcd")
    fwd, bwd = _model(False, 1), _model(True, 2)
    both = fill(fwd, bwd, tok, "_bca_", "_")
    ids = np.array([0, 1, 2, 0, 0])
    product = gap_log_probs(fwd, ids, [0, 4]) + gap_log_probs(bwd, ids, [0, 4])
    assert np.allclose(gap_log_probs(fwd, ids, [0])[0], -np.log(4))  # nothing read yet
    assert both.chosen == [tok.chars[i] for i in product.argmax(axis=1)]
    assert both.text == both.chosen[0] + "bca" + both.chosen[1]
    assert (
        abs(
            sum(both.confidence)
            - sum(np.exp(product - np.logaddexp.reduce(product, axis=1, keepdims=True)).max(axis=1))
        )
        < 1e-9
    )


def test_fill_on_the_command_line(corpus_file: Path, tmp_path: Path) -> None:
    runs = {}
    for name, extra in (("fwd", []), ("bwd", ["--reverse"])):
        runs[name] = tmp_path / name
        args = ["train", str(corpus_file), "--out", str(runs[name]), *MICRO_ARGS, *extra]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
    config = json.loads((runs["bwd"] / "config.json").read_text())
    assert config["model"]["reverse"] is True
    text = corpus_file.read_text()[:40]
    gapped = text[:5] + "#" + text[6:30] + "#" + text[31:]
    result = CliRunner().invoke(
        app, ["fill", str(runs["fwd"]), str(runs["bwd"]), gapped, "--marker", "#", "-q"]
    )
    assert result.exit_code == 0, result.output
    out = result.stdout.rstrip("\n")
    assert len(out) == 40 and "#" not in out
    assert out[:5] + out[6:30] + out[31:] == text[:5] + text[6:30] + text[31:]
    both = ["inspect", "surprisal", str(runs["fwd"]), "--file", str(corpus_file),
            "--backward", str(runs["bwd"]), "--max-chars", "300"]  # fmt: skip
    result = CliRunner().invoke(app, both)
    assert result.exit_code == 0 and "bits/char" in result.stderr, result.output
    swapped = CliRunner().invoke(app, ["fill", str(runs["bwd"]), str(runs["fwd"]), "a_b"])
    assert swapped.exit_code != 0 and "backward one second" in swapped.stderr


def test_both_ways_is_high_only_where_both_sides_are_surprised() -> None:
    forward = np.array([np.nan, 9.0, 1.0, 8.0])
    backward = np.array([2.0, 1.0, 7.0, np.nan])
    np.testing.assert_array_equal(both_ways(forward, backward), [2.0, 1.0, 1.0, 8.0])
