"""Faults during training: non-finite losses, failed writes, signals, a shared run directory,
running out of memory. Each ends in a clear message and leaves the last checkpoint usable.
"""

from __future__ import annotations

import errno
import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import typer
from typer.testing import CliRunner

from charlm.cli import app
from charlm.cli.train import graceful_stop
from charlm.data.corpus import read_corpus
from charlm.models.lm import RNNLM
from charlm.rundir import atomic
from charlm.rundir import checkpoint as ckpt_io
from charlm.rundir import lock as runlock
from charlm.training.events import InfoEvent
from charlm.training.rollback import MAX_BAD_STEPS, MAX_ROLLBACKS
from charlm.training.setup import new_trainer
from charlm.training.trainer import Trainer
from tests.helpers import MICRO_ARGS, micro_config
from tests.rundir.lockholder import held_elsewhere

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]


def train(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, ["train", *args])


def _trainer(corpus_file: Path, run_dir: Path, **train_opts: object) -> Trainer:
    trainer, _ = new_trainer(micro_config(**train_opts), read_corpus(str(corpus_file)), run_dir, 5)
    return trainer


def _finite(path: Path) -> bool:
    return all(bool(t.isfinite().all()) for t in ckpt_io.load(path).model.values())


# ---- NaN and infinite losses ----------------------------------------------------------------
def test_repeated_nan_losses_roll_back_with_a_lower_rate_and_say_so(
    corpus_file: Path, tmp_path: Path
) -> None:
    trainer = _trainer(corpus_file, tmp_path, max_steps=20, eval_every=15)
    start = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    real_net, calls = trainer.net, [0]

    def poisoned(x, y, hidden):  # type: ignore[no-untyped-def]
        calls[0] += 1
        nll, states, hidden = real_net(x, y, hidden)
        bad = 3 <= calls[0] < 3 + MAX_BAD_STEPS  # steps 3..7: NaN, then healthy again
        return (nll * float("nan") if bad else nll), states, hidden

    trainer.net = poisoned
    events: list[object] = []
    at_rollback: dict[str, torch.Tensor] = {}

    def on_event(e: object) -> None:
        events.append(e)
        if isinstance(e, InfoEvent) and not at_rollback:
            at_rollback.update({k: v.clone() for k, v in trainer.model.state_dict().items()})

    result = trainer.run(on_event)
    notes = [e.message for e in events if isinstance(e, InfoEvent)]
    assert notes == [
        f"step 7: {MAX_BAD_STEPS} non-finite losses in a row: rolled back to the last good "
        "weights, learning rate x0.5"
    ]
    # No evaluation had run yet: the rollback target is the state the run started from.
    assert all(torch.equal(at_rollback[k], v) for k, v in start.items())
    assert result.state.lr_scale == 0.5 and result.state.step == 20
    assert _finite(tmp_path / ckpt_io.BEST) and _finite(tmp_path / ckpt_io.LATEST)
    assert ckpt_io.load(tmp_path / ckpt_io.LATEST).state["lr_scale"] == 0.5  # kept on resume


def test_inf_loss_is_skipped_like_nan(corpus_file: Path, tmp_path: Path) -> None:
    trainer = _trainer(corpus_file, tmp_path)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    real_net = trainer.net
    trainer.net = lambda x, y, h: (lambda nll, s, h2: (nll * math.inf, s, h2))(*real_net(x, y, h))
    loss, _, _ = trainer.train_step(*trainer.batcher.window(0), total_steps=10)
    assert loss is None
    assert all(torch.equal(v, trainer.model.state_dict()[k]) for k, v in before.items())


