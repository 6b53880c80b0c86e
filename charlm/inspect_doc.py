"""The inspection as one document: what `charlm inspect units -o page.html` hands the page.

``{"tokens", "units": [{"name", "kind", "range", "values", "r"?}], "surprisal", "top",
"prob", "title", "feature"}``, JSON-serialisable once each unit's values (a NumPy array
rounded to 3 decimals, so a 1x512 LSTM's 3,072 units over 20,000 tokens never become 61
million Python floats) are turned into lists. The first token is never predicted: its
surprisal and probability are None and its top list is empty.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from charlm.features import Match
from charlm.recording import Recording
from charlm.units import Unit, all_units, value_range, values


def build_doc(
    rec: Recording,
    tokens: list[str],
    vocab: list[str],
    title: str,
    feature: str | None = None,
    ranking: list[Match] | None = None,
    relu: bool = False,
) -> dict[str, Any]:
    """Every unit of ``rec`` (ranked by |r| when a ranking is given), with the predictions."""
    units = all_units(rec)
    r: dict[Unit, float] = {}
    if ranking is not None:
        r = {Unit(m.name, m.layer, m.index): m.r for m in ranking}
        units.sort(key=lambda u: -abs(r.get(u, 0.0)))
    return {
        "tokens": tokens,
        "units": [_unit(rec, u, r.get(u), relu) for u in units],
        "surprisal": _floats(rec.surprisal),
        "top": _top(rec, vocab),
        "prob": _floats(np.exp2(rec.log2_prob)),
        "title": title,
        "feature": feature,
    }


def _unit(rec: Recording, unit: Unit, r: float | None, relu: bool) -> dict[str, Any]:
    lo, hi = value_range(rec, unit, relu)
    doc: dict[str, Any] = {
        "name": str(unit),
        "kind": unit.kind,
        "range": [round(lo, 3), round(hi, 3)],
        "values": np.round(values(rec, unit), 3),
    }
    if r is not None:
        doc["r"] = round(r, 3)
    return doc


def _floats(a: np.ndarray) -> list[float | None]:
    return [None if math.isnan(v) else round(float(v), 3) for v in a]


def _top(rec: Recording, vocab: list[str]) -> list[list[list[Any]]]:
    rows: list[list[list[Any]]] = [[]]
    for ids, probs in zip(rec.top_ids[1:], rec.top_probs[1:], strict=True):
        rows.append([[vocab[i], round(float(p), 4)] for i, p in zip(ids, probs, strict=True)])
    return rows


def jsonable(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` with each unit's values as a list, for json.dumps."""
    units = [{**u, "values": np.asarray(u["values"]).tolist()} for u in doc["units"]]
    return {**doc, "units": units}
