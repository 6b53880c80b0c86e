"""A trained model as an ONNX graph of one step: token ids and state in, scores and state out.

Any ONNX runtime can then prime and sample: the vocabulary, the state's names and shapes, the
start context and the run's settings are in the file's metadata (``charlm.*`` keys, JSON
values). The graph's inputs are ``ids`` (B,) int64 and the carried state, one tensor per
name in ``charlm.states`` (a batch dimension second); its outputs ``scores`` (B, V), the
next-token log-probabilities, and the new state, named ``<name>_out``.

torch's TorchScript exporter is tried first (fast; it writes nn.LSTM, nn.GRU and nn.RNN as
ONNX's own recurrent ops), then its dynamo exporter; each result is run with onnxruntime
against the model before it is accepted, so a graph that does not compute the model is never
written.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from charlm.config.schema import RunConfig
from charlm.data.tokenizers import Tokenizer
from charlm.errors import CharlmError
from charlm.generation.generate import start_context
from charlm.models import registry
from charlm.models.lm import RNNLM, hidden_from_tensors, hidden_tensors
from charlm.rundir.atomic import write_atomic

FORMAT = 1  # charlm.format: bump when the graph's inputs or metadata change meaning
OPSET = 18
TOLERANCE = 1e-5  # the largest difference from torch's log-probabilities accepted


class ExportError(CharlmError):
    """The model could not be written as an ONNX graph that computes it."""


@dataclass(frozen=True)
class StateSpec:
    name: str
    shape: tuple[int, ...]  # with the batch (dimension 1) as 1


class _Step(nn.Module):
    """The model's public forward over one token per stream, its state as flat tensors."""

    def __init__(self, model: RNNLM) -> None:
        super().__init__()
        self.model = model

    def forward(self, ids: torch.Tensor, *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model(ids[:, None], hidden_from_tensors(list(state)))
        return (out.log_probs[:, -1], *hidden_tensors(out.hidden))


def state_specs(model: RNNLM) -> list[StateSpec]:
    """The carried state's tensors, named as the cell names them (``state0``... otherwise)."""
    shapes = model.spec.state_shapes(model.cfg, 1)
    names = model.spec.states if len(model.spec.states) == len(shapes) else ()
    return [StateSpec(names[i] if names else f"state{i}", tuple(s)) for i, s in enumerate(shapes)]


def unexportable() -> str:
    """The cells that cannot be exported, and why (each cell's spec says), as one line."""
    return "; ".join(f"{name}: {why}" for name, why in unexportable_cells().items())


def unexportable_cells() -> dict[str, str]:
    """Cell name -> why the exporters cannot express it (every other cell is exported)."""
    return {n: registry.get(n).no_onnx for n in registry.names() if registry.get(n).no_onnx}


def export_onnx(
    model: RNNLM, tokenizer: Tokenizer, config: RunConfig, path: Path
) -> dict[str, Any]:
    """Write ``model`` to ``path`` as one ONNX step, checked against the model; its metadata."""
    if model.spec.no_onnx:
        raise ExportError(
            f"--model {model.cfg.model} cannot be exported to ONNX: {model.spec.no_onnx}"
        )
    model = model.eval().cpu()
    specs = state_specs(model)
    proto = _exported(model, specs)
    meta = metadata(model, tokenizer, config, specs)
    for key, value in meta.items():
        proto.metadata_props.add(key=key, value=value)
    write_atomic(path, proto.SerializeToString())
    return meta


def metadata(
    model: RNNLM, tokenizer: Tokenizer, config: RunConfig, specs: list[StateSpec]
) -> dict[str, str]:
    vocab = [tokenizer.decode([i]) for i in range(tokenizer.vocab_size)]
    states = [{"name": s.name, "shape": list(s.shape), "batch_dim": 1} for s in specs]
    unk = getattr(tokenizer, "unk_id", None)
    return {
        "charlm.format": str(FORMAT),
        "charlm.kind": json.dumps(tokenizer.kind),
        "charlm.vocab": json.dumps(vocab, ensure_ascii=False),
        "charlm.states": json.dumps(states),
        "charlm.start": json.dumps(start_context(tokenizer)),
        "charlm.unk": json.dumps(unk if tokenizer.kind == "word" else None),
        "charlm.tokenizer": json.dumps(tokenizer.to_dict(), ensure_ascii=False),
        "charlm.config": json.dumps(config.to_dict(), ensure_ascii=False),
    }


def _exported(model: RNNLM, specs: list[StateSpec]) -> Any:
    """The first exporter's graph that computes the model."""
    import onnx

    failures = []
    for dynamo in (False, True):
        try:
            with _quiet():
                data = _export(model, specs, dynamo)
            proto = onnx.load_from_string(data)
            check_graph(data, model, specs)
            return proto
        except Exception as e:  # an exporter's failure is its own type; the next one may work
            failures.append(f"{'dynamo' if dynamo else 'torchscript'}: {_first_line(e)}")
    raise ExportError(
        f"--model {model.cfg.model} could not be exported to ONNX ({'; '.join(failures)})"
    )


def _export(model: RNNLM, specs: list[StateSpec], dynamo: bool) -> bytes:
    """The graph's bytes, traced at a batch of 2 with the batch left free."""
    ids = torch.tensor([1, 0]) % model.cfg.vocab_size
    state = [torch.zeros(_batched(s.shape, 2)) for s in specs]
    names = [s.name for s in specs]
    axes = {"ids": {0: "batch"}, "scores": {0: "batch"}}
    axes |= {n: {1: "batch"} for n in names} | {f"{n}_out": {1: "batch"} for n in names}
    step = _Step(model).eval()  # a module's mode is train until set: its export would drop out
    kwargs: dict[str, Any] = {
        "input_names": ["ids", *names],
        "output_names": ["scores", *(f"{n}_out" for n in names)],
        "opset_version": OPSET,
        "dynamo": dynamo,
    }
    if not dynamo:
        buf = io.BytesIO()
        torch.onnx.export(step, (ids, *state), buf, dynamic_axes=axes, **kwargs)
        return buf.getvalue()
    # torch.export's shapes follow forward's signature: ids, then the state as one tuple.
    batch = torch.export.Dim("batch", min=1)
    shapes = ({0: batch}, tuple({1: batch} for _ in specs))
    program = torch.onnx.export(step, (ids, *state), dynamic_shapes=shapes, verbose=False, **kwargs)
    return program.model_proto.SerializeToString()


def check_graph(data: bytes, model: RNNLM, specs: list[StateSpec], steps: int = 6) -> float:
    """Run the graph with onnxruntime beside the model on a few streams and steps from a random
    state; the largest difference in log-probabilities, ExportError if above TOLERANCE."""
    import onnxruntime as ort

    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    gen = torch.Generator().manual_seed(0)
    B, V = 3, model.cfg.vocab_size
    state = [torch.randn(_batched(s.shape, B), generator=gen) * 0.5 for s in specs]
    mine = [s.numpy() for s in state]
    worst = 0.0
    with torch.inference_mode():
        for _ in range(steps):
            ids = torch.randint(V, (B,), generator=gen)
            ref = _Step(model)(ids, *state)
            got = session.run(
                None, {"ids": ids.numpy(), **dict(zip(_names(specs), mine, strict=True))}
            )
            worst = max(worst, float(np.abs(got[0] - ref[0].numpy()).max()))
            state, mine = list(ref[1:]), got[1:]
    if not worst <= TOLERANCE:
        raise ExportError(f"the graph's scores differ from the model's by {worst:.2e}")
    return worst


def _names(specs: list[StateSpec]) -> list[str]:
    return [s.name for s in specs]


def _batched(shape: tuple[int, ...], batch: int) -> tuple[int, ...]:
    return (shape[0], batch, *shape[2:])


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:160]}" if text else type(e).__name__


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The exporters' warnings and progress lines, which would otherwise reach the user's
    terminal (the dynamo exporter prints to stdout), silenced."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._dynamo")]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)
