"""The recurrent cells charlm builds, one spec each: everything the rest of charlm asks of a cell.

A cell is one module under ``charlm.models.cells`` that defines its ``CellSpec``, registered by
one line of ``charlm/models/cells/__init__.py`` (as fairseq's ``register_model``, and as
``charlm.data.tokenizers`` keeps its tokenizers). The model, mixed precision, the NumPy fast
path and recording, gradient flow, ``charlm inspect``, the run's settings and the CLI's help
read the spec, never a cell's name; tests/models/test_cell_contract.py runs every registered
cell through the same checks.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from charlm.config.options import flag
from charlm.config.schema import ModelConfig, RunConfig, TrainConfig
from charlm.errors import ConfigError

# (model, window (B, T), target (B,), carried state) -> {(state, layer): (B, T, H) gradients}
FlowGradients = Callable[..., dict[tuple[str, int], torch.Tensor]]


@dataclass(frozen=True)
class NumpyLayers:
    """A cell's step in plain NumPy, one layer at a time, for the fast path and for recording
    (``charlm.generation.numpy_cells`` runs the stack, tabulates layer 0, owns the buffers).

    ``prepare(rnn, layer)``: the layer's weights as float64 arrays: one matrix (I + H, G) over
    [input | hidden], the bias (G,) added after the product, and whatever else ``step`` reads.
    ``step(g, h, c, t, extra)``: the pre-activations g (B, G) -> the new state, in place: h
    (B, H) written, c (B, H) updated (None for a cell without one), t (B, H) scratch. The gate
    activations are left in g's first blocks of H columns, in the order of ``CellSpec.gates``.
    """

    prepare: Callable[[nn.Module, int], tuple[np.ndarray, np.ndarray, Any]]
    step: Callable[[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray, Any], None]


class NumpyNetwork(Protocol):
    """The NumPy step of a cell that steps through the decoder: the whole network's step."""

    h: np.ndarray  # (L, B, H): every layer's h after the last step

    def start(self, state: list[np.ndarray]) -> None:
        """Begin from the carried state: ``init_hidden``'s arrays, one row per stream."""
        ...

    def step(self, ids: np.ndarray) -> np.ndarray:
        """Feed one token per stream (B,); return logits (B, V), a buffer the next call reuses."""
        ...


def _no_check(model: ModelConfig, train: TrainConfig | None) -> None:
    return None


def _no_init(embed: nn.Embedding, rnn: nn.Module, cfg: ModelConfig, loading: bool) -> None:
    return None


@dataclass(frozen=True)
class CellSpec:
    """One recurrent cell: how it is built, what state it carries, what it computes."""

    name: str  # --model NAME; saved in every run's config, so never renamed
    title: str  # the cell in prose: "Elman RNN"
    help: str  # one line, for --model's help
    equations: str  # markdown: one step of one layer, for the docs page of the cells
    # The stack from a ModelConfig: shaped like nn.LSTM(batch_first=True), (x, state) ->
    # (out, state); or, with ``needs_decoder``, (x, state, decoder) -> (out, logits, state).
    build: Callable[[ModelConfig], nn.Module]
    needs_decoder: bool = False
    states: tuple[str, ...] = ("h",)  # per-layer (L, B, H) states, carried and recorded
    # The carried state's shapes for (cfg, batch) when they are not one (L, B, H) per name
    # in ``states`` (a Jordan network carries its context).
    carried: Callable[[ModelConfig, int], list[tuple[int, ...]]] | None = None
    gates: tuple[str, ...] = ()  # gate activations recorded, in the NumPy step's column order
    sigmoid_gates: tuple[str, ...] = ()  # those in (0, 1): saturation, colour scales
    # torch trains it as one fused op, which bf16 speeds up on a CPU (--amp auto's rule)
    fused: bool = False
    # A plain tanh recurrence: the top layer's W_hh's spectral radius says whether its
    # gradients explode (inspect gradients reports it).
    spectral: bool = False
    numpy_layers: NumpyLayers | None = None
    numpy_network: Callable[[nn.Module], NumpyNetwork] | None = None  # with needs_decoder
    # Gradient flow steps the model layer by layer through cells like nn.LSTMCell
    # (input_size, hidden_size), their weights named as the stack's without "_l{k}"; a cell
    # stepped through the decoder measures its own (``FlowGradients``).
    flow_cell: Callable[[int, int], nn.Module] | None = None
    flow_gradients: FlowGradients | None = None
    # ModelConfig fields only some cells take -> the message refusing one given to another
    # cell, with {flag}, {model} (the cell given it) and {takers} (the cells taking it).
    options: Mapping[str, str] = field(default_factory=dict)
    untie: str = ""  # why the cell never shares its embedding with the decoder; "" if it may
    no_onnx: str = ""  # why `charlm export` cannot write the cell as ONNX; "" if it can
    check: Callable[[ModelConfig, TrainConfig | None], None] = _no_check  # its own rules
    init: Callable[[nn.Embedding, nn.Module, ModelConfig, bool], None] = _no_init  # loading?

    @property
    def recorded(self) -> tuple[str, ...]:
        """The arrays a recording keeps, each (T, L, H): the states, then the gates."""
        return (*self.states, *self.gates)

    def state_shapes(self, cfg: ModelConfig, batch: int) -> list[tuple[int, ...]]:
        if self.carried is not None:
            return self.carried(cfg, batch)
        return [(cfg.num_layers, batch, cfg.hidden_size)] * len(self.states)


