"""Training curves as a text plot for the terminal (plotext): built as a string, not printed."""

from __future__ import annotations

from charlm.inspection.figures import PANELS, X_LABELS
from charlm.rundir.read import RunCurves

GRID = ((1, 1), (1, 2), (2, 1), (2, 2))  # the four panels, two by two


def curves_text(runs: list[RunCurves], width: int, height: int, color: bool = True) -> str:
    """The four panels of the training-curves figure as text, ``width`` x ``height`` cells."""
    import plotext as plt  # plotext keeps one global figure: clear it every time

    plt.clf()
    plt.limitsize(False, False)
    plt.plotsize(width, height)
    plt.subplots(2, 2)
    x_label = X_LABELS.get(runs[0].x_field, runs[0].x_field) if runs else ""
    for (row, col), (key, label, _, log) in zip(GRID, PANELS, strict=True):
        plt.subplot(row, col)
        plt.title(label)
        plt.xlabel(x_label)
        for run in runs:
            s = run.series[key]
            if s.x:
                plt.plot(s.x, s.y, label=run.name if (row, col) == (1, 1) else None)
        if log and any(v > 0 for run in runs for v in run.series[key].y):
            plt.yscale("log")
        if not color:
            plt.theme("clear")
    text = plt.build()
    return text if color else plt.uncolorize(text)
