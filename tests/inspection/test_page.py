"""render_page: one self-contained page, data decodable, units ranked, the size cap kept."""

from __future__ import annotations

import base64
import json
import re
import zlib

import numpy as np
import pytest

from charlm.errors import ConfigError
from charlm.inspection.page import LEVELS, build_page, render_page
from tests.helpers.page_docs import random_doc_of_real_shape, synthetic_doc


def embedded(html: str) -> dict:
    m = re.search(r'<script id="data" type="application/json">(.*?)</script>', html, re.S)
    assert m, "the data block is missing"
    return json.loads(m.group(1))


def levels(unit: dict, n: int) -> np.ndarray:
    """Decode a unit the way the page's JS does: inflate, then two 4-bit levels per byte."""
    packed = np.frombuffer(zlib.decompress(base64.b64decode(unit["data"])), dtype=np.uint8)
    return np.stack([packed >> 4, packed & 15], axis=1).ravel()[:n]


def test_page_is_self_contained() -> None:
    html = render_page(synthetic_doc())
    assert html.startswith("<!doctype html>")
    # No network: nothing loaded from elsewhere, no external scripts, styles or fonts.
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert "@import" not in html and "url(http" not in html
    assert html.count("</script>") == 2  # the data block and the code; the text's is escaped
    assert "<title>synthetic &lt;doc&gt;</title>" in html
    odd = render_page({**synthetic_doc(), "title": "/*DATA*/null __TITLE__"})
    assert embedded(odd)["title"] == "/*DATA*/null __TITLE__"


def test_embedded_data_round_trips() -> None:
    doc = synthetic_doc()
    data = embedded(render_page(doc))
    n = len(doc["tokens"])
    assert data["tokens"] == doc["tokens"]
    np.testing.assert_allclose(
        np.frombuffer(base64.b64decode(data["surprisal"]), np.float32), doc["surprisal"], rtol=1e-6
    )
    assert data["top_ids_bytes"] == 2  # a small vocabulary: 16-bit ids
    ids = np.frombuffer(base64.b64decode(data["top_ids"]), np.uint16).reshape(n, 5)
    ps = np.frombuffer(base64.b64decode(data["top_p"]), np.float32).reshape(n, 5)
    for i in (0, n // 2, n - 1):
        assert [data["top_vocab"][k] for k in ids[i]] == [t for t, _ in doc["top"][i]]
        np.testing.assert_allclose(ps[i], [p for _, p in doc["top"][i]], rtol=1e-6)


def test_unit_values_survive_quantisation_to_half_a_level() -> None:
    doc = synthetic_doc()
    data = embedded(render_page(doc))
    by_name = {u["name"]: u for u in doc["units"]}
    for unit in data["units"]:
        values = np.asarray(by_name[unit["name"]]["values"])
        step = (unit["hi"] - unit["lo"]) / (LEVELS - 1)
        decoded = unit["lo"] + levels(unit, len(values)) * step
        assert np.max(np.abs(decoded - values)) <= step / 2 + 1e-9


def test_scales_diverging_around_zero_and_sequential_for_gates() -> None:
    units = {u["name"]: u for u in embedded(render_page(synthetic_doc()))["units"]}
    h, c, gate = units["L0:h:0"], units["L0:c:0"], units["L0:i:0"]
    assert (h["scale"], h["lo"], h["hi"]) == ("div", -1.0, 1.0)
    assert c["scale"] == "div" and c["lo"] == -c["hi"]  # symmetric: white is exactly 0
    assert (gate["scale"], gate["lo"], gate["hi"]) == ("seq", 0.0, 1.0)
    candidate = {"name": "L0:g:0", "kind": "gate", "range": [-1.0, 1.0], "values": [0.0], "r": None}
    tokens_one = {**synthetic_doc("a"), "units": [candidate]}
    assert embedded(render_page(tokens_one))["units"][0]["scale"] == "div"  # tanh candidate
    zero = np.zeros(9)
    doc = synthetic_doc()
    doc["units"][0]["values"] = list(zero) + doc["units"][0]["values"][9:]
    first = next(u for u in embedded(render_page(doc))["units"] if u["name"] == "L0:h:0")
    assert set(levels(first, 9)) == {(LEVELS - 1) // 2}


def test_units_ranked_by_abs_r_when_a_feature_was_given() -> None:
    doc = synthetic_doc()
    names = [u["name"] for u in embedded(render_page(doc))["units"]]
    rs = {u["name"]: abs(u["r"]) for u in doc["units"]}
    assert names == sorted(rs, key=lambda k: -rs[k])
    assert names[0] == "L0:h:2"  # the unit the synthetic doc drives with the quotes
    unranked = [u["name"] for u in embedded(render_page(synthetic_doc(feature=None)))["units"]]
    assert unranked == [u["name"] for u in doc["units"]]


def test_mismatched_lengths_are_a_bug_not_a_user_error() -> None:
    doc = synthetic_doc()
    doc["prob"] = doc["prob"][:-1]
    with pytest.raises(ValueError, match="prob"):
        render_page(doc)


def test_units_beyond_the_cap_stay_listed_without_data() -> None:
    doc = random_doc_of_real_shape(2000, hidden=64)
    full = build_page(doc)
    assert full.units_embedded == full.units_total == 384
    cap = len(full.html.encode()) // 2
    half = build_page(doc, cap_bytes=cap)
    assert len(half.html.encode()) <= cap
    assert 0 < half.units_embedded < 384 and half.units_total == 384
    data = embedded(half.html)
    assert [u["data"] is not None for u in data["units"]] == [True] * half.units_embedded + [
        False
    ] * (384 - half.units_embedded)
    assert data["max_chars_all"] == half.max_chars_all_units < 2000
    # At the suggested --max-chars every unit fits.
    cut = {**doc, "tokens": doc["tokens"][: half.max_chars_all_units]}
    for key in ("surprisal", "top", "prob"):
        cut[key] = doc[key][: half.max_chars_all_units]
    cut["units"] = [{**u, "values": u["values"][: half.max_chars_all_units]} for u in doc["units"]]
    assert build_page(cut, cap_bytes=cap).units_embedded == 384


def test_a_text_too_long_for_any_page_suggests_max_chars() -> None:
    doc = random_doc_of_real_shape(3000, hidden=4)
    with pytest.raises(ConfigError, match=r"over the 0\.05 MB cap: pass --max-chars \d+") as e:
        build_page(doc, cap_bytes=50_000)
    suggested = int(re.search(r"--max-chars (\d+)", str(e.value)).group(1))
    assert 0 < suggested < 3000


def test_twenty_thousand_chars_of_a_1x512_lstm_fit_under_10_mb() -> None:
    # Random values are the worst case: they do not compress. Real activations do better.
    page = build_page(random_doc_of_real_shape(20_000, hidden=512))
    size = len(page.html.encode())
    assert size < 10_000_000
    assert page.units_total == 3072
    # Every h unit at least, and with random data about a quarter of all units.
    assert page.units_embedded >= 512


def test_a_constant_unit_has_no_r_and_sorts_last() -> None:
    doc = synthetic_doc()
    doc["units"][0]["r"] = float("nan")  # what np.corrcoef gives for a constant unit
    data = embedded(render_page(doc))
    assert data["units"][-1]["name"] == "L0:h:0" and data["units"][-1]["r"] is None
