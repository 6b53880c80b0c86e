"""Inspection docs for the page tests, built without a model (the data side has its own tests)."""

from __future__ import annotations

import math

import numpy as np

TEXT = 'He said "to be\nor not" (to\tbe) é</script>\n'


def synthetic_doc(text: str = TEXT, seed: int = 0, feature: str | None = "quotes") -> dict:
    """A small doc of the real shape: h, c and gate units, top-5 lists, surprisal."""
    rng = np.random.default_rng(seed)
    n = len(text)
    inside = np.cumsum([ch == '"' for ch in text]) % 2  # 1 inside a quoted span
    units = []
    for i in range(4):
        values = np.tanh(rng.normal(size=n) + (3.0 * inside if i == 2 else 0.0))
        units.append(_unit(f"L0:h:{i}", "h", [-1.0, 1.0], values, inside))
    c = 4.0 * rng.normal(size=n)
    units.append(_unit("L0:c:0", "c", [float(c.min()), float(c.max())], c, inside))
    for i in range(3):
        units.append(_unit(f"L0:i:{i}", "gate", [0.0, 1.0], rng.uniform(size=n), inside))
    vocab = sorted(set(text))
    top, prob, surprisal = [], [], []
    for ch in text:
        p = rng.dirichlet(np.ones(len(vocab)))
        order = np.argsort(-p)[:5]
        top.append([[vocab[k], float(p[k])] for k in order])
        prob.append(float(p[vocab.index(ch)]))
        surprisal.append(-math.log2(prob[-1]))
    return {
        "tokens": list(text),
        "units": units,
        "surprisal": surprisal,
        "top": top,
        "prob": prob,
        "title": "synthetic <doc>",
        "feature": feature,
    }


def _unit(name: str, kind: str, rng_: list[float], values, inside) -> dict:
    r = float(np.corrcoef(values, inside)[0, 1]) if np.std(inside) else None
    return {"name": name, "kind": kind, "range": rng_, "values": [float(v) for v in values], "r": r}


def random_doc_of_real_shape(n: int, hidden: int = 512, seed: int = 0) -> dict:
    """n tokens of a 1xhidden LSTM: hidden h + hidden c + 4 x hidden gates, random values."""
    rng = np.random.default_rng(seed)
    text = "".join(rng.choice(list("abcdefgh ij\nklmnop"), size=n))
    kinds = [("h", [-1.0, 1.0])] + [("c", [-5.0, 5.0])] + [("gate", [0.0, 1.0])] * 4
    units = []
    for layer_kind, (kind, span) in zip("hcifog", kinds, strict=True):
        for i in range(hidden):
            values = rng.uniform(span[0], span[1], size=n).astype(np.float32)
            units.append(
                {
                    "name": f"L0:{layer_kind}:{i}",
                    "kind": kind,
                    "range": span,
                    "values": values,
                    "r": None,
                }
            )
    top = [[["a", 0.5], ["b", 0.2], ["c", 0.1], [" ", 0.05], ["\n", 0.01]]] * n
    p = rng.uniform(0.01, 1, size=n)
    return {
        "tokens": list(text),
        "units": units,
        "surprisal": list(-np.log2(p)),
        "top": top,
        "prob": list(p),
        "title": "random",
        "feature": None,
    }
