"""Self-contained checkpoints in safetensors: tensors plus JSON metadata, never pickle.

One file holds the weights, the model/data/training config, the tokenizer, a format
version and (for resumable checkpoints) the optimizer, hidden state, random state and
training progress. Loading parses a JSON header and raw tensor bytes: no code runs.
Writes are atomic (``charlm.rundir.atomic``): a temporary file beside it, fsynced, then renamed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from charlm.config.schema import RunConfig
from charlm.errors import CheckpointError
from charlm.rundir.atomic import write_atomic
from charlm.text.reading import special_kind

FORMAT = "charlm"
FORMAT_VERSION = 1
BEST, LATEST = "best.safetensors", "latest.safetensors"
# torch.save writes a zip archive (PK) or, in its legacy format, a bare pickle (0x80 + protocol).
_PICKLE_MAGIC = (b"PK\x03\x04", b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")


@dataclass
class Checkpoint:
    config: RunConfig
    tokenizer: dict[str, Any]
    model: dict[str, torch.Tensor]
    state: dict[str, Any] = field(default_factory=dict)  # progress: step, epoch, seed, ...
    optimizer: dict[str, Any] | None = None  # torch optimizer state_dict
    hidden: list[torch.Tensor] = field(default_factory=list)
    rng: dict[str, torch.Tensor] = field(default_factory=dict)
    path: Path | None = None  # where it was read from, for messages
    # With --average-from, ``model`` holds the running mean once it has started, and a
    # resumable checkpoint keeps the weights being trained here.
    raw: dict[str, torch.Tensor] = field(default_factory=dict)


def save(ckpt: Checkpoint, path: str | Path) -> None:
    tensors, meta = _flatten(ckpt)
    write_atomic(Path(path), st_save(tensors, metadata=meta))


def _flatten(ckpt: Checkpoint) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    # Everything is stored as contiguous CPU tensors so a GPU checkpoint loads anywhere.
    # Tied weights appear twice in a state_dict; safetensors refuses shared storage, so clone.
    tensors = {f"model.{k}": _cpu(v) for k, v in ckpt.model.items()}
    tensors |= {f"hidden.{i}": _cpu(h) for i, h in enumerate(ckpt.hidden)}
    tensors |= {f"rng.{k}": _cpu(v) for k, v in ckpt.rng.items()}
    tensors |= {f"raw.{k}": _cpu(v) for k, v in ckpt.raw.items()}
    meta: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": ckpt.config.to_dict(),
        "tokenizer": ckpt.tokenizer,
        "state": ckpt.state,
    }
    if ckpt.optimizer is not None:
        groups, scalars = ckpt.optimizer["param_groups"], {}
        for idx, st in ckpt.optimizer["state"].items():
            for key, value in st.items():
                if isinstance(value, torch.Tensor):
                    tensors[f"optim.{idx}.{key}"] = _cpu(value)
                else:
                    scalars[f"{idx}.{key}"] = value
        meta["optimizer"] = {"param_groups": groups, "scalars": scalars}
    return tensors, {k: json.dumps(v) for k, v in meta.items()}


def _cpu(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to("cpu").contiguous().clone()


def load(path: str | Path) -> Checkpoint:
    path = Path(path)
    try:
        kind = special_kind(path.stat().st_mode)
        if kind is not None and kind != "a directory":  # a pipe would block, a device not end
            raise CheckpointError(
                f"{path} is {kind}, not a checkpoint: point to a best.safetensors or "
                "latest.safetensors written by 'charlm train'"
            )
        data = path.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(
            f"{path}: no such checkpoint; train one with 'charlm train CORPUS'"
        ) from None
    except IsADirectoryError:
        raise CheckpointError(f"{path} is a directory without {BEST} or {LATEST}") from None
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read it ({e.strerror})") from e
    if data.startswith(_PICKLE_MAGIC):
        raise CheckpointError(
            f"{path} is a pickle (torch.save) file, not a charlm checkpoint: charlm never "
            "unpickles, since loading a pickle can run code; use a .safetensors checkpoint "
            "written by 'charlm train'"
        )
    try:
        tensors = st_load(data)
        meta = _read_metadata(data)
    except (SafetensorError, ValueError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(
            f"{path} is not a charlm checkpoint (truncated or another format); "
            "point to a best.safetensors or latest.safetensors written by 'charlm train'"
        ) from e
    return _unflatten(path, tensors, meta)


def _read_metadata(data: bytes) -> dict[str, Any]:
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + n].decode("utf-8"))
    raw = header.get("__metadata__") or {}
    if raw.get("format") != json.dumps(FORMAT):
        raise ValueError("not a charlm checkpoint")
    return {k: json.loads(v) for k, v in raw.items()}


def _before_resets(config: dict[str, Any]) -> dict[str, Any]:
    """A run saved before --reset-prob existed never reset its state: resume it that way."""
    train = config.get("train", {})
    if "reset_prob" in train:
        return config
    return {**config, "train": {**train, "reset_prob": 0.0}}


def _unflatten(path: Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> Checkpoint:
    version = meta.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format version {version}, newer than this charlm reads "
            f"({FORMAT_VERSION}): upgrade charlm"
        )
    groups = _prefixed(tensors, "model.")
    ckpt = Checkpoint(
        config=RunConfig.from_dict(_before_resets(meta["config"])),
        tokenizer=meta["tokenizer"],
        model=groups,
        state=meta.get("state", {}),
        hidden=[tensors[f"hidden.{i}"] for i in range(len(_prefixed(tensors, "hidden.")))],
        rng=_prefixed(tensors, "rng."),
        path=path,
        raw=_prefixed(tensors, "raw."),
    )
    if "optimizer" in meta:
        ckpt.optimizer = _optimizer_state(tensors, meta["optimizer"])
    return ckpt


def load_weights(model: torch.nn.Module, ck: Checkpoint) -> None:
    """Put the checkpoint's weights into ``model``, or say in one line why they do not fit."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(ck.model))
    for name in sorted(set(expected) & set(ck.model)):
        want, got = tuple(expected[name].shape), tuple(ck.model[name].shape)
        if want != got:
            raise CheckpointError(
                f"{ck.path or 'checkpoint'}: weight {name} has shape {got}, but the config "
                f"stored with it needs {want}: the file was altered or is damaged; use "
                "another checkpoint or retrain with 'charlm train CORPUS'"
            )
    if missing or set(ck.model) - set(expected):
        names = ", ".join(missing or sorted(set(ck.model) - set(expected)))
        raise CheckpointError(
            f"{ck.path or 'checkpoint'}: its weights do not match its config ({names}); "
            "it may come from another charlm version: retrain with 'charlm train CORPUS'"
        )
    model.load_state_dict(ck.model)


