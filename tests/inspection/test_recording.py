"""The data side of `charlm inspect`: the recording pass, features, ranking, saturation."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from charlm.errors import ConfigError
from charlm.generation.stepping import run_prime
from charlm.inspection.doc import build_doc, jsonable
from charlm.inspection.recording import record
from charlm.inspection.saturation import saturation
from charlm.inspection.surprisal import bits_per_char, hardest_spans
from charlm.inspection.text_features import (
    FEATURES,
    correlations,
    per_token,
    rank_units,
    regex_feature,
)
from charlm.inspection.units import Space, Unit, parse_unit, value_range
from tests.helpers.reference import V, cell_states, layer_outputs, random_model

T = 40


def ids_of(n: int = T, seed: int = 2) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, V, size=n)


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
@torch.no_grad()
def test_recorded_h_and_c_match_torch_for_a_stacked_model(kind: str) -> None:
    model = random_model(kind)
    ids = ids_of()
    rec = record(model, ids)
    hs = layer_outputs(model, ids[None])
    for layer in range(2):
        np.testing.assert_allclose(rec.states["h"][:, layer], hs[layer][0].numpy(), atol=3e-5)
    if kind == "lstm":
        cs = torch.stack([c[:, 0] for c in cell_states(model, ids[None])])  # (T, L, H)
        np.testing.assert_allclose(rec.states["c"], cs.numpy(), atol=3e-5)
    else:
        assert "c" not in rec.states


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_surprisal_and_top_candidates_are_the_models(kind: str) -> None:
    model = random_model(kind)
    ids = ids_of()
    rec = record(model, ids, top=5)
    rows: list[torch.Tensor] = []
    run_prime(model, ids, on_chunk=lambda _, lp: rows.append(lp))
    log_p = torch.cat(rows).double().numpy()  # row t predicts token t + 1
    want = -log_p[np.arange(T - 1), ids[1:]] / math.log(2)
    assert math.isnan(rec.surprisal[0])
    np.testing.assert_allclose(rec.surprisal[1:], want, atol=1e-4)
    best = np.argsort(-log_p[:-1], axis=1)[:, :5]
    np.testing.assert_array_equal(rec.top_ids[1:], best)
    np.testing.assert_allclose(rec.top_probs[1:], np.exp(np.sort(log_p[:-1])[:, ::-1][:, :5]),
                               atol=1e-5)  # fmt: skip


def test_features_follow_the_text() -> None:
    text = 'a "b c"\n  (x[y])\n'
    f = {name: FEATURES[name](text).tolist() for name in FEATURES}
    assert f["quotes"] == [0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    assert f["line-position"][:9] == [1, 2, 3, 4, 5, 6, 7, 0, 1]
    assert f["brackets"][10:17] == [1, 1, 2, 2, 1, 0, 0]
    assert f["indent"][8:12] == [1, 2, 2, 2] and f["indent"][-1] == 0
    assert f["capitals"] == [0.0] * len(text)
    assert sum(f["vowels"]) == 1
    assert regex_feature(r"\(.*?\)")(text).tolist()[10:17] == [1, 1, 1, 1, 1, 1, 0]
    with pytest.raises(ConfigError, match="not a valid regular expression"):
        regex_feature("(")


def test_per_token_reads_each_token_at_its_last_character() -> None:
    pieces = ["say", " ", '"hi', " there", '"', "\n"]
    quotes = per_token(FEATURES["quotes"], pieces)
    assert quotes.tolist() == [0, 0, 1, 1, 0, 0]
    assert per_token(FEATURES["line-position"], pieces).tolist() == [3, 4, 7, 13, 14, 0]
    words = ["The", " ", "cat", ""]
    assert per_token(FEATURES["capitals"], words, mean=True).tolist() == [1 / 3, 0, 0, 0]
    assert per_token(FEATURES["capitals"], words).tolist() == [0, 0, 0, 0]


def test_ranking_finds_the_unit_that_carries_the_feature() -> None:
    rng = np.random.default_rng(0)
    f = rng.integers(0, 2, 500).astype(float)
    states = {"h": rng.normal(size=(500, 2, 8)).astype(np.float32)}
    states["h"][:, 1, 5] = -3 * f + rng.normal(scale=0.1, size=500)
    states["h"][:, 0, 2] = 1.0  # constant: no correlation, not NaN
    ranked = rank_units(states, f, top=3)
    assert (ranked[0].name, ranked[0].layer, ranked[0].index) == ("h", 1, 5)
    assert ranked[0].r < -0.99 and abs(ranked[1].r) < 0.2
    r = correlations(states["h"].reshape(500, -1), f)
    assert r[2] == 0.0 and np.all(np.isfinite(r))


def test_saturation_counts_steps_below_and_above_the_thresholds() -> None:
    gate = np.zeros((10, 1, 3), np.float32)
    gate[:, 0, 0] = 0.05  # always left
    gate[:7, 0, 1] = 0.95  # right 70% of the time
    gate[:, 0, 2] = 0.5  # never saturated
    states = {"h": gate, "input": gate, "forget": gate, "output": gate, "candidate": gate}
    sats = saturation("lstm", states)
    assert [s.gate for s in sats] == ["input", "forget", "output"]
    s = sats[1]
    assert s.left.tolist() == pytest.approx([1.0, 0.3, 0.0])
    assert s.right.tolist() == pytest.approx([0.0, 0.7, 0.0])
    assert (s.mostly(s.left), s.mostly(s.right), s.never()) == (1, 1, 1)
    assert saturation("rnn", {"h": gate, "pre": gate}) == []


def test_hardest_spans_do_not_overlap_and_skip_the_unscored_token() -> None:
    bits = np.array([np.nan, 1, 1, 9, 9, 1, 1, 5, 5, 1])
    spans = hardest_spans(bits, width=2, count=3)
    # Window sums: 1, 2, 10, 18, 10, 2, 6, 10, 6; (2, 4) and (4, 6) overlap the best one.
    assert [(s.start, s.end) for s in spans] == [(3, 5), (7, 9), (1, 3)]
    assert [s.bits for s in spans] == [9, 5, 1]
    assert bits_per_char(bits, 18) == pytest.approx(33 / 18)


def test_units_are_parsed_and_bad_ones_name_the_valid_range() -> None:
    model = random_model("lstm")
    rec = record(model, ids_of(5))
    space = Space.of_recording(rec)
    assert space == Space.of_model(model.cfg)
    assert parse_unit("L1:forget:3", space) == Unit("forget", 1, 3)
    assert parse_unit("1:forget:3", space) == Unit("forget", 1, 3)
    assert value_range(rec, Unit("forget", 0, 0)) == (0.0, 1.0)
    assert value_range(rec, Unit("h", 0, 0)) == (-1.0, 1.0)
    for bad in ("2:h:0", "0:h:16", "0:reset:1", "0:h", "x:h:1"):
        with pytest.raises(ConfigError, match="layers 0-1, kinds h, c, input") as e:
            parse_unit(bad, space)
        assert "units 0-15" in str(e.value)


def test_the_page_document_follows_the_interface() -> None:
    rec = record(random_model("gru"), ids_of(12))
    vocab = [chr(ord("a") + i) for i in range(V)]
    pieces = [vocab[i] for i in rec.ids]
    f = per_token(FEATURES["vowels"], pieces)
    doc = build_doc(rec, pieces, vocab, "t", "vowels", rank_units(rec.states, f))
    units = doc["units"]
    assert len(units) == 4 * 2 * 16  # h and three gates, two layers of 16
    assert [abs(u["r"]) for u in units] == sorted((abs(u["r"]) for u in units), reverse=True)
    assert {u["kind"] for u in units} == {"h", "gate"}
    assert all(len(u["values"]) == 12 for u in units)
    assert doc["surprisal"][0] is None and doc["prob"][0] is None and doc["top"][0] == []
    assert all(len(row) == 5 for row in doc["top"][1:])
    assert doc["prob"][3] == pytest.approx(2 ** -doc["surprisal"][3], abs=2e-3)
    json.dumps(jsonable(doc))  # serialisable once values are lists
