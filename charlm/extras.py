"""The optional packages: each serves one command or flag and comes with one extra of charlm.

A plain ``pip install charlm`` trains, samples, evaluates and inspects. The extras add:
``charlm[music]`` music21 (``charlm music render``, ``charlm prepare abc`` from music21's
collections), ``charlm[plot]`` matplotlib and plotext (``charlm plot``, ``inspect gradients
-o``), ``charlm[lstmvis]`` h5py (``inspect units --lstmvis``), ``charlm[serve]`` FastAPI and uvicorn
(``charlm serve``), ``charlm[onnx]`` onnx, onnxruntime and onnxscript (``charlm export``);
``charlm[all]`` all of them.
Each package is imported only where it is used; a command checks for its package before it
starts work, so a missing one costs one line, not a traceback halfway.
"""

from __future__ import annotations

from importlib import util

from charlm.errors import MissingExtraError

# Package -> the extra that installs it (pyproject.toml's optional-dependencies).
EXTRAS = {
    "music21": "music",
    "matplotlib": "plot",
    "plotext": "plot",
    "h5py": "lstmvis",
    "fastapi": "serve",
    "uvicorn": "serve",
    "onnx": "onnx",
    "onnxruntime": "onnx",
    "onnxscript": "onnx",
}


def require(package: str, command: str) -> None:
    """MissingExtraError naming the extra when ``package``, which ``command`` needs, is absent.

    Looked up, not imported: music21 and matplotlib take a second to import, and the command
    imports them when it comes to use them.
    """
    try:
        found = util.find_spec(package) is not None
    except (ImportError, ValueError):  # a broken install, or a module without its spec
        found = False
    if not found:
        raise MissingExtraError(
            f"{command} needs {package}: pip install 'charlm[{EXTRAS[package]}]'"
        )
