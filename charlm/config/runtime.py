"""Device, threads and seeds. Nothing here runs at import time."""

from __future__ import annotations

import os
import secrets

import torch

from charlm.errors import ConfigError


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' picks CUDA when present, else the CPU; a device we cannot have is a ConfigError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:  # a name torch does not know ("tpu", "cuda:x")
        raise ConfigError(f"unknown --device '{name}': use auto, cpu or cuda") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"--device {name} asked for, but no CUDA device is available: use --device cpu"
        )
    if device.type not in ("cpu", "cuda"):  # torch knows it (mps, xla, meta) but charlm does not
        raise ConfigError(f"--device {name} is not supported: use auto, cpu or cuda")
    count = torch.cuda.device_count() if device.type == "cuda" else 0
    if device.index is not None and device.index >= count > 0:
        raise ConfigError(f"--device {name}: there are {count} CUDA device(s); use --device cuda")
    return device


def set_threads(threads: int | None) -> int:
    """Set torch's intra-op threads (default: all cores but one); return the number in use.

    Leaving a core free is deliberate: when every core has a torch thread and anything else
    runs, each parallel region waits for the descheduled thread, and on a busy 2-core host
    two threads trained many times slower than one (measured in docs/records/defaults.md,
    "Threads").
    """
    torch.set_num_threads(threads or default_threads())
    return torch.get_num_threads()


def default_threads() -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(torch.get_num_threads(), (cores or 1) - 1))


def new_seed() -> int:
    return secrets.randbelow(2**31 - 1)
