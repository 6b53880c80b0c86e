"""The inspection as documents: what `charlm inspect units -o page.html` hands the page, and
what `units --json` and `surprisal --json` print.

The page document:

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

from charlm.inspection.recording import Recording
from charlm.inspection.saturation import GateSaturation
from charlm.inspection.surprisal import Span
from charlm.inspection.text_features import Match
from charlm.inspection.units import Unit, all_units, value_range, values


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
    """Each token's candidates; none for the one with nothing read before it (the first, or
    a backward model's last)."""
    return [
        []
        if math.isnan(b)
        else [[vocab[i], round(float(p), 4)] for i, p in zip(ids, probs, strict=True)]
        for b, ids, probs in zip(rec.surprisal, rec.top_ids, rec.top_probs, strict=True)
    ]


def jsonable(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` with each unit's values as a list, for json.dumps."""
    units = [{**u, "values": np.asarray(u["values"]).tolist()} for u in doc["units"]]
    return {**doc, "units": units}


def units_report(
    rec: Recording, feature: str | None, ranked: list[Match], sats: list[GateSaturation]
) -> dict[str, Any]:
    """The model's shape, the ranked units with their r, the gate saturation."""
    return {
        "model": rec.kind,
        "layers": rec.layers,
        "hidden_size": rec.hidden,
        "tokens": len(rec.ids),
        "feature": feature,
        "ranking": [{"unit": f"L{m.layer}:{m.name}:{m.index}", "r": round(m.r, 4)} for m in ranked],
        "saturation": [s.to_dict() for s in sats],
    }


def surprisal_report(
    rec: Recording, vocab: list[str], bits_per_char: float, spans: list[Span]
) -> dict[str, Any]:
    """Per token its bits, probability and the top candidates; the means; the hardest spans.

    The first token (a backward model's last) is context only: its bits and probability are
    None, its top list empty.
    """
    pieces = [vocab[i] for i in rec.ids]
    bits = rec.surprisal
    rows = []
    for t, piece in enumerate(pieces):
        if math.isnan(bits[t]):
            rows.append({"token": piece, "bits": None, "prob": None, "top": []})
            continue
        top = zip(rec.top_ids[t], rec.top_probs[t], strict=True)
        rows.append({
            "token": piece,
            "bits": float(bits[t]),
            "prob": float(2.0 ** -bits[t]),
            "top": [{"token": vocab[i], "prob": float(p)} for i, p in top],
        })  # fmt: skip
    return {
        "tokens": rows,
        "scored_tokens": len(rows) - 1,
        "bits_per_token": float(np.nanmean(bits)) if len(rows) > 1 else None,
        "bits_per_char": bits_per_char,
        "hardest_spans": [
            {
                "start": s.start,
                "end": s.end,
                "bits_per_token": s.bits,
                "text": "".join(pieces[s.start : s.end]),
            }
            for s in spans
        ],
    }
