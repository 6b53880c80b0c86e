"""Mixed precision: autocast to bf16 or fp16, loss scaling for fp16.

fp16 has a narrow exponent range, so small gradients underflow to zero: the loss is
multiplied by a large factor before backward and the gradients divided by it before
clipping (torch's GradScaler), and a step whose scaled gradients overflowed is skipped
while the factor is lowered. bf16 keeps fp32's range and needs no scaling.

On a CPU with bf16 instructions (AVX512-BF16) nn.LSTM, nn.GRU and nn.RNN train faster in
bf16 (on this project's AMD EPYC, one thread: LSTM 1x512 1.97x, 1x768 1.25x, 1x1024 1.01x, and
1x1024 about 1.3x through charlm's own loop, lstmloop.py; GRU 1x595 2.6x; Elman 1x1040 3.1x)
and a character model learns as much per step, so ``--amp auto`` (the default) trains those
cells in bf16 there (docs/records/defaults.md, "bf16 on the CPU"). The master weights, the
optimizer, evaluation and sampling stay in fp32. The other cells (charlm's own loops, a fixed
reservoir under a trained read-out) stay in fp32 under auto: ``CellSpec.fused`` says which are
which.
Elsewhere auto is off: on CUDA mixed precision is asked for with bf16 or fp16.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any

import torch

from charlm.config.schema import ModelConfig
from charlm.errors import ConfigError
from charlm.models import registry

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def cpu_has_bf16() -> bool:
    """Whether this CPU has bf16 instructions; False (float32) when torch cannot say.

    torch tells only through a private function, so it is looked up and tried, never assumed.
    """
    probe = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    try:
        return probe is not None and bool(probe())
    except Exception:  # a private call may fail in any way; float32 is always right
        return False


def resolve_amp(amp: str, device: torch.device, model: str) -> str:
    """The mode a run trains in: ``auto`` made concrete, the others checked against the device."""
    on_cpu = device.type != "cuda"
    if amp == "auto":
        return "bf16" if on_cpu and registry.get(model).fused and cpu_has_bf16() else "off"
    if amp == "fp16" and on_cpu:
        raise ConfigError(
            f"--amp fp16 needs a CUDA device (this run is on {device.type}): "
            "pass --amp bf16 or --amp off"
        )
    if amp == "bf16" and on_cpu and not cpu_has_bf16():
        raise ConfigError(
            "--amp bf16 needs a CUDA device or a CPU with bf16 instructions (this one has "
            "none): pass --amp off"
        )
    return amp


class Precision:
    def __init__(self, amp: str, device: torch.device, model: str = ModelConfig.model) -> None:
        self.mode = resolve_amp(amp, device, model)
        self.dtype = DTYPES.get(self.mode)
        self.device = device
        self.scaler = torch.amp.GradScaler("cuda") if self.mode == "fp16" else None

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def backward(self, loss: torch.Tensor) -> None:
        (self.scaler.scale(loss) if self.scaler else loss).backward()

    def unscale(self, optimizer: torch.optim.Optimizer) -> None:
        """Bring gradients back to their true size, so clipping sees the real norm."""
        if self.scaler:
            self.scaler.unscale_(optimizer)

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        if self.scaler:
            self.scaler.step(optimizer)
            self.scaler.update()
        else:
            optimizer.step()

    def overflowed(self, loss: float, norm: float) -> bool:
        """An fp16 overflow (finite loss, infinite gradients): lower the scale, skip the step.

        That is the scaler doing its job, not a sign the run is diverging.
        """
        if self.scaler is None or not math.isfinite(loss) or math.isfinite(norm):
            return False
        self.scaler.update()
        return True
