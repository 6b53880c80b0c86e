"""Mixed precision for training on CUDA: autocast to bf16 or fp16, loss scaling for fp16.

fp16 has a narrow exponent range, so small gradients underflow to zero: the loss is
multiplied by a large factor before backward and the gradients divided by it before
clipping (torch's GradScaler), and a step whose scaled gradients overflowed is skipped
while the factor is lowered. bf16 keeps fp32's range and needs no scaling. On the CPU
mixed precision is refused: nn.LSTM in bf16 fails in oneDNN there, and hand-written bf16
measured 11x slower than fp32 (see ANCHORS.md).
"""

from __future__ import annotations

import contextlib
import math
from typing import Any

import torch

from charlm.config import ConfigError

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class Precision:
    def __init__(self, amp: str, device: torch.device) -> None:
        if amp != "off" and device.type != "cuda":
            raise ConfigError(
                f"--amp {amp} needs a CUDA device (this run is on {device.type}): "
                "drop --amp, or pass --amp off"
            )
        self.dtype = DTYPES.get(amp)
        self.device = device
        self.scaler = torch.amp.GradScaler("cuda") if amp == "fp16" else None

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
