"""Skip marks for tests that need hardware this machine may not have."""

from __future__ import annotations

import pytest

from charlm.models import precision

needs_bf16 = pytest.mark.skipif(
    not precision.cpu_has_bf16(), reason="this CPU has no bf16 instructions (AVX512-BF16)"
)
