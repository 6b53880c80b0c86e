"""charlm: character- and word-level recurrent language models.

The Python API (``charlm.api``): ``charlm.load(run)`` gives a ``Model`` to ``sample``,
``prime`` and ``score``; ``charlm.train(corpus, out=..., **options)`` trains a run. They are
imported on first use, so ``import charlm`` (and the command line) stays light.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["Model", "__version__", "load", "train"]


def __getattr__(name: str) -> Any:
    if name in ("Model", "load", "train"):
        from charlm import api

        return getattr(api, name)
    raise AttributeError(f"module 'charlm' has no attribute {name!r}")
