"""Reading a run's metrics.jsonl into series to plot: a run still training can be read."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from charlm.rundir.lock import LOCK_NAME, is_stale, read_owner
from charlm.rundir.log import METRICS
from charlm.text.reading import InputError

X_FIELDS = {"tokens": "tokens_seen", "time": "elapsed"}  # --x choice -> metrics field
# Panel series, from the rows that carry them: train loss from the step rows (an evaluation
# row repeats the running mean), the others wherever they appear.
SERIES = ("val_bpc", "train_loss", "lr", "grad_norm")


class MetricsError(InputError):
    """A run whose metrics cannot be plotted; the message says what to do."""


@dataclass
class Series:
    x: list[float] = field(default_factory=list)
    y: list[float] = field(default_factory=list)


@dataclass
class RunCurves:
    """One run's curves against the chosen x (tokens seen or seconds of training)."""

    name: str
    x_field: str
    series: dict[str, Series]
    skipped: int = 0  # lines that were not whole JSON rows (a line being written)


def metrics_path(run: str | Path) -> Path:
    p = Path(run)
    path = p / METRICS if p.is_dir() else p
    if not path.is_file():
        raise MetricsError(
            f"{run}: no {METRICS} there; give a run directory made by 'charlm train' "
            "(or its metrics.jsonl)"
        )
    return path


def run_name(run: str | Path) -> str:
    p = Path(run).resolve()
    return p.parent.name if p.name == METRICS else p.name


def read_curves(run: str | Path, x: str = "tokens") -> RunCurves:
    """The run's series; a half-written last line (the run is writing it) is skipped."""
    if x not in X_FIELDS:
        raise MetricsError(f"unknown --x '{x}': choose one of {', '.join(X_FIELDS)}")
    path = metrics_path(run)
    x_field = X_FIELDS[x]
    series = {name: Series() for name in SERIES}
    skipped = 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        row = _parse(line)
        if row is None:
            skipped += bool(line.strip())
            continue
        _add(series, row, x_field)
    return RunCurves(run_name(run), x_field, series, skipped)


def _parse(line: str) -> dict | None:
    try:
        row = json.loads(line)
    except ValueError:
        return None
    return row if isinstance(row, dict) else None


def _add(series: dict[str, Series], row: dict, x_field: str) -> None:
    x = row.get(x_field)
    if not isinstance(x, int | float):
        return
    is_eval = "val_bpc" in row
    for name in SERIES:
        y = row.get(name)
        if not isinstance(y, int | float) or (name == "train_loss" and is_eval):
            continue
        series[name].x.append(float(x))
        series[name].y.append(float(y))


def is_training(run: str | Path) -> bool:
    """True while a live training holds the run directory's lock."""
    p = Path(run)
    run_dir = p if p.is_dir() else p.parent
    holder = read_owner(run_dir / LOCK_NAME)
    return holder is not None and not is_stale(holder)
