"""One self-contained HTML page for `charlm inspect units -o page.html`.

`render_page(doc)` turns what the inspector measured (tokens, per-unit activations, surprisal,
top-5 predictions) into ONE file that opens offline: inline CSS and JS, the data embedded.

Why the values are not stored as JSON floats: 20,000 characters of a 1x512 LSTM are
512 h + 512 c + 4 x 512 gates = 3,072 units x 20,000 steps = 61 million values. Even one byte
each is 61 MB, over the 10 MB cap. So each unit is quantised to 15 levels (4 bits; a background
colour ramp shows no more steps than that, and the tooltip gives the value to 1/14 of the
unit's range), packed two per byte, deflated (saturated gates compress well) and base64'd; the
page inflates a unit only when it is picked. Units are embedded in the order of the list (best
|r| first when a feature was ranked) until the cap is reached; the rest stay in the list,
greyed out, and `Page.units_embedded` lets the CLI say how many made it. Only a text whose
tokens alone do not fit raises, suggesting `--max-chars`.
"""

from __future__ import annotations

import base64
import html
import json
import math
import zlib
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np

from charlm.errors import ConfigError

PAGE_CAP_BYTES = 10_000_000  # "under 10 MB", in decimal megabytes to be safe
LEVELS = 15  # odd, so 0 falls exactly on the middle level of a diverging scale
_DATA_MARK = "/*DATA*/null"
_TITLE_MARK = "__TITLE__"


@dataclass(frozen=True)
class Page:
    """The page and what went into it."""

    html: str
    units_total: int
    units_embedded: int
    max_chars_all_units: int  # the --max-chars at which every unit would fit


def render_page(doc: dict[str, Any], cap_bytes: int = PAGE_CAP_BYTES) -> str:
    """The HTML page for `doc` (see `build_page`)."""
    return build_page(doc, cap_bytes).html


def build_page(doc: dict[str, Any], cap_bytes: int = PAGE_CAP_BYTES) -> Page:
    """Build the page for an inspection `doc`.

    `doc` holds "tokens" [str], "units" [{"name", "kind" ("h"|"c"|"gate"), "range" [lo, hi],
    "values" [float per token], "r" float|None}], "surprisal" [bits per token], "top"
    [[[token, prob] x5] per token], "prob" [p of the actual token], "title", "feature".
    Any "values" may be a NumPy array: 61M values as Python floats would take about 2 GB.
    Raises ConfigError when the text is too long for a page under `cap_bytes`.
    """
    tokens = list(doc["tokens"])
    _check_lengths(doc, len(tokens))
    template = _template()
    units = _ranked(doc["units"], doc.get("feature"))
    payload = _fixed_payload(doc, tokens)
    blobs = [_encode_unit(u["values"], _scale(u)) for u in units]
    bare_units = _json({"units": [_unit_meta(u, None) for u in units]})
    constant = len(template.encode()) + len(bare_units.encode())  # the same for any length
    fixed = constant + len(_json(payload).encode())
    _check_fixed_fits(fixed, constant, len(tokens), cap_bytes, blobs)
    kept = _units_that_fit(blobs, cap_bytes - fixed)
    max_chars = _max_chars(len(tokens), fixed + sum(len(b) + 3 for b in blobs), constant, cap_bytes)
    payload["max_chars_all"] = max_chars
    payload["units"] = [_unit_meta(u, blobs[i] if i < kept else None) for i, u in enumerate(units)]
    head, tail = template.split(_DATA_MARK)  # split first: the title may hold any text
    title = html.escape(str(doc.get("title") or "charlm inspect"))
    page = head.replace(_TITLE_MARK, title, 1) + _json(payload) + tail
    return Page(page, len(units), kept, max_chars)


def _units_that_fit(blobs: list[str], budget: int) -> int:
    """How many units, in list order, fit in `budget` bytes."""
    kept = 0
    for blob in blobs:
        if len(blob) + 3 > budget:  # 3: the quotes and comma around it
            break
        budget -= len(blob) + 3
        kept += 1
    return kept


def _check_lengths(doc: dict[str, Any], n: int) -> None:
    for key in ("surprisal", "top", "prob"):
        if len(doc[key]) != n:
            raise ValueError(f"doc[{key!r}] has {len(doc[key])} entries for {n} tokens")
    for unit in doc["units"]:
        if len(unit["values"]) != n:
            raise ValueError(f"unit {unit['name']} has {len(unit['values'])} values for {n} tokens")


def _ranked(units: list[dict[str, Any]], feature: str | None) -> list[dict[str, Any]]:
    """Units in list order: strongest |r| first when a feature was ranked, else as given."""
    if not feature:
        return list(units)
    return sorted(units, key=lambda u: -abs(r) if (r := _finite_r(u)) is not None else math.inf)


