"""`charlm plot`'s figure at its default size: every panel labelled, no tick labels overlapping,
whatever the range of the values (the gradient-norm panel's labels overlapped on one run
and vanished on another)."""

from __future__ import annotations

import itertools
import math

import pytest

from charlm.inspection.figures import curves_plot
from charlm.rundir.read import SERIES, RunCurves, Series

RANGES = {  # gradient norm, learning rate: (first, last)
    "decades": ((200.0, 0.01), (1e-3, 1e-3)),
    "one-decade": ((8.0, 0.3), (2e-3, 1e-5)),
    "narrow": ((1.3, 0.9), (3e-4, 2.5e-4)),
    "tiny": ((3e-4, 1e-4), (1.0, 0.0)),
    "spike": ((0.2, 0.15), (0.01, 0.0)),
}


def _curves(grad: tuple[float, float], lr: tuple[float, float]) -> RunCurves:
    xs = [1000.0 * k for k in range(1, 401)]
    t = [k / 399 for k in range(400)]
    ends = {
        "val_bpc": (5.0, 3.0),
        "train_loss": (4.0, 2.0),
        "lr": lr,
    }
    series = {k: Series(xs, [a + (b - a) * u for u in t]) for k, (a, b) in ends.items()}
    g = [math.exp(math.log(grad[0]) + (math.log(grad[1]) - math.log(grad[0])) * u) for u in t]
    if grad == RANGES["spike"][0]:
        g[40] = 40.0  # one exploding step among quiet ones
    series["grad_norm"] = Series(xs, g)
    assert set(series) == set(SERIES)
    return RunCurves("run", "tokens_seen", series)


def _labels(axis, renderer) -> list:  # type: ignore[no-untyped-def]
    lo, hi = sorted(axis.get_view_interval())
    return [
        t.get_window_extent(renderer)
        for tick in axis.get_major_ticks()
        if (t := tick.label1).get_visible() and t.get_text() and lo <= tick.get_loc() <= hi
    ]


@pytest.mark.parametrize("case", list(RANGES))
def test_every_panel_has_labels_that_do_not_overlap(case: str) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = curves_plot([_curves(*RANGES[case])], 1000, 800)  # charlm plot's default size
    FigureCanvasAgg(fig).draw()
    renderer = fig.canvas.get_renderer()
    axes = fig.get_axes()
    for ax in axes:
        boxes = sorted(_labels(ax.yaxis, renderer), key=lambda b: b.y0)
        assert len(boxes) >= 2, f"{ax.get_ylabel()}: {len(boxes)} tick label(s)"
        for below, above in itertools.pairwise(boxes):
            gap = 0.3 * below.height  # apart enough to read, not only not overlapping
            assert above.y0 >= below.y1 + gap, f"{ax.get_ylabel()}: tick labels crowd"
    xs = sorted(_labels(axes[-1].xaxis, renderer), key=lambda b: b.x0)
    assert all(b.x0 >= a.x1 + 1 for a, b in itertools.pairwise(xs))
