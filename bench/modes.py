"""How big a section's run is: the full suite, ``--quick``, or the test suite's smoke run.

A section's ``run(quick=False, smoke=False)`` looks its sizes up by ``mode(quick, smoke)``,
e.g. ``steps = {"full": 20, "quick": 10, "smoke": 1}[mode(quick, smoke)]``, so the three
sizes of one figure sit side by side.
"""

from __future__ import annotations

from typing import Literal

Mode = Literal["full", "quick", "smoke"]


def mode(quick: bool, smoke: bool) -> Mode:
    """The run's mode; smoke wins over quick (the smallest run that still takes every path)."""
    return "smoke" if smoke else "quick" if quick else "full"
