"""Device, threads and seeds. Nothing here runs at import time."""

from __future__ import annotations

import secrets

import torch


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' picks CUDA when present, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(
            "--device cuda asked for, but no CUDA device is available: use --device cpu"
        )
    return torch.device(name)


def set_threads(threads: int | None) -> int:
    """Set torch's intra-op threads (when given); return the number in use."""
    if threads:
        torch.set_num_threads(threads)
    return torch.get_num_threads()


def new_seed() -> int:
    return secrets.randbelow(2**31 - 1)
