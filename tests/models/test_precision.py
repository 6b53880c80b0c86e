"""Mixed precision on the CPU: --amp auto picks bf16 for the fused cells on a CPU with bf16
instructions, learns per step what float32 learns, and keeps weights and checkpoints float32."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from charlm.cli import app
from charlm.data.corpus import read_corpus
from charlm.errors import ConfigError
from charlm.models import precision
from charlm.models.precision import Precision, resolve_amp
from charlm.rundir import checkpoint as ckpt_io
from charlm.training.setup import new_trainer
from charlm.training.trainer import Trainer
from tests.helpers import MICRO_ARGS, micro_config, straight_and_resumed
from tests.helpers.marks import needs_bf16

CPU = torch.device("cpu")


@pytest.mark.parametrize("has_bf16", [True, False])
def test_auto_is_bf16_only_for_fused_cells_on_a_cpu_with_bf16(monkeypatch, has_bf16) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: has_bf16)
    for model in ("lstm", "gru", "rnn"):
        assert resolve_amp("auto", CPU, model) == ("bf16" if has_bf16 else "off")
    for model in ("peephole", "jordan", "esn"):
        assert resolve_amp("auto", CPU, model) == "off"
    assert resolve_amp("auto", torch.device("cuda"), "lstm") == "off"
    assert resolve_amp("off", CPU, "lstm") == "off"


def test_bf16_on_a_cpu_without_it_and_fp16_on_any_cpu_are_refused(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: False)
    with pytest.raises(ConfigError, match="--amp bf16 needs a CUDA device or a CPU with bf16"):
        resolve_amp("bf16", CPU, "lstm")
    with pytest.raises(ConfigError, match="--amp fp16 needs a CUDA device"):
        resolve_amp("fp16", CPU, "lstm")


def test_fp16_on_the_cpu_is_refused_in_one_line(corpus_file: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["train", str(corpus_file), "--out", str(tmp_path / "r"), "--device", "cpu",
         "--amp", "fp16", *MICRO_ARGS],
    )  # fmt: skip
    assert result.exit_code == 2  # an option that cannot work here
    assert result.stderr.strip() == (
        "charlm: error: --amp fp16 needs a CUDA device (this run is on cpu): "
        "pass --amp bf16 or --amp off"
    )
    assert not (tmp_path / "r").exists()


@needs_bf16
def test_bf16_autocast_runs_and_learns_what_float32_learns(
    corpus_file: Path, tmp_path: Path
) -> None:
    runs = {}
    for amp in ("off", "auto"):
        config = micro_config(max_steps=60, eval_every=60, amp=amp, epochs=50, lr=2e-2)
        trainer, _ = new_trainer(config, read_corpus(str(corpus_file)), tmp_path / amp, seed=2)
        assert trainer.precision.mode == ("bf16" if amp == "auto" else "off")
        runs[amp] = trainer.run().state.best_val
    first = ckpt_io.load(tmp_path / "auto" / ckpt_io.LATEST)
    assert all(t.dtype == torch.float32 for t in [*first.model.values(), *first.hidden])
    # bf16 rounds every product, so the two runs part; they must still learn alike.
    assert runs["auto"] != runs["off"]
    assert abs(runs["auto"] - runs["off"]) < 0.05 * runs["off"]


@needs_bf16
def test_a_bf16_run_resumes_exactly(corpus_file: Path, tmp_path: Path) -> None:
    def make(run_dir: Path) -> Trainer:
        config = micro_config(epochs=2, max_steps=None, eval_every=7, amp="bf16")
        return new_trainer(config, read_corpus(str(corpus_file)), run_dir, seed=5)[0]

    _, resumed, a, b = straight_and_resumed(make, tmp_path)
    assert resumed.precision.mode == "bf16"
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_float32_needs_no_scaler() -> None:
    p = Precision("off", CPU)
    assert p.scaler is None and p.dtype is None and p.mode == "off"
    assert not p.overflowed(1.0, float("inf"))  # without a scaler, a bad step is a bad step


@needs_bf16
def test_the_start_line_says_when_auto_chose_bf16(corpus_file: Path, tmp_path: Path) -> None:
    lines = {}
    for amp in ("auto", "off"):
        out = tmp_path / amp
        args = ["train", str(corpus_file), "--out", str(out), *MICRO_ARGS, "--amp", amp]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        lines[amp] = next(x for x in result.stderr.splitlines() if x.startswith("training "))
    assert " on cpu in bf16 (--amp off for float32), 1 thread(s)" in lines["auto"]
    assert " on cpu, " in lines["off"] and "bf16" not in lines["off"]


@pytest.mark.parametrize("private", ["missing", "raising"])
def test_without_torchs_private_bf16_probe_auto_trains_in_float32(
    monkeypatch: pytest.MonkeyPatch, private: str
) -> None:
    if private == "missing":
        monkeypatch.delattr(torch.cpu, "_is_avx512_bf16_supported", raising=False)
    else:
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", _raises)
    assert precision.cpu_has_bf16() is False
    assert resolve_amp("auto", CPU, "lstm") == "off"


def _raises() -> bool:
    raise RuntimeError("a changed private call")
