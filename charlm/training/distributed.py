"""Data-parallel plumbing on torch.distributed: process group, ranks, the few collectives.

``torchrun`` (or ``charlm train --nproc N``, which re-executes through it) starts one
process per rank and describes the job in environment variables: RANK, WORLD_SIZE,
LOCAL_RANK, MASTER_ADDR/PORT. ``setup`` joins the process group from them (gloo on the
CPU, NCCL on CUDA); without them everything here is a no-op for a single process.
Gradients are averaged by DistributedDataParallel itself; the only collectives of ours
are sums of validation totals and of per-step stop flags, and the gather of hidden state
into a checkpoint.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from charlm.config.runtime import resolve_device
from charlm.data.batching import eval_layout
from charlm.errors import ConfigError
from charlm.models.lm import RNNLM, Hidden


def world_from_env() -> int:
    """WORLD_SIZE as set by torchrun; 1 when not launched by it."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if is_initialized() else 0


def world() -> int:
    return dist.get_world_size() if is_initialized() else 1


def setup(device: torch.device) -> torch.device:
    """Join the process group when torchrun started us; return this rank's device.

    On CUDA each rank takes the GPU numbered by its LOCAL_RANK on its machine.
    """
    if world_from_env() <= 1 or is_initialized():
        return device
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device


@contextlib.contextmanager
def rank_zero_first(device: str) -> Iterator[None]:
    """Rank 0 runs the block alone, then the others (to build a token cache only once).

    If rank 0 fails inside, it exits non-zero and torchrun stops the waiting ranks.
    """
    setup(resolve_device(device))
    if rank() != 0:
        barrier()
    yield
    if rank() == 0:
        barrier()


def barrier() -> None:
    """Wait for every rank (so none exits while rank 0 still writes the checkpoint)."""
    if is_initialized():
        dist.barrier()


def teardown() -> None:
    if is_initialized():
        dist.destroy_process_group()


class _NLL(nn.Module):
    """The model's loss as tensors: per-token nll, the top layer's states (a state penalty
    reads them) and the new state, for DDP's forward (which looks for tensors in what it
    returns) and for one process alike."""

    def __init__(self, model: RNNLM) -> None:
        super().__init__()
        self.model = model

    def forward(
        self, x: torch.Tensor, y: torch.Tensor, hidden: Hidden
    ) -> tuple[torch.Tensor, torch.Tensor, Hidden]:
        out = self.model(x, hidden, targets=y)
        return out.nll, out.states, out.hidden


def data_parallel(
    model: RNNLM, device: torch.device
) -> Callable[..., tuple[torch.Tensor, torch.Tensor, Hidden]]:
    """The model's (nll, states, hidden), through DistributedDataParallel when there are
    several ranks.

    DDP broadcasts rank 0's initial weights, and averages gradients across ranks during
    backward, so the clipping that follows sees the global gradient norm.
    """
    if world() == 1:
        return _NLL(model)
    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(_NLL(model), device_ids=ids)


def all_reduce_sum(values: Sequence[float], device: torch.device) -> list[float]:
    """Element-wise sum over all ranks (the values themselves on one process)."""
    if not is_initialized():
        return [float(v) for v in values]
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def gather_rows(t: torch.Tensor) -> torch.Tensor:
    """Concatenate every rank's tensor along dim 1 (the batch of a hidden state)."""
    if not is_initialized():
        return t
    parts = [torch.empty_like(t) for _ in range(world())]
    dist.all_gather(parts, t.contiguous())
    return torch.cat(parts, dim=1)


def eval_shard(tokens: np.ndarray, batch_size: int, r: int, w: int) -> tuple[np.ndarray, int]:
    """Rank r's share of a validation split, and the rows to score it with.

    ``eval_windows`` cuts the split into rows of equal length; rank r takes a contiguous
    block of those rows (and the one token after it, the last target's input), so the W
    shards together score every target once with the same layout a single process uses.
    """
    n_targets = len(tokens) - 1
    b, stripe = eval_layout(n_targets, batch_size)
    per_rank = -(-b // w)
    start = min(r * per_rank * stripe, n_targets)
    end = min((r + 1) * per_rank * stripe, n_targets)
    return tokens[start : end + 1], per_rank


def rebatch(batch_size: int, old_world: int, new_world: int) -> tuple[int, str]:
    """The per-rank batch that keeps a run's global batch when resumed on new_world ranks.

    A checkpoint holds the hidden state of all old_world x batch_size stripes, so any rank
    count that divides that global batch continues the same stripes in the same order.
    Returns the batch and a note for the user ('' when nothing changes).
    """
    if old_world == new_world:
        return batch_size, ""
    total = batch_size * old_world
    if total % new_world:
        divisors = ", ".join(str(d) for d in range(1, total + 1) if total % d == 0)
        raise ConfigError(
            f"this run trained on {old_world} rank(s) x --batch-size {batch_size} (global batch "
            f"{total}), which {new_world} ranks cannot share evenly: resume it on a number of "
            f"ranks that divides {total} ({divisors})"
        )
    b = total // new_world
    return b, (
        f"resuming a {old_world}-rank run on {new_world} rank(s): --batch-size becomes {b} "
        f"per rank, keeping the global batch of {total} and the same data order"
    )


def launch_command(nproc: int, argv: Sequence[str]) -> list[str]:
    """The torchrun command that runs ``charlm <argv>`` as ``nproc`` ranks on this machine."""
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={nproc}",
        "-m",
        "charlm",
        *argv,
    ]


def launch(nproc: int, argv: Sequence[str]) -> int:
    """Run ``charlm <argv>`` as ``nproc`` local ranks through torchrun; its exit code.

    torchrun runs in a session of its own, so Ctrl-C in the terminal reaches only this
    parent, which passes SIGINT / SIGTERM straight to the ranks: they agree to stop, save
    one checkpoint and exit 0, and this returns 130. (Signalling torchrun itself makes it
    print a traceback; a rank exiting non-zero makes it kill the others mid-save.)
    """
    env = dict(os.environ)
    # Share the cores: torchrun would otherwise set 1 thread per rank with a warning.
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    proc = subprocess.Popen(launch_command(nproc, argv), env=env, start_new_session=True)
    signalled = []

    def forward(signum: int, frame: object) -> None:
        signalled.append(signum)
        for pid in _children(proc.pid) or [proc.pid]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    old = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        code = proc.wait()
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    return 130 if signalled and code == 0 else code


def _children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (Linux /proc); empty where that cannot be read."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            # The command name in parentheses may hold spaces: the parent pid follows it.
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
    return found


def strip_option(argv: Sequence[str], name: str) -> list[str]:
    """``argv`` without ``name VALUE`` / ``name=VALUE`` (to re-execute without --nproc)."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == name:
            skip = True
        elif not a.startswith(name + "="):
            out.append(a)
    return out
