"""Rich views of an inspection on stderr: text coloured by a unit, rankings, saturation."""

from __future__ import annotations

import numpy as np
from rich.console import Console
from rich.table import Table
from rich.text import Text

from charlm.cli.common import err
from charlm.inspection.saturation import GateSaturation
from charlm.inspection.surprisal import Span
from charlm.inspection.text_features import Match

# Diverging: blue below the middle, red above; sequential: white to deep orange.
NEGATIVE, POSITIVE, WHITE = (49, 99, 206), (206, 49, 49), (255, 255, 255)
SEQUENTIAL_HIGH = (230, 85, 13)


def _mix(a: tuple[int, int, int], b: tuple[int, int, int], t: float) -> str:
    r, g, bl = (round(x + (y - x) * t) for x, y in zip(a, b, strict=True))
    return f"rgb({r},{g},{bl})"


def background(v: float, lo: float, hi: float, sequential: bool) -> str:
    """The background colour of one value on the unit's scale."""
    if not np.isfinite(v):
        return "rgb(200,200,200)"
    if sequential:
        return _mix(WHITE, SEQUENTIAL_HIGH, float(np.clip((v - lo) / (hi - lo), 0, 1)))
    mid, half = (lo + hi) / 2, (hi - lo) / 2
    t = float(np.clip((v - mid) / half, -1, 1))
    return _mix(WHITE, POSITIVE if t > 0 else NEGATIVE, abs(t))


def coloured_text(
    pieces: list[str], values: np.ndarray, lo: float, hi: float, sequential: bool
) -> Text:
    """The tokens, each on its value's background; a newline keeps its colour as a mark."""
    text = Text()
    for piece, v in zip(pieces, values, strict=True):
        style = f"black on {background(float(v), lo, hi, sequential)}"
        if piece.endswith("\n"):
            text.append(piece[:-1] + "↵", style=style)
            text.append("\n")
        else:
            text.append(piece, style=style)
    return text


def console() -> Console:
    # A log file has no width: make it wide enough that no table is cut.
    return err if err.is_terminal else Console(stderr=True, highlight=False, width=120)


def show(renderable: Text | Table, heading: str | None = None) -> None:
    if heading is not None:
        console().print(heading, markup=False)
    console().print(renderable)


def ranking_table(matches: list[Match]) -> Table:
    # The heading is a row of its own: a title would wrap at the (narrow) table's width.
    table = Table(show_edge=False)
    for name in ("rank", "unit", "r", "|r|"):
        table.add_column(name, justify="right" if name != "unit" else "left")
    for i, m in enumerate(matches, 1):
        table.add_row(str(i), f"L{m.layer}:{m.name}:{m.index}", f"{m.r:+.3f}", f"{abs(m.r):.3f}")
    return table


def saturation_table(sats: list[GateSaturation]) -> Table:
    table = Table(title="gate saturation (fraction of steps < 0.1 / > 0.9)", show_edge=False)
    columns = ("layer", "gate", "mean left", "mean right", "units mostly left",
               "units mostly right", "units rarely saturated")  # fmt: skip
    for name in columns:
        table.add_column(name, justify="left" if name == "gate" else "right")
    for s in sats:
        table.add_row(
            str(s.layer),
            s.gate,
            f"{s.left.mean():.3f}",
            f"{s.right.mean():.3f}",
            str(s.mostly(s.left)),
            str(s.mostly(s.right)),
            str(s.never()),
        )
    return table


def spans_table(spans: list[Span], pieces: list[str]) -> Table:
    table = Table(title="hardest spans", show_edge=False)
    for name in ("tokens", "bits/token", "text"):
        table.add_column(name, justify="left" if name == "text" else "right")
    for s in spans:
        shown = "".join(pieces[s.start : s.end]).replace("\n", "↵")
        table.add_row(f"{s.start}-{s.end - 1}", f"{s.bits:.2f}", shown)
    return table