def _finite_r(unit: dict[str, Any]) -> float | None:
    """The unit's correlation, or None when it has none (a constant unit gives NaN)."""
    r = unit.get("r")
    return float(r) if r is not None and math.isfinite(r) else None


def _scale(unit: dict[str, Any]) -> tuple[str, float, float]:
    """(colour scale, lo, hi): sequential for non-negative units (gates on [0, 1]), diverging
    around 0 otherwise (h, c, the tanh candidate)."""
    lo, hi = (float(x) for x in unit["range"])
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"unit {unit['name']} has range {unit['range']}: it must be finite")
    if lo >= 0:
        if unit["kind"] == "gate" and hi <= 1:
            return "seq", 0.0, 1.0
        return "seq", lo, hi if hi > lo else lo + 1.0
    m = max(abs(lo), abs(hi)) or 1.0  # symmetric, so white means exactly 0
    return "div", -m, m


def _quantise(values: Any, lo: float, hi: float) -> np.ndarray:
    v = np.nan_to_num(np.asarray(values, dtype=np.float64), nan=lo)
    q = np.rint((v - lo) / (hi - lo) * (LEVELS - 1))
    return np.clip(q, 0, LEVELS - 1).astype(np.uint8)


def _encode_unit(values: Any, scale: tuple[str, float, float]) -> str:
    q = _quantise(values, scale[1], scale[2])
    if len(q) % 2:
        q = np.append(q, np.uint8(0))
    packed = (q[0::2] << 4) | q[1::2]  # two 4-bit levels per byte, high nibble first
    return _b64(zlib.compress(packed.tobytes(), 6))


def _unit_meta(unit: dict[str, Any], blob: str | None) -> dict[str, Any]:
    kind, lo, hi = _scale(unit)
    r = _finite_r(unit)
    return {
        "name": unit["name"],
        "kind": unit["kind"],
        "scale": kind,
        "lo": lo,
        "hi": hi,
        "r": None if r is None else round(r, 3),
        "data": blob,
    }


def _fixed_payload(doc: dict[str, Any], tokens: list[str]) -> dict[str, Any]:
    """Everything but the units: tokens, surprisal, probabilities, top-5 as vocabulary indices."""
    vocab: dict[str, int] = {}
    top_ids, top_p = [], []
    for row in doc["top"]:
        row = list(row)[:5] + [["", 0.0]] * (5 - len(row))
        for tok, p in row:
            top_ids.append(vocab.setdefault(str(tok), len(vocab)))
            top_p.append(p)
    surprisal = np.asarray(doc["surprisal"], dtype=np.float32)
    id_type = np.uint16 if len(vocab) <= 1 << 16 else np.uint32
    finite = surprisal[np.isfinite(surprisal)]
    return {
        "title": str(doc.get("title") or ""),
        "feature": doc.get("feature"),
        "tokens": [str(t) for t in tokens],
        "surprisal": _b64(surprisal.tobytes()),
        "surprisal_hi": float(max(1.0, np.percentile(finite, 99))) if finite.size else 1.0,
        "prob": _b64(np.asarray(doc["prob"], dtype=np.float32).tobytes()),
        "top_vocab": list(vocab),
        "top_ids": _b64(np.asarray(top_ids, dtype=id_type).tobytes()),
        "top_ids_bytes": np.dtype(id_type).itemsize,
        "top_p": _b64(np.asarray(top_p, dtype=np.float32).tobytes()),
        "max_chars_all": len(tokens),  # replaced once the units are sized; as many digits
    }


def _check_fixed_fits(fixed: int, constant: int, n: int, cap_bytes: int, blobs: list[str]) -> None:
    need = fixed + (len(blobs[0]) + 3 if blobs else 0)
    if need <= cap_bytes:
        return
    raise ConfigError(
        f"the page for {n:,} tokens would be {need / 1e6:.1f} MB, over the "
        f"{cap_bytes / 1e6:g} MB cap: pass --max-chars {_max_chars(n, need, constant, cap_bytes)}"
        " (or fewer)"
    )


def _max_chars(n: int, total: int, constant: int, cap_bytes: int) -> int:
    """The length at which a page of `total` bytes for `n` tokens would fit (most of it grows
    with the length; the template and the unit list do not)."""
    if total <= cap_bytes:
        return n
    per_token = (total - constant) / max(n, 1)
    return max(1, int((cap_bytes - constant) / per_token * 0.97))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _json(payload: dict[str, Any]) -> str:
    # "</" would end the <script> element early; "<\/" is the same string to JSON.
    # allow_nan=False: JSON.parse would reject the page's NaN, so fail here instead.
    text = json.dumps(payload, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return text.replace("</", "<\\/")


def _template() -> str:
    return resources.files("charlm.inspection").joinpath("page.html").read_text(encoding="utf-8")
