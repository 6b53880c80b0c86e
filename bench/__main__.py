"""`python -m bench [--quick | --smoke] [--long] [--only NAME ...]`: run the suite.

Each section is a module named in SECTIONS exposing ``run(quick=False, smoke=False) -> dict``
(the convention: bench/__init__.py). Progress goes to stderr; the Markdown table goes to
stdout and to bench/results/latest.md, each section's figures to bench/results/NAME.json.
--smoke runs every section at its smallest, as the test suite does, and writes no file.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
import traceback
from typing import Any

from bench import report
from charlm.rundir.atomic import write_atomic

SECTIONS = (
    "training",
    "threads",
    "distributed",
    "generation",
    "memory",
    "quality",
    "ngram",
    "music",
    "words",
    "inspect",
    "coldstart",
    "cells",
    "rtrl",
    "reber",
    "restore",
    "serve",
    "completion",
)
# What --quick promises, from each section's CPU seconds (docs/records/suite.md, "--quick"):
# 505 s measured with every section on 2026-12-04; under 5 minutes did not hold once every
# section ran, even after cutting the quick sizes.
QUICK_HELP = "short runs: the suite in about 9 minutes on a quiet 2-core host"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    size = p.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help=QUICK_HELP)
    size.add_argument("--smoke", action="store_true", help="each section's smallest run: no files")
    p.add_argument("--long", action="store_true", help="also the 30-minute medium-preset run")
    p.add_argument("--only", nargs="+", choices=SECTIONS, metavar="NAME", help="run these only")
    return p.parse_args(argv)


def run_section(name: str, quick: bool, long: bool = False, smoke: bool = False) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"long": long} if name == "quality" else {}
    try:
        module = importlib.import_module(f"bench.{name}")
        return module.run(quick=quick, smoke=smoke, **kwargs)
    except Exception as e:  # one broken section must not lose the others' figures
        traceback.print_exc()
        return {"error": f"{type(e).__name__}: {e}"}


def cpu_seconds() -> float:
    """CPU time of this process and its finished children: on a shared host the wall time
    also counts other people's work, so a section's cost is judged by both."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    host = report.machine()
    sections: dict[str, dict[str, Any]] = {}
    for name in args.only or SECTIONS:
        print(f"bench: {name}...", file=sys.stderr, flush=True)
        t0, cpu0 = time.monotonic(), cpu_seconds()
        result = run_section(name, args.quick, args.long, args.smoke)
        result["seconds"] = round(time.monotonic() - t0, 1)
        result["cpu_seconds"] = round(cpu_seconds() - cpu0, 1)
        result["machine"] = report.machine()
        if not args.smoke:  # a smoke run's figures measure nothing worth keeping
            report.save(name, result | {"quick": args.quick})
        sections[name] = result
        print(f"bench: {name} done in {result['seconds']} s ({result['cpu_seconds']} s of CPU)",
              file=sys.stderr, flush=True)  # fmt: skip
    text = report.markdown(sections, host, args.quick, args.smoke)
    if not args.smoke:
        write_atomic(report.RESULTS / "latest.md", text.encode())
    sys.stdout.write(text)
    return 1 if any("error" in r for r in sections.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
