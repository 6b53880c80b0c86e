"""Results: one JSON file per section in bench/results/, and a Markdown table of them all."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import torch

from charlm.rundir.atomic import write_atomic

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict[str, Any]:
    """What the figures were measured on, including how busy the host was."""
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def save(name: str, result: dict[str, Any], directory: Path = RESULTS) -> Path:
    path = directory / f"{name}.json"
    write_atomic(path, (json.dumps(result, indent=2) + "\n").encode())
    return path


def markdown(
    sections: dict[str, dict[str, Any]], host: dict[str, Any], quick: bool, smoke: bool = False
) -> str:
    """Every section as a heading, its scalar figures as a line and its rows as a table."""
    mode = " (--smoke)" if smoke else " (--quick)" if quick else ""
    lines = [
        f"## Benchmarks{mode}",
        "",
        f"Measured {host['date']} on {host['cpu']}, {host['cores']} cores, torch {host['torch']}, "
        f"load average {host['load_average_1min']} at the start.",
    ]
    for name, result in sections.items():
        lines += ["", f"### {name}", ""]
        scalars = {k: v for k, v in result.items() if _is_scalar(v)}
        if scalars:
            lines += ["; ".join(f"{k}: {v}" for k, v in scalars.items()), ""]
        for key, value in result.items():
            if isinstance(value, dict) and all(_is_scalar(v) for v in value.values()):
                lines += [f"{key}: " + ", ".join(f"{k} {v}" for k, v in value.items()), ""]
            elif _is_table(value):
                lines += [*table(value), ""]
    return "\n".join(lines).rstrip() + "\n"


def table(rows: list[dict[str, Any]]) -> list[str]:
    columns = [k for k in dict.fromkeys(k for r in rows for k in r) if _scalar_column(rows, k)]
    out = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for r in rows:
        out.append("| " + " | ".join(_cell(r.get(c, "")) for c in columns) + " |")
    return out


def _is_scalar(v: Any) -> bool:
    return isinstance(v, str | int | float | bool) or v is None


def _is_table(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(r, dict) for r in v)


def _scalar_column(rows: list[dict[str, Any]], key: str) -> bool:
    return all(_is_scalar(r.get(key)) for r in rows)


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.3f}" if abs(v) < 100 else f"{v:,.0f}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return str(v).replace("|", "\\|")
