"""Matplotlib figures written to files: gradient flow and training curves.

Figures are built on matplotlib's object API with the Agg canvas, never pyplot: no display
is needed and no global backend state is touched. matplotlib is imported inside the
functions, so importing charlm stays fast.
"""

from __future__ import annotations

import io
import math
from itertools import pairwise
from pathlib import Path
from typing import Any

from charlm.errors import ConfigError
from charlm.inspection.gradflow import VANISHED, Flow
from charlm.models import registry
from charlm.rundir.atomic import write_atomic
from charlm.rundir.read import RunCurves

DPI = 100
FORMATS = (".png", ".svg")
PANELS = (  # (series, axis label, height ratio, log scale)
    ("val_bpc", "validation bits/char", 3.0, False),
    ("train_loss", "train loss (nats/token)", 2.0, False),
    ("lr", "learning rate", 1.0, False),
    ("grad_norm", "gradient norm", 1.0, True),
)
X_LABELS = {"tokens_seen": "tokens seen", "elapsed": "training time (s)"}


class FigureError(ConfigError):
    """A figure that cannot be written as asked; the message says what to change."""


def check_output(path: str | Path) -> Path:
    p = Path(path)
    if p.suffix.lower() not in FORMATS:
        raise FigureError(f"cannot write {p}: name a .png or .svg file with -o")
    return p


def _figure(width: int, height: int) -> Any:
    from matplotlib.figure import Figure

    if width < 200 or height < 150:
        raise FigureError(f"a figure of {width}x{height} pixels is too small: use at least 200x150")
    return Figure(figsize=(width / DPI, height / DPI), dpi=DPI, layout="constrained")


def _save(fig: Any, path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()  # drawn in memory, then written atomically: never half an image
    fig.savefig(buf, dpi=DPI, format=path.suffix.lower().lstrip("."))
    write_atomic(path, buf.getbuffer())


def gradient_flow_figure(
    flows: list[Flow], path: str | Path, width: int = 900, height: int = 560, title: str = ""
) -> None:
    """Log-scale mean |dL_t/dh_{t-k}| against lag k, one line per model (top layer); an
    LSTM's cell gradient dashed in the same colour; where a curve vanishes, marked."""
    fig = _figure(width, height)
    ax = fig.add_subplot()
    colors = _colors()
    for i, flow in enumerate(flows):
        color = colors[i % len(colors)]
        for state, style in (("h", "-"), ("c", "--")):
            if state not in registry.get(flow.kind).states:
                continue
            curve = flow.curve(state)
            label = flow.name if state == "h" else f"{flow.name}: cell c"
            # A gradient that underflowed float32 is 0: the line ends there (no log of 0).
            ys = [v if v > 0 else float("nan") for v in curve.mean_norm]
            ax.plot(range(len(ys)), ys, style, color=color, lw=1.6, label=label)
            k = curve.vanished_at()
            if k is not None:
                ax.plot([k], [ys[k]], "o", color=color, ms=6, mfc="white", mew=1.6)
    ax.set_yscale("log")
    ax.set_xlabel("lag k (steps back in time)")
    ax.set_ylabel("mean |dL_t / dh_(t-k)|, top layer")
    ax.set_title(title or "Gradient flow through time", fontsize=11)
    ax.grid(True, which="major", alpha=0.3)
    ax.plot([], [], "o", color="grey", mfc="white", label=f"falls below {VANISHED:g} x lag 0")
    ax.legend(fontsize=8, loc="best")
    _save(fig, check_output(path))


def _colors() -> list[str]:
    return ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf"]


def curves_figure(
    runs: list[RunCurves], path: str | Path, width: int = 1000, height: int = 800
) -> None:
    """Validation bits/char and train loss against the x of the runs, with learning rate and
    gradient norm in smaller panels below; runs overlaid, named in the legend."""
    _save(curves_plot(runs, width, height), check_output(path))


def curves_plot(runs: list[RunCurves], width: int, height: int) -> Any:
    """The figure of ``curves_figure``, not yet written."""
    from matplotlib.ticker import EngFormatter

    fig = _figure(width, height)
    axes = fig.subplots(
        len(PANELS), 1, sharex=True, height_ratios=[p[2] for p in PANELS], squeeze=True
    )
    colors = _colors()
    for ax, (key, label, _, log) in zip(axes, PANELS, strict=True):
        for i, run in enumerate(runs):
            s = run.series[key]
            style = "o-" if key == "val_bpc" else "-"
            ax.plot(s.x, s.y, style, color=colors[i % len(colors)], lw=1.3, ms=3, label=run.name)
        ax.set_ylabel(label, fontsize=9)
        ax.grid(True, alpha=0.3)
        if log:
            ax.set_yscale("log")
            _fitting_log_ticks(ax.yaxis)
    if runs and runs[0].x_field == "tokens_seen":
        axes[-1].xaxis.set_major_formatter(EngFormatter())  # 2M, not 2 x 1e6
    axes[0].legend(fontsize=9)
    axes[0].set_title("Training curves", fontsize=11)
    axes[-1].set_xlabel(X_LABELS.get(runs[0].x_field, runs[0].x_field) if runs else "")
    return fig


LABEL_PX = 24  # room one y tick label needs at DPI: a 10-pixel font and a gap


def _fitting_log_ticks(axis: Any) -> None:
    """Plain-number ticks (0.3, not 3 x 10^-1) on a log axis, as many as the panel's height
    has room for, chosen when it is drawn: fixed 1-2-5 ticks crowded a short panel over one
    decade and, matplotlib thinning them, left none over several."""
    from matplotlib.ticker import FuncFormatter, Locator, NullFormatter

    class FittingLogLocator(Locator):
        def __call__(self) -> list[float]:
            lo, hi = sorted(self.axis.get_view_interval())
            return log_ticks(lo, hi, self.axis.axes.bbox.height)

    axis.set_major_locator(FittingLogLocator())
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.3g}"))
    axis.set_minor_formatter(NullFormatter())


def log_ticks(lo: float, hi: float, height: float) -> list[float]:
    """Ticks in [lo, hi] on a log axis ``height`` pixels tall, each LABEL_PX from the next:
    the densest of 1-2-5, 1-3 and 1 per decade, then every 2nd, 3rd... decade; in a range
    too narrow for two of those, evenly spaced round numbers."""
    from matplotlib.ticker import MaxNLocator

    if not (0 < lo < hi and math.isfinite(hi)):
        return []
    per_decade = height / (math.log10(hi) - math.log10(lo))  # pixels

    def fits(ticks: list[float]) -> bool:
        logs = [math.log10(t) for t in ticks]
        return len(ticks) >= 2 and min(b - a for a, b in pairwise(logs)) * per_decade >= LABEL_PX

    first, last = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    sets = [((1, 2, 5), 1), ((1, 3), 1)] + [((1,), every) for every in range(1, last - first + 1)]
    for subs, every in sets:
        ticks = [m * 10.0**k for k in range(first, last + 1) if k % every == 0 for m in subs]
        ticks = [t for t in ticks if lo <= t <= hi]
        if fits(ticks):
            return ticks
    for bins in range(max(1, int(height // LABEL_PX)), 0, -1):
        even = MaxNLocator(bins, steps=[1, 2, 2.5, 5, 10]).tick_values(lo, hi)
        even = [t for t in even if lo <= t <= hi]
        if fits(even) or bins == 1:
            return even
    return []
