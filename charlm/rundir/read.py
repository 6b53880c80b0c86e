"""Reading a run's metrics.jsonl into series to plot: a run still training can be read."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from charlm.errors import InputError
from charlm.rundir.lock import is_held
from charlm.rundir.log import METRICS
from charlm.text.reading import MAX_READ_BYTES

X_FIELDS = {"tokens": "tokens_seen", "time": "elapsed"}  # --x choice -> metrics field
# Panel series, from the rows that carry them: train loss from the step rows (an evaluation
# row repeats the running mean), the others wherever they appear.
SERIES = ("val_bpc", "train_loss", "lr", "grad_norm")
# A metrics row is a JSON object with a number in at least one of these.
ROW_FIELDS = ("step", *X_FIELDS.values(), *SERIES)
GIVE_A_RUN = "give a run directory made by 'charlm train' (or its metrics.jsonl)"


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
    skipped: int = 0  # lines that were not metrics rows, a last line being written included
    unreadable: list[int] = field(default_factory=list)  # their numbers, that last line left out


def metrics_path(run: str | Path) -> Path:
    p = Path(run)
    path = p / METRICS if p.is_dir() else p
    if not path.is_file():
        raise MetricsError(f"{run}: no {METRICS} there; {GIVE_A_RUN}")
    if path.stat().st_size > MAX_READ_BYTES:
        raise MetricsError(f"{path} is too large to be a run's {METRICS}; {GIVE_A_RUN}")
    return path


def run_name(run: str | Path) -> str:
    p = Path(run).resolve()
    return p.parent.name if p.name == METRICS else p.name


def read_curves(run: str | Path, x: str = "tokens") -> RunCurves:
    """The run's series. Lines that are not metrics rows are skipped and numbered in
    ``unreadable``, except a half-written last line (the run may be writing it). A file
    holding no row at all is refused: it is not a run, unless a live training is about to
    write its first row."""
    if x not in X_FIELDS:
        raise MetricsError(f"unknown --x '{x}': choose one of {', '.join(X_FIELDS)}")
    path = metrics_path(run)
    *lines, tail = path.read_bytes().split(b"\n")  # bytes: a torn write is no decoding error
    series = {name: Series() for name in SERIES}
    rows, unreadable = 0, []
    for number, line in enumerate([*lines, tail], start=1):
        row = _parse(line)
        if row is not None:
            rows += 1
            _add(series, row, X_FIELDS[x])
        elif line.strip() and number <= len(lines):
            unreadable.append(number)
    partial = bool(tail.strip()) and _parse(tail) is None
    if rows == 0 and (unreadable or partial or not is_training(run)):
        raise _not_a_run(path, unreadable + ([len(lines) + 1] if partial else []))
    return RunCurves(run_name(run), X_FIELDS[x], series, len(unreadable) + partial, unreadable)


def _not_a_run(path: Path, unreadable: list[int]) -> MetricsError:
    if not unreadable:
        return MetricsError(f"{path} holds no rows: {GIVE_A_RUN} that has trained a few steps")
    return MetricsError(
        f"{path}: none of its {len(unreadable)} line(s) is a metrics row (unreadable: "
        f"{describe_lines(unreadable)}); {GIVE_A_RUN}"
    )


def describe_lines(numbers: list[int], limit: int = 5) -> str:
    """Line numbers for a message: 'line 3', 'lines 1, 2, 3, 4, 5 and 35 more'."""
    shown = ", ".join(map(str, numbers[:limit]))
    more = f" and {len(numbers) - limit} more" if len(numbers) > limit else ""
    return f"line{'s' if len(numbers) > 1 else ''} {shown}{more}"


def _parse(line: bytes) -> dict | None:
    """The metrics row on ``line``; None for anything else."""
    try:
        row = json.loads(line)
    except ValueError:  # not JSON, or not UTF-8
        return None
    if not isinstance(row, dict):
        return None
    numbers = (row.get(k) for k in ROW_FIELDS)
    return (
        row
        if any(isinstance(v, int | float) and not isinstance(v, bool) for v in numbers)
        else None
    )


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
    return is_held(run_dir)