_CELLS: dict[str, CellSpec] = {}


def register(spec: CellSpec) -> CellSpec:
    _builtins()
    if spec.name in _CELLS:
        raise ValueError(f"a cell named '{spec.name}' is registered already")
    _CELLS[spec.name] = spec
    return spec


def unregister(name: str) -> None:
    """Forget a cell (a test's own, once the test is done)."""
    _CELLS.pop(name, None)


def names() -> tuple[str, ...]:
    """The registered cells, in the order they were registered."""
    _builtins()
    return tuple(_CELLS)


def get(name: str) -> CellSpec:
    _builtins()
    if name not in _CELLS:
        raise ConfigError(f"unknown --model '{name}': choose one of {', '.join(_CELLS)}")
    return _CELLS[name]


def _builtins() -> None:
    # Imported on first use: the cell modules import this one for CellSpec.
    from charlm.models import cells  # noqa: F401


def model_help() -> str:
    """--model's help: every cell, with its one line."""
    parts = [f"{s.name} ({s.help})" if s.help else s.name for s in map(get, names())]
    return f"{', '.join(parts[:-1])} or {parts[-1]}." if len(parts) > 1 else f"{parts[0]}."


def cell_options() -> dict[str, str]:
    """Every ModelConfig field that only some cells take -> its refusal message."""
    found: dict[str, str] = {}
    for name in names():
        for option, refusal in get(name).options.items():
            found.setdefault(option, refusal)
    return found


def takers(option: str) -> tuple[str, ...]:
    """The cells that take ``option``, a field of ``cell_options``."""
    return tuple(n for n in names() if option in get(n).options)


def check(model: ModelConfig, train: TrainConfig | None = None) -> CellSpec:
    """The spec of ``model``'s cell, once the config suits it (and ``train`` does, if given).

    A cell option set for a cell that does not take it is refused; the default is no choice.
    """
    spec = get(model.model)
    for option, refusal in cell_options().items():
        if option not in spec.options and getattr(model, option) != _default(option):
            f, cells = flag(option), " or ".join(takers(option))
            raise ConfigError(refusal.format(flag=f, model=model.model, takers=cells))
    # A cell stepping through the decoder hands out its top states after its own dropout: a
    # state penalty there would measure the dropout masks, so the two do not combine.
    if spec.needs_decoder and train is not None and model.dropout and train.state_penalty:
        raise ConfigError(
            f"--state-penalty with --model {spec.name} needs --dropout 0 (the {spec.title}'s "
            "states come out of its loop after dropout): drop one of them"
        )
    spec.check(model, train)
    return spec


def _default(option: str) -> Any:
    return next(f.default for f in dataclasses.fields(ModelConfig) if f.name == option)


def fit(config: RunConfig, given: Mapping[str, Any] | None = None) -> tuple[RunConfig, list[str]]:
    """A run's config fitted to its cell and checked, with notes for the user.

    A cell that cannot tie its weights unties a preset's tied ones, saying so; ``given`` (the
    options the user typed) tells a preset's tie from an explicit --tie-weights, refused.
    """
    spec = get(config.model.model)
    notes = []
    if spec.untie and config.model.tie_weights and "tie_weights" not in (given or {}):
        config = dataclasses.replace(
            config, model=dataclasses.replace(config.model, tie_weights=False)
        )
        notes.append(f"--model {spec.name} {spec.untie}: the preset's tied weights are untied")
    check(config.model, config.train)
    return config, notes


def for_cell(cfg: ModelConfig, name: str) -> ModelConfig:
    """``cfg`` as a model of another cell: the options that cell does not take go back to their
    defaults, and the tie goes if it cannot tie."""
    spec = get(name)
    reset = {o: _default(o) for o in cell_options() if o not in spec.options}
    tie = cfg.tie_weights and not spec.untie
    return dataclasses.replace(cfg, model=name, tie_weights=tie, **reset)


def stack_args(cfg: ModelConfig) -> dict[str, Any]:
    """What nn.LSTM, nn.GRU, nn.RNN and the stacks shaped like them take from a config."""
    return {
        "input_size": cfg.embed_size,
        "hidden_size": cfg.hidden_size,
        "num_layers": cfg.num_layers,
        "dropout": cfg.dropout if cfg.num_layers > 1 else 0.0,  # between layers: none with one
        "batch_first": True,
    }


def layer_arrays(rnn: nn.Module, layer: int) -> tuple[np.ndarray, ...]:
    """A layer's (W_ih, W_hh, b_ih, b_hh) as float64 arrays, for a NumPy step's ``prepare``."""
    names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    return tuple(getattr(rnn, f"{n}_l{layer}").detach().double().cpu().numpy() for n in names)


def stacked_arrays(rnn: nn.Module, layer: int) -> tuple[np.ndarray, np.ndarray]:
    """[W_ih; W_hh]^T (I + H, G) and b_ih + b_hh: a layer as one product over [input | hidden]."""
    w_ih, w_hh, b_ih, b_hh = layer_arrays(rnn, layer)
    return np.concatenate([w_ih.T, w_hh.T]), b_ih + b_hh


def equations_page() -> str:
    """The cells as a markdown page: each cell's title, name and equations."""
    return "\n\n".join(
        f"## {s.title} (`--model {s.name}`)\n\n{s.equations.strip()}" for s in map(get, names())
    )
