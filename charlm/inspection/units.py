"""Naming the units of a recording: ``L0:h:12`` is layer 0, hidden state, unit 12.

KIND is ``h``, ``c`` (LSTM cell) or a gate name (``input``, ``forget``, ``output``,
``candidate`` for an LSTM; ``reset``, ``update``, ``candidate`` for a GRU; ``pre`` for the
Elman RNN's pre-activation).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from charlm.config.schema import ModelConfig
from charlm.errors import ConfigError
from charlm.inspection.recording import Recording, state_names
from charlm.models import registry


@dataclass(frozen=True)
class Unit:
    name: str  # h, c or a gate name
    layer: int
    index: int

    def __str__(self) -> str:
        return f"L{self.layer}:{self.name}:{self.index}"

    @property
    def kind(self) -> str:
        """h, c or gate: how the page groups units."""
        return self.name if self.name in ("h", "c") else "gate"


@dataclass(frozen=True)
class Space:
    """The units a model has: checked against its config before minutes of recording."""

    names: tuple[str, ...]  # h, c, gate names
    layers: int
    hidden: int

    @classmethod
    def of_model(cls, cfg: ModelConfig) -> Space:
        return cls(state_names(cfg.model), cfg.num_layers, cfg.hidden_size)

    @classmethod
    def of_recording(cls, rec: Recording) -> Space:
        return cls(rec.names, rec.layers, rec.hidden)

    def describe(self) -> str:
        kinds = ", ".join(self.names)
        return f"layers 0-{self.layers - 1}, kinds {kinds}, units 0-{self.hidden - 1}"


def parse_unit(spec: str, space: Space) -> Unit:
    """``L:KIND:INDEX`` (``L0:h:12`` or ``0:h:12``) -> a unit that exists in ``space``."""
    try:
        layer_s, name, index_s = spec.split(":")
        layer, index = int(layer_s.removeprefix("L")), int(index_s)
    except ValueError:
        raise ConfigError(
            f"--unit '{spec}' is not LAYER:KIND:INDEX, e.g. 0:h:12 ({space.describe()})"
        ) from None
    inside = 0 <= layer < space.layers and 0 <= index < space.hidden
    if name not in space.names or not inside:
        raise ConfigError(f"--unit '{spec}' does not exist in this model: {space.describe()}")
    return Unit(name, layer, index)


def all_units(rec: Recording) -> list[Unit]:
    return [
        Unit(name, layer, i)
        for name in rec.names
        for layer in range(rec.layers)
        for i in range(rec.hidden)
    ]


def values(rec: Recording, unit: Unit) -> np.ndarray:
    return rec.states[unit.name][:, unit.layer, unit.index]


def value_range(rec: Recording, unit: Unit, relu: bool = False) -> tuple[float, float]:
    """The scale a view colours the unit on: fixed by the activation where it is bounded."""
    if unit.name in registry.get(rec.kind).sigmoid_gates:
        return 0.0, 1.0
    if unit.name == "candidate" or (unit.name == "h" and not relu):  # tanh
        return -1.0, 1.0
    v = values(rec, unit)
    if unit.name == "h":  # a ReLU RNN
        return 0.0, max(float(v.max()), 1e-6)
    # c and the RNN pre-activation are unbounded: scale to the 99th percentile of |v| so a
    # few extreme steps do not wash every other step out to white.
    m = max(float(np.percentile(np.abs(v), 99)), 1e-6)
    return -m, m


def is_sequential(rec: Recording, unit: Unit) -> bool:
    """Gates in [0, 1] take a sequential colour scale; everything else a diverging one."""
    return unit.name in registry.get(rec.kind).sigmoid_gates
