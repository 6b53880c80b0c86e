"""The models a server holds, by the names requests use (never paths)."""

from __future__ import annotations

from dataclasses import dataclass

from charlm.errors import ConfigError, RequestError
from charlm.generation.load import LoadedModel, load_model, require_forward
from charlm.serving.engine import Engine


@dataclass
class ServedModel:
    name: str
    lm: LoadedModel
    engine: Engine
    created: int  # when its checkpoint was written (Unix time), as OpenAI's "created"

    def describe(self) -> dict[str, object]:
        """The model as ``GET /v1/models`` lists it."""
        return {"id": self.name, "object": "model", "created": self.created, "owned_by": "charlm"}


def load_catalog(
    runs: list[str], names: list[str] | None, max_streams: int
) -> dict[str, ServedModel]:
    """Each run loaded, under the matching ``names`` entry or its run directory's name (the
    directory its checkpoint file is in)."""
    if names and len(names) != len(runs):
        raise ConfigError(f"--name was given {len(names)} time(s) for {len(runs)} run(s): one each")
    if names and any(not n.strip() or "/" in n for n in names):
        raise ConfigError("--name needs a non-empty name without '/'")
    loaded = [load_model(run) for run in runs]
    for lm in loaded:
        require_forward(lm, "charlm serve")
    chosen = names or [lm.path.parent.name for lm in loaded]
    twice = sorted({n for n in chosen if chosen.count(n) > 1})
    if twice:
        raise ConfigError(f"two runs are both named {twice[0]!r}: give --name for each run")
    return {
        name: ServedModel(
            name, lm, Engine(lm.model, lm.tokenizer, max_streams), int(lm.path.stat().st_mtime)
        )
        for name, lm in zip(chosen, loaded, strict=True)
    }


def find(catalog: dict[str, ServedModel], name: str) -> ServedModel:
    if name not in catalog:
        raise RequestError(
            f"model {name!r} is not served here; GET /v1/models lists the ones that are "
            f"({', '.join(sorted(catalog))})",
            404,
            param="model",
        )
    return catalog[name]
