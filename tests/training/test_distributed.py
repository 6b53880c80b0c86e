"""Data-parallel training on torch.distributed: gloo on the CPU, every address loopback."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from charlm.cli import app
from charlm.data.batching import StripeBatcher, eval_windows
from charlm.errors import ConfigError
from charlm.rundir import checkpoint as ckpt_io
from charlm.training import distributed
from tests.helpers.ranks import (
    assert_same_weights,
    finish,
    fresh_args,
    metric_rows,
    rank_env,
    start_ranks,
    start_torchrun,
)

runner = CliRunner()


def _train_here(*args: str) -> str:
    """One process, in this one: ``charlm train ARGS``; its stderr."""
    result = runner.invoke(app, ["train", *args])
    assert result.exit_code == 0, result.output
    return result.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- pieces, in this process ------------------------------------------------------------


def test_ranks_take_their_block_of_the_global_stripe_layout() -> None:
    tokens = np.arange(1000, dtype=np.int64)
    one = StripeBatcher(tokens, batch_size=8, bptt=10)
    ranks = [StripeBatcher(tokens, 4, 10, rank=r, world=2) for r in range(2)]
    assert all(len(r) == len(one) for r in ranks)
    assert all(np.shares_memory(r.inputs, tokens) for r in ranks)  # views, not copies
    for k in range(len(one)):
        x, y = one.window(k)
        parts = [r.window(k) for r in ranks]
        assert torch.equal(torch.cat([p[0] for p in parts]), x)
        assert torch.equal(torch.cat([p[1] for p in parts]), y)


@pytest.mark.parametrize("n", [2, 3, 50, 349, 1000])
@pytest.mark.parametrize("world", [1, 2, 3])
def test_validation_shards_score_every_target_once(n: int, world: int) -> None:
    tokens = np.arange(n, dtype=np.int64)
    seen = []
    for r in range(world):
        shard, rows = distributed.eval_shard(tokens, 8, r, world)
        if len(shard) > 1:
            for _, y, mask in eval_windows(shard, rows, 4):
                seen += y[mask].tolist()
    assert sorted(seen) == list(range(1, n))


def test_validation_shards_keep_the_single_process_layout() -> None:
    tokens = np.arange(8 * 12 + 1, dtype=np.int64)  # 8 rows of 12 targets
    single = [x for x, _, _ in eval_windows(tokens, 8, 5)]
    for r in range(2):
        shard, rows = distributed.eval_shard(tokens, 8, r, 2)
        mine = [x for x, _, _ in eval_windows(shard, rows, 5)]
        assert all(
            torch.equal(m, s[r * 4 : (r + 1) * 4]) for m, s in zip(mine, single, strict=True)
        )


def test_resuming_on_other_rank_counts_keeps_the_global_batch_or_refuses() -> None:
    assert distributed.rebatch(8, 2, 2) == (8, "")
    assert distributed.rebatch(8, 2, 1)[0] == 16
    assert "--batch-size becomes 4" in distributed.rebatch(8, 2, 4)[1]
    with pytest.raises(ConfigError, match=r"ranks that divides 16 \(1, 2, 4, 8, 16\)"):
        distributed.rebatch(8, 2, 3)


def test_one_process_needs_no_process_group() -> None:
    assert distributed.world() == 1 and distributed.rank() == 0
    assert distributed.all_reduce_sum([1.5, 2], torch.device("cpu")) == [1.5, 2.0]
    h = torch.ones(1, 3, 4)
    assert distributed.gather_rows(h) is h


def test_launcher_reruns_the_command_without_nproc() -> None:
    argv = ["train", "c.txt", "--nproc", "2", "--seed=1", "--nproc=3"]
    assert distributed.strip_option(argv, "--nproc") == ["train", "c.txt", "--seed=1"]
    cmd = distributed.launch_command(2, ["train", "c.txt"])
    assert cmd[1:] == ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
                       "-m", "charlm", "train", "c.txt"]  # fmt: skip


def test_nproc_refuses_stdin(corpus_text: str) -> None:
    result = runner.invoke(app, ["train", "-", "--nproc", "2"], input=corpus_text)
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "charlm: error: data-parallel training needs a corpus file: ranks cannot share stdin"
    )


def test_resume_on_ranks_that_cannot_share_the_batch_is_refused_before_launch(
    trained_run: Path,
) -> None:
    result = runner.invoke(app, ["train", "--resume", str(trained_run), "--nproc", "3"])
    assert result.exit_code == 2  # options that cannot work: a usage error
    assert "global batch 4" in result.stderr and "divides 4 (1, 2, 4)" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


# ---- real ranks: torchrun, gloo, loopback ----------------------------------------------


def test_two_ranks_of_batch_8_follow_one_process_of_batch_16_and_resume_on_one(
    corpus_file: Path, tmp_path: Path
) -> None:
    straight, split = tmp_path / "one", tmp_path / "two"
    ranks = start_ranks(2, *fresh_args(corpus_file, split, 8, 8))
    _train_here(*fresh_args(corpus_file, straight, 16, 12))
    finish(ranks)
    one, two = metric_rows(straight), metric_rows(split)
    assert {step for step, _ in two} == set(range(1, 9))  # logged once, by rank 0
    for key, row in two.items():
        for name in ("train_loss", "grad_norm", "val_loss", "tokens_seen"):
            if name in row:
                assert row[name] == pytest.approx(one[key][name], rel=1e-5), (key, name)
    # The checkpoint holds both ranks' hidden state: one process carries on from it.
    stderr = _train_here("--resume", str(split), "--max-steps", "12")
    assert "--batch-size becomes 16 per rank" in stderr
    assert_same_weights(straight, split)


def test_two_ranks_average_the_weights_as_one_process_does(
    corpus_file: Path, tmp_path: Path
) -> None:
    straight, split = tmp_path / "one", tmp_path / "two"
    average = ["--average-from", "0.5"]
    ranks = start_ranks(2, *fresh_args(corpus_file, split, 8, 8), *average)
    _train_here(*fresh_args(corpus_file, straight, 16, 8), *average)
    finish(ranks)
    assert_same_weights(straight, split)  # the mean of steps 4..8
    one, two = (ckpt_io.load(run / ckpt_io.LATEST) for run in (straight, split))
    assert one.state["averaged_steps"] == two.state["averaged_steps"] == 5
    for k in one.raw:
        torch.testing.assert_close(one.raw[k], two.raw[k], rtol=1e-4, atol=1e-5)


# Slow and timing-sensitive: a c10d rendezvous of two torchrun agents once hung on a loaded
# host, so it runs with `make test-slow`, not in CI's `make test`.
@pytest.mark.slow
def test_two_nodes_over_loopback_continue_a_one_process_run(
    corpus_file: Path, tmp_path: Path
) -> None:
    straight, run = tmp_path / "one", tmp_path / "run"
    _train_here(*fresh_args(corpus_file, run, 16, 4))
    port = _free_port()
    rendezvous = ["--nnodes=2", "--nproc-per-node=1", "--rdzv-backend=c10d",
                  f"--rdzv-endpoint=127.0.0.1:{port}", "--rdzv-id=charlm-test",
                  "--local-addr=127.0.0.1"]  # fmt: skip
    resume = ["-m", "charlm", "train", "--resume", str(run), "--max-steps", "8", "--quiet"]
    nodes = [start_torchrun(*rendezvous, f"--node-rank={i}", *resume) for i in range(2)]
    _train_here(*fresh_args(corpus_file, straight, 16, 8))
    for node in nodes:
        finish(node)
    assert ckpt_io.load(run / ckpt_io.LATEST).state["world_size"] == 2
    assert_same_weights(straight, run)


def _rank_pid(launcher: int, rank: int, deadline: float) -> int:
    """The pid of a rank: a child of torchrun, itself a child of the launcher."""
    while time.monotonic() < deadline:
        for torchrun in distributed._children(launcher):
            for pid in distributed._children(torchrun):
                env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
                if f"RANK={rank}".encode() in env:
                    return pid
        time.sleep(0.2)
    raise AssertionError(f"rank {rank} never started")


def test_sigterm_on_one_rank_stops_all_with_one_checkpoint(
    corpus_file: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "charlm",
        "train",
        *fresh_args(corpus_file, run, 8, 10**5),
        "--nproc=2",
    ]
    proc = subprocess.Popen(
        cmd, env=rank_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 90
    rank1 = _rank_pid(proc.pid, 1, deadline)
    while not (run / ckpt_io.BEST).exists() and time.monotonic() < deadline:
        time.sleep(0.1)  # training has started: an evaluation has been saved
    os.kill(rank1, signal.SIGTERM)
    finish(proc)  # every rank stopped cleanly, and torchrun with them
    ck = ckpt_io.load(run / ckpt_io.LATEST)
    last = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()][-1]
    assert 0 < ck.state["step"] == last["step"] < 10**5 and "val_loss" in last
    assert ck.state["world_size"] == 2
    assert [tuple(h.shape) for h in ck.hidden] == [(1, 16, 16)] * 2  # both ranks' stripes


@pytest.mark.parametrize(
    ("raised", "code"), [(None, 0), (SystemExit(0), 0), (SystemExit(3), 3), (SystemExit("no"), 1)]
)
def test_a_rank_exits_without_finalizing_python(
    monkeypatch: pytest.MonkeyPatch, raised: SystemExit | None, code: int
) -> None:
    """Finalizing under gloo's threads aborted ranks of clean runs (CI, 2026-11-22)."""
    import charlm.cli as cli

    def fake_app() -> None:
        if raised is not None:
            raise raised

    exits: list[int] = []
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setattr(cli, "app", fake_app)
    monkeypatch.setattr(cli.os, "_exit", exits.append)
    cli.main()
    assert exits == [code]


def test_a_single_process_exits_normally(monkeypatch: pytest.MonkeyPatch) -> None:
    import charlm.cli as cli

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.setattr(cli, "app", lambda: None)
    monkeypatch.setattr(cli.os, "_exit", lambda code: pytest.fail("os._exit in a single process"))
    cli.main()
