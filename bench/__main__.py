"""`python -m bench [--quick] [--long] [--only NAME ...]`: run the suite, write the results.

Each section is a module exposing ``run(quick: bool = False) -> dict``; a section may
return ``{"skipped": reason}`` (the quality section does without its corpus). Progress
goes to stderr; the Markdown table goes to stdout and to bench/results/latest.md, each
section's figures to bench/results/NAME.json.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import traceback
from typing import Any

from bench import report

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
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="short runs: the suite in under 5 minutes")
    p.add_argument("--long", action="store_true", help="also the 30-minute medium-preset run")
    p.add_argument("--only", nargs="+", choices=SECTIONS, metavar="NAME", help="run these only")
    return p.parse_args(argv)


def run_section(name: str, quick: bool, long: bool) -> dict[str, Any]:
    module = importlib.import_module(f"bench.{name}")
    kwargs: dict[str, Any] = {"long": long} if name == "quality" else {}
    try:
        return module.run(quick=quick, **kwargs)
    except Exception as e:  # one broken section must not lose the others' figures
        traceback.print_exc()
        return {"error": f"{type(e).__name__}: {e}"}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    host = report.machine()
    sections: dict[str, dict[str, Any]] = {}
    for name in args.only or SECTIONS:
        print(f"bench: {name}...", file=sys.stderr, flush=True)
        t0 = time.monotonic()
        result = run_section(name, args.quick, args.long)
        result["seconds"] = round(time.monotonic() - t0, 1)
        result["machine"] = report.machine()
        report.save(name, result | {"quick": args.quick})
        sections[name] = result
        print(f"bench: {name} done in {result['seconds']} s", file=sys.stderr, flush=True)
    text = report.markdown(sections, host, args.quick)
    (report.RESULTS / "latest.md").write_text(text)
    sys.stdout.write(text)
    return 1 if any("error" in r for r in sections.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