def _prefixed(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}


def _optimizer_state(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for key, value in _prefixed(tensors, "optim.").items():
        idx, name = key.split(".", 1)
        state.setdefault(int(idx), {})[name] = value
    for key, value in meta["scalars"].items():
        idx, name = key.split(".", 1)
        state.setdefault(int(idx), {})[name] = value
    return {"state": state, "param_groups": meta["param_groups"]}


def resolve(path: str | Path, prefer: str = BEST) -> Path:
    """A checkpoint file from a file or run-directory path."""
    p = Path(path)
    try:
        exists, is_dir = p.exists(), p.is_dir()
    except OSError as e:  # a name too long, a loop of links: not a place we can read
        raise CheckpointError(f"{p}: cannot read it ({e.strerror}); check the path") from None
    if is_dir:
        for name in (prefer, BEST, LATEST):
            if (p / name).is_file():
                return p / name
        raise CheckpointError(
            f"{p} holds no checkpoint ({BEST} or {LATEST}); train one with 'charlm train CORPUS'"
        )
    if not exists:
        raise CheckpointError(f"{p}: no such checkpoint; train one with 'charlm train CORPUS'")
    return p


def find_latest(root: str | Path = "checkpoints") -> Path:
    """The most recently written best checkpoint under ``root``."""
    found = sorted(Path(root).glob(f"**/{BEST}"), key=lambda p: p.stat().st_mtime)
    if not found:
        raise CheckpointError(
            f"no checkpoint found under ./{root}: train one with 'charlm train CORPUS', "
            "or name a checkpoint or run directory"
        )
    return found[-1]
