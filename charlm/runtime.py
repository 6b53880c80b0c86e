"""Device, threads and seeds. Nothing here runs at import time."""

from __future__ import annotations

import os
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
    """Set torch's intra-op threads (default: all cores but one); return the number in use.

    Leaving a core free is deliberate: when every core has a torch thread and anything else
    runs, each parallel region waits for the descheduled thread, and on a busy 2-core host
    two threads trained many times slower than one (measured in bench/README.md, "Threads").
    """
    torch.set_num_threads(threads or default_threads())
    return torch.get_num_threads()


def default_threads() -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(torch.get_num_threads(), (cores or 1) - 1))


def new_seed() -> int:
    return secrets.randbelow(2**31 - 1)
