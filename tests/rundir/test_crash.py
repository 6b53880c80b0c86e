"""After a crash the run directory tells the truth (issue 18).

A training subprocess is killed with SIGKILL, alternately in the middle of a checkpoint
write and at a random moment of training, and resumed after each kill. Afterwards the
checkpoint loads, no temporary file remains, and the logs hold each step once, in order,
and only steps the final model trained through.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import re
import signal
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import charlm.cli
from charlm.rundir import atomic, recovery
from charlm.rundir import checkpoint as ckpt_io
from charlm.rundir import lock as runlock
from tests.rundir.lockholder import held_elsewhere

KILLS = 12  # alternately during a checkpoint write and during a step
EVAL_EVERY = 10  # logs a training row at every step
NEVER_DONE = 100_000  # --max-steps while killing: no launch finishes before its kill
WRITE_DELAY = 0.3  # seconds each checkpoint write pauses halfway (atomic.DELAY_ENV)
ARGS = [
    "--hidden-size", "16", "--embed-size", "8", "--layers", "1", "--batch-size", "4",
    "--bptt", "16", "--epochs", "1000", "--eval-every", str(EVAL_EVERY),
    "--sample-length", "10", "--seed", "18", "--max-time", "none", "--threads", "1",
]  # fmt: skip
_SAMPLE_STEP = re.compile(r"^===== step (\d+),", re.MULTILINE)


class Training:
    """``charlm train ARGS`` in a forked child: the imports are the parent's, so a launch
    costs milliseconds rather than seconds of importing torch on a loaded machine."""

    def __init__(self, args: list[str], log: Path, delay: float = 0.0) -> None:
        self.log = log
        self.proc = multiprocessing.get_context("fork").Process(
            target=_train_main, args=(args, log, delay)
        )
        self.proc.start()
        self.pid = self.proc.pid

    def alive(self) -> bool:
        return self.proc.is_alive()

    def finish(self, timeout: float) -> tuple[int | None, str]:
        self.proc.join(timeout)
        return self.proc.exitcode, self.log.read_text(encoding="utf-8", errors="replace")


def _train_main(args: list[str], log: Path, delay: float) -> None:
    """The child: stderr to ``log``, stdout nowhere, then the CLI as `python -m charlm`."""
    os.environ[atomic.DELAY_ENV] = str(delay)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 2)
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115 - fd 2, closed at exit
    sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115
    sys.argv = ["charlm", "train", *args]
    charlm.cli.main()


def _train_args(corpus: Path, run: Path, max_steps: int = NEVER_DONE) -> list[str]:
    """Resume when a checkpoint survived; before the first one, start again."""
    if (run / ckpt_io.LATEST).exists():
        return ["--resume", str(run), "--max-steps", str(max_steps)]
    return [str(corpus), "--out", str(run), "--force", *ARGS, "--max-steps", str(max_steps)]


def _wait_for(condition: Callable[[], bool], proc: Training, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        assert proc.alive(), proc.finish(1)[1]
        assert time.monotonic() < end, "the training never got there"
        time.sleep(0.005)


def _locked_by(run: Path, proc: Training) -> bool:
    owner = runlock.read_owner(run / runlock.LOCK_NAME)
    return owner is not None and owner["pid"] == proc.pid


def _kill_during_write(proc: Training, run: Path, rng: random.Random) -> None:
    """Let a random number of checkpoint writes finish (progress), then land in the next."""
    before, seen = set(atomic.orphans(run)), set()  # a previous kill's: this run removes them
    target = rng.randint(1, 4)

    def writing() -> bool:
        now = {p for p in atomic.orphans(run) if ".safetensors." in p.name} - before
        seen.update(now)
        return len(seen) >= target and bool(now)

    _wait_for(writing, proc)
    time.sleep(rng.uniform(0.0, WRITE_DELAY * 0.8))  # still inside the paused write


def _kill_during_step(proc: Training, run: Path, rng: random.Random) -> None:
    kept = _checkpoint_step(run)
    _wait_for(lambda: _locked_by(run, proc) and _last_logged_step(run) > kept, proc)
    time.sleep(rng.uniform(0.0, 1.0))  # training, some steps past the checkpoint


def _checkpoint_step(run: Path) -> int:
    latest = run / ckpt_io.LATEST
    return ckpt_io.load(latest).state["step"] if latest.exists() else 0


def _last_logged_step(run: Path) -> int:
    try:
        return json.loads((run / recovery.METRICS).read_text().splitlines()[-1])["step"]
    except (OSError, IndexError, ValueError):  # not there yet, or a row half written
        return -1


def test_sigkill_at_random_moments_leaves_a_truthful_run_directory(
    corpus_file: Path, tmp_path: Path
) -> None:
    # The children are forked from this process, so what it has imported they need not: the
    # CLI, and torch._dynamo, which the optimizer's first step imports (seconds when loaded).
    import torch._dynamo  # noqa: F401

    run, rng, said = tmp_path / "run", random.Random(18), []
    for i in range(KILLS):
        during_write = i % 2 == 0
        log = tmp_path / f"stderr-{i}.txt"
        proc = Training(_train_args(corpus_file, run), log, WRITE_DELAY if during_write else 0)
        (_kill_during_write if during_write else _kill_during_step)(proc, run, rng)
        os.kill(proc.pid, signal.SIGKILL)
        code, text = proc.finish(60)
        said.append(text)
        assert code == -signal.SIGKILL, text
    final_step = _checkpoint_step(run) + 2 * EVAL_EVERY  # the last resume trains to the end
    final = Training(_train_args(corpus_file, run, final_step), tmp_path / "stderr-final.txt")
    code, text = final.finish(120)
    said.append(text)
    assert code == 0, text

    assert ckpt_io.load(run / ckpt_io.LATEST).state["step"] == final_step
    assert [p.name for p in run.iterdir() if p.name.endswith(".tmp")] == []
    rows = [json.loads(line) for line in (run / recovery.METRICS).read_text().splitlines()]
    assert [r["step"] for r in rows if "lr" in r] == list(range(1, final_step + 1))
    evals = list(range(EVAL_EVERY, final_step + 1, EVAL_EVERY))
    assert [r["step"] for r in rows if "val_loss" in r] == evals
    samples = (run / recovery.SAMPLES).read_text(encoding="utf-8")
    assert [int(s) for s in _SAMPLE_STEP.findall(samples)] == evals
    # What the resumes said on stderr: the kills mid-write left temporary files to remove.
    assert any("temporary file(s) left by an interrupted write" in s for s in said), said
    assert any("the logs went past the checkpoint" in s for s in said), said


# ---- the pieces, one at a time ----------------------------------------------------------
def _rows(*steps: int) -> str:
    return "".join(json.dumps({"step": s, "lr": 0.1}) + "\n" for s in steps)


def test_orphans_are_only_files_of_the_atomic_writers_naming(tmp_path: Path) -> None:
    atomic.write_atomic(tmp_path / "latest.safetensors", b"kept")
    ours = [".latest.safetensors.k2_9xq0a.tmp", ".metrics.jsonl.abcdefgh.tmp"]
    others = ["notes.tmp", ".latest.safetensors.short.tmp", "latest.safetensors", ".x.tmp"]
    for name in ours + others:
        (tmp_path / name).write_bytes(b"x")
    assert [p.name for p in atomic.orphans(tmp_path)] == sorted(ours)
    notes = recovery.tidy(tmp_path, step=0)
    assert notes == [f"removed 2 temporary file(s) left by an interrupted write (0.0 MB): "
                     f"{', '.join(sorted(ours))}"]  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*others])


def test_logs_are_cut_back_to_the_checkpoint_step(tmp_path: Path) -> None:
    (tmp_path / recovery.METRICS).write_text(_rows(1, 2, 3, 4, 5) + '{"step": 6, "l')
    samples = "".join(f"===== step {s}, val bpc 3.100 =====\nab\n\n" for s in (2, 4, 6))
    (tmp_path / recovery.SAMPLES).write_text(samples)
    notes = recovery.tidy(tmp_path, step=4)
    assert notes == [
        "the logs went past the checkpoint (step 4): dropped 2 row(s) of metrics.jsonl and 1 of "
        "samples.txt, for steps that are trained again now"
    ]  # rows 5 and the half-written 6, and the sample of step 6
    assert (tmp_path / recovery.METRICS).read_text() == _rows(1, 2, 3, 4)
    assert (tmp_path / recovery.SAMPLES).read_text() == samples[: samples.index("===== step 6")]
    assert atomic.orphans(tmp_path) == []
    assert recovery.tidy(tmp_path, step=4) == []  # nothing left to say


def test_nothing_is_touched_while_another_live_process_holds_the_lock(tmp_path: Path) -> None:
    with held_elsewhere(tmp_path) as pid:
        (tmp_path / ".latest.safetensors.abcdefgh.tmp").write_bytes(b"a write in progress")
        (tmp_path / recovery.METRICS).write_text(_rows(1, 2, 3))
        assert recovery.tidy(tmp_path, step=1) == []
        assert len(atomic.orphans(tmp_path)) == 1
        assert (tmp_path / recovery.METRICS).read_text() == _rows(1, 2, 3)
        with pytest.raises(runlock.RunLockedError) as info:
            runlock.acquire(tmp_path)
    lock = tmp_path / runlock.LOCK_NAME
    assert str(info.value) == (
        f"{tmp_path} is in use by another training (process {pid} on "
        f"{socket.gethostname()}): wait for it or stop it (kill {pid}); if no training "
        f"runs there, the lock is stale: delete {lock}, or use another --out"
    )


def test_the_atomic_writer_gives_the_usual_mode(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        atomic.write_atomic(tmp_path / "a", b"x")
        atomic.write_atomic(tmp_path / "b", b"x", mode=0o600)
    finally:
        os.umask(old)
    assert (tmp_path / "a").stat().st_mode & 0o777 == 0o640  # not mkstemp's private 0600
    assert (tmp_path / "b").stat().st_mode & 0o777 == 0o600