@pytest.mark.filterwarnings("ignore:invalid value encountered")  # sampling from NaN weights
def test_non_finite_weights_are_never_written(corpus_file: Path, tmp_path: Path) -> None:
    trainer = _trainer(corpus_file, tmp_path, max_steps=1)
    with torch.no_grad():
        trainer.model.decoder.bias.fill_(float("nan"))
    events: list[object] = []
    result = trainer.run(events.append)
    assert result.state.best_val is None  # a NaN validation loss is never the best
    assert not (tmp_path / ckpt_io.BEST).exists() and not (tmp_path / ckpt_io.LATEST).exists()
    notes = {e.message for e in events if isinstance(e, InfoEvent)}
    assert "weights are not finite: latest.safetensors not written" in notes


def test_a_loss_that_stays_nan_ends_with_advice(
    corpus_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_forward = RNNLM.forward  # what every training step calls, with targets

    def always_nan(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        out = real_forward(self, *args, **kwargs)
        if out.nll is not None:
            out.nll = out.nll * float("nan")
        return out

    monkeypatch.setattr(RNNLM, "forward", always_nan)
    out = tmp_path / "run"
    args = [a if a != "12" else "500" for a in MICRO_ARGS]  # --max-steps: far enough
    result = train(str(corpus_file), "--out", str(out), *args)
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert sum("rolled back" in line for line in lines) == MAX_ROLLBACKS
    assert lines[-1].startswith(
        f"charlm: error: the loss stayed NaN or infinite after {MAX_ROLLBACKS} rollbacks: lower "
        "--lr (now 0.0"
    )
    assert lines[-1].endswith(") or --grad-clip, or check the corpus")
    assert "Traceback" not in result.stderr
    assert not (out / runlock.LOCK_NAME).exists()
    assert all(_finite(p) for p in out.glob("*.safetensors"))


# ---- failed writes ------------------------------------------------------------------------
def _is_checkpoint(written: object) -> bool:
    """Whether an atomic write's descriptor or temporary path is a checkpoint's."""
    name = os.readlink(f"/proc/self/fd/{written}") if isinstance(written, int) else str(written)
    return ".safetensors." in name


@pytest.mark.parametrize(
    ("target", "error", "phrase"),
    [
        (
            "fsync",
            OSError(errno.ENOSPC, "No space left on device"),
            "No space left on device): free disk space or choose another place",
        ),
        (
            "replace",
            PermissionError(errno.EACCES, "Permission denied"),
            "Permission denied): fix the permissions or choose another place",
        ),
    ],
)
def test_a_failed_checkpoint_write_is_one_line_and_keeps_the_previous_one(
    corpus_file: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    target: str,
    error: OSError,
    phrase: str,
) -> None:
    real, calls = getattr(atomic.os, target), [0]

    def fail_after_the_first_evaluation(*args: object) -> object:
        calls[0] += _is_checkpoint(args[0])  # config.json is written atomically too
        if calls[0] > 2:  # the first evaluation writes best, then latest
            raise error
        return real(*args)

    monkeypatch.setattr(atomic.os, target, fail_after_the_first_evaluation)
    out = tmp_path / "run"
    result = train(str(corpus_file), "--out", str(out), *MICRO_ARGS, "--quiet")
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr == (
        f"charlm: error: cannot write {out / ckpt_io.BEST} ({phrase}; files written before "
        "are intact\n"
    )
    monkeypatch.undo()
    assert ckpt_io.load(out / ckpt_io.BEST).state["step"] == 6  # the first evaluation's
    assert ckpt_io.load(out / ckpt_io.LATEST).state["step"] == 6
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []  # no temporary
    resumed = train("--resume", str(out), "--quiet")  # and the run goes on from there
    assert resumed.exit_code == 0 and ckpt_io.load(out / ckpt_io.LATEST).state["step"] == 12


@pytest.mark.parametrize("out", ["a-file", "a-file/run"])
def test_a_run_directory_blocked_by_a_file_is_one_line(
    corpus_file: Path, tmp_path: Path, out: str
) -> None:
    (tmp_path / "a-file").write_text("not a directory\n")
    result = train(str(corpus_file), "--out", str(tmp_path / out), *MICRO_ARGS, "-q")
    assert result.exit_code == 1 and result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"charlm: error: cannot write {tmp_path / out} (")
    assert "a file is in the way: choose another path" in result.stderr
    assert (tmp_path / "a-file").read_text() == "not a directory\n"


# ---- signals ------------------------------------------------------------------------------
def test_a_second_signal_interrupts_at_once() -> None:
    trainer = SimpleNamespace(stop_requested=False)
    with graceful_stop(trainer):  # type: ignore[arg-type]
        signal.raise_signal(signal.SIGTERM)
        assert trainer.stop_requested  # the first asks the loop to save and stop
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored


def test_interrupted_mid_write_keeps_the_old_checkpoint(
    corpus_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second Ctrl-C that lands while a checkpoint is being written: exit 130, the files
    on disk are the complete ones from before, and no temporary or lock is left."""
    real, calls = atomic.os.fsync, [0]

    def ctrl_c_on_the_third_write(fd: int) -> None:
        calls[0] += _is_checkpoint(fd)
        if calls[0] == 3:
            raise KeyboardInterrupt
        real(fd)

    monkeypatch.setattr(atomic.os, "fsync", ctrl_c_on_the_third_write)
    out = tmp_path / "run"
    result = train(str(corpus_file), "--out", str(out), *MICRO_ARGS, "--quiet")
    assert result.exit_code == 130 and result.stderr == "charlm: interrupted\n"
    assert ckpt_io.load(out / ckpt_io.BEST).state["step"] == 6
    assert ckpt_io.load(out / ckpt_io.LATEST).state["step"] == 6
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []


def _start_training(corpus_file: Path, out: Path) -> subprocess.Popen[bytes]:
    args = [a if a != "12" else "100000" for a in MICRO_ARGS]  # --max-steps: far away
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "charlm", "train", str(corpus_file), "--out", str(out), *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    deadline = time.monotonic() + 120
    while not (out / ckpt_io.LATEST).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return proc


def test_sigterm_saves_and_a_second_training_is_refused_meanwhile(
    corpus_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    proc = _start_training(corpus_file, out)
    try:
        second = train(str(corpus_file), "--out", str(out), "--force", *MICRO_ARGS)
        resume = train("--resume", str(out))
    finally:
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=120)
    for r in (second, resume):
        assert r.exit_code == 1, r.output
        assert f"{out} is in use by another training (process {proc.pid} on" in r.stderr
        assert f"wait for it or stop it (kill {proc.pid}); if no training runs there" in r.stderr
    assert proc.returncode == 130, stderr.decode()
    assert stdout == b"" and b"Traceback" not in stderr and b"stopped (interrupted)" in stderr
    assert (out / "metrics.jsonl").exists()  # --force did not wipe the live run
    assert not (out / runlock.LOCK_NAME).exists()
    step = ckpt_io.load(out / ckpt_io.LATEST).state["step"]
    assert train("--resume", str(out), "--max-steps", str(step + 2), "-q").exit_code == 0


def test_a_killed_run_leaves_a_lock_that_resume_takes_over(
    corpus_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    proc = _start_training(corpus_file, out)
    proc.kill()  # kill -9: no handler runs, the lock stays behind
    proc.communicate(timeout=60)
    assert json.loads((out / runlock.LOCK_NAME).read_text())["pid"] == proc.pid
    step = ckpt_io.load(out / ckpt_io.LATEST).state["step"]
    result = train("--resume", str(out), "--max-steps", str(step + 2), "-q")
    assert result.exit_code == 0, result.output
    assert not (out / runlock.LOCK_NAME).exists()


# ---- the run-directory lock ---------------------------------------------------------------
def _write_lock(run_dir: Path, pid: int, host: str | None = None) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / runlock.LOCK_NAME
    path.write_text(json.dumps({"pid": pid, "host": host or socket.gethostname()}))
    return path


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()  # reaped: the pid names no process now
    return proc.pid


@pytest.mark.parametrize("lock", ["dead-owner", "unreadable"])
def test_a_stale_lock_is_taken_over(corpus_file: Path, tmp_path: Path, lock: str) -> None:
    out = tmp_path / "run"
    path = _write_lock(out, _dead_pid())
    if lock == "unreadable":  # a crash between creating the file and writing it
        path.write_text("")
    result = train(str(corpus_file), "--out", str(out), *MICRO_ARGS, "-q")
    assert result.exit_code == 0, result.output
    assert not path.exists()  # released at the end


def test_a_lock_from_another_host_names_the_file_to_delete(
    corpus_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    path = _write_lock(out, os.getpid(), host="elsewhere")
    result = train(str(corpus_file), "--out", str(out), *MICRO_ARGS)
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr == (
        f"charlm: error: {out} is in use by another training (process {os.getpid()} on "
        f"elsewhere): if that run is gone, delete {path}, or use another --out\n"
    )
    assert path.exists()  # someone else's lock is never removed


def test_a_live_lock_refuses_and_release_leaves_others_locks_alone(tmp_path: Path) -> None:
    with runlock.run_lock(tmp_path) as path:
        with pytest.raises(runlock.RunLockedError, match="in use by another training"):
            runlock.acquire(tmp_path)
        path.unlink()  # deleted by hand, as the message offers, and another run took over
        with held_elsewhere(tmp_path) as pid:
            runlock.release(path)
            assert runlock.read_owner(path)["pid"] == pid  # not ours to remove
            with pytest.raises(runlock.RunLockedError, match=f"process {pid} on"):
                runlock.acquire(tmp_path)
    runlock.release(runlock.acquire(tmp_path))  # and, its owner dead, it can be taken over


# ---- out of memory ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("error", "batch", "advice"),
    [
        (torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"), "4",
         "try --batch-size 2"),
        (RuntimeError("[enforce fail] DefaultCPUAllocator: out of memory"), "4",
         "try --batch-size 2"),
        (MemoryError(), "1", "try --bptt 8 or --hidden-size 8"),
    ],
)  # fmt: skip
def test_out_of_memory_names_the_smaller_setting(
    corpus_file: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    error: BaseException,
    batch: str,
    advice: str,
) -> None:
    def oom(self: Trainer, *args: object) -> None:
        raise error

    monkeypatch.setattr(Trainer, "train_step", oom)
    out = tmp_path / "run"
    args = ["--out", str(out), *MICRO_ARGS, "--batch-size", batch, "--hidden-size", "16", "-q"]
    result = train(str(corpus_file), *args)
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr == (
        f"charlm: error: out of memory on cpu at --batch-size {batch} --bptt 16 --hidden-size "
        f"16: {advice}; resume from the last checkpoint with 'charlm train --resume {out}'\n"
    )
    assert not (out / runlock.LOCK_NAME).exists()


def test_other_runtime_errors_are_not_disguised_as_memory(
    corpus_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def bug(self: Trainer, *args: object) -> None:
        raise RuntimeError("shape mismatch in a bug")

    monkeypatch.setattr(Trainer, "train_step", bug)
    result = train(str(corpus_file), "--out", str(tmp_path / "r"), *MICRO_ARGS, "-q")
    assert isinstance(result.exception, RuntimeError) and "bug" in str(result.exception)
    assert not (tmp_path / "r" / runlock.LOCK_NAME).exists()


def test_an_abort_is_one_line_not_a_traceback(
    corpus_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Click turns an EOF at a prompt into Abort; it must leave as our one line, exit 1."""

    def eof(self: Trainer, *args: object) -> None:
        raise typer.Abort()

    monkeypatch.setattr(Trainer, "train_step", eof)
    result = train(str(corpus_file), "--out", str(tmp_path / "r"), *MICRO_ARGS, "-q")
    assert result.exit_code == 1 and result.stderr.strip() == "charlm: error: aborted"
