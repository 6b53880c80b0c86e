"""The CUDA path: device choice, mixed precision, checkpoints that load anywhere.

Tests marked ``cuda`` need a CUDA device and are skipped cleanly where there is none; the
others check, on any machine, what must hold without one.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from charlm.data.corpus import read_corpus
from charlm.errors import ConfigError
from charlm.rundir import checkpoint as ckpt_io
from charlm.training.events import EvalEvent
from charlm.training.setup import new_trainer, resume_trainer
from tests.helpers import micro_config

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def test_importing_charlm_touches_no_cuda() -> None:
    code = (
        "import torch, charlm.cli, charlm.training.trainer, charlm.training.distributed\n"
        "import charlm.models.precision\n"
        "print(torch.cuda.is_initialized())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_unknown_amp_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown --amp 'fp8'"):
        micro_config(amp="fp8")


@pytest.mark.cuda
@cuda
@pytest.mark.parametrize("amp", ["off", "bf16", "fp16"])
def test_training_on_cuda_learns_and_saves_cpu_tensors(
    corpus_file: Path, tmp_path: Path, amp: str
) -> None:
    config = micro_config(epochs=4, eval_every=20, lr=2e-2, amp=amp)
    trainer, _ = new_trainer(config, read_corpus(str(corpus_file)), tmp_path, seed=2)
    assert trainer.device.type == "cuda"  # --device auto picks CUDA when present
    evals: list[EvalEvent] = []
    trainer.run(lambda e: evals.append(e) if isinstance(e, EvalEvent) else None)
    assert evals[-1].best_val < evals[0].val_loss
    ck = ckpt_io.load(tmp_path / ckpt_io.LATEST)
    assert all(t.device.type == "cpu" for t in [*ck.model.values(), *ck.hidden])
    assert all(h.dtype == torch.float32 for h in ck.hidden)


@pytest.mark.cuda
@cuda
def test_a_cuda_run_resumes_on_the_cpu(corpus_file: Path, tmp_path: Path) -> None:
    trainer, _ = new_trainer(
        micro_config(max_steps=6, eval_every=3), read_corpus(str(corpus_file)), tmp_path, seed=2
    )
    trainer.run()
    resumed, _ = resume_trainer(tmp_path, options={"max_steps": 9, "device": "cpu"})
    assert resumed.device.type == "cpu"
    assert resumed.run().state.step == 9
