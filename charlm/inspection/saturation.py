"""How often gates saturate: the fraction of steps each unit spends near 0 or near 1.

Karpathy, Johnson and Fei-Fei (2015, section 4.2) plot, per gate unit, the fraction of
steps it is left-saturated (< 0.1) against right-saturated (> 0.9): forget gates that sit
near 1 are cells that remember for a long time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from charlm.models import registry

LEFT, RIGHT = 0.1, 0.9


@dataclass
class GateSaturation:
    """One gate of one layer: per unit, the fraction of steps below LEFT and above RIGHT."""

    layer: int
    gate: str
    left: np.ndarray  # (H,)
    right: np.ndarray  # (H,)

    def mostly(self, side: np.ndarray) -> int:
        """Units saturated on that side for more than half the steps."""
        return int(np.count_nonzero(side > 0.5))

    def never(self) -> int:
        """Units saturated on neither side more than 10% of the time."""
        return int(np.count_nonzero((self.left <= 0.1) & (self.right <= 0.1)))

    def to_dict(self) -> dict[str, Any]:
        return {
            "layer": self.layer,
            "gate": self.gate,
            "mean_left": float(self.left.mean()),
            "mean_right": float(self.right.mean()),
            "units_mostly_left": self.mostly(self.left),
            "units_mostly_right": self.mostly(self.right),
            "units_rarely_saturated": self.never(),
            "left": [round(float(v), 4) for v in self.left],
            "right": [round(float(v), 4) for v in self.right],
        }


def saturation(kind: str, states: dict[str, np.ndarray]) -> list[GateSaturation]:
    """Per layer and sigmoid gate of ``states`` (name -> (T, L, H)): the saturation fractions.

    Only the sigmoid gates (``CellSpec.sigmoid_gates``): their values are in [0, 1], so
    saturation has a meaning."""
    out = []
    for gate in registry.get(kind).sigmoid_gates:
        a = states[gate]
        for layer in range(a.shape[1]):
            g = a[:, layer]
            out.append(GateSaturation(layer, gate, (g < LEFT).mean(0), (g > RIGHT).mean(0)))
    out.sort(key=lambda s: s.layer)
    return out
