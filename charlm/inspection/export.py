"""Writing a recording for other tools: a NumPy archive, and the files LSTMVis reads.

LSTMVis (Strobelt et al.) opens a directory holding ``lstm.yml``, an HDF5 file of states
(one (T, H) table per layer and type, ``state`` for the cell, ``output`` for h), an HDF5 file
of token ids (``word_ids``) and a dictionary of ``token id`` lines.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from charlm.inspection.recording import Recording
from charlm.rundir.atomic import write_atomic


def write_npz(path: str | Path, rec: Recording, vocab: list[str], tokens: list[str]) -> None:
    """States as (T, L, H) arrays named h, c, gate_<name>; ids, tokens and the vocabulary."""
    arrays = {(k if k in ("h", "c") else f"gate_{k}"): v for k, v in rec.states.items()}
    arrays |= {
        "ids": rec.ids,
        "tokens": np.array(tokens, dtype=str),
        "vocab": np.array(vocab, dtype=str),
        "surprisal": rec.surprisal,
        "kind": np.array(rec.kind),
    }
    # Into memory, then the atomic writer: given a name, NumPy would append ".npz" to a
    # path without it, and a kill mid-write would leave a broken archive under that name.
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    write_atomic(Path(path), buf.getbuffer())


def dict_entry(token: str) -> str:
    """A token as LSTMVis's dictionary reader can split it back: one whitespace-free word.

    It splits lines on whitespace and reads a line starting with a space as the space
    token; other whitespace is written escaped (a newline as \\n), so each line stays one.
    """
    if token == " ":
        return " "
    escaped = token.encode("unicode_escape").decode("ascii") if not token.isprintable() else token
    return escaped.replace(" ", "\\x20") or "<empty>"


def write_lstmvis(directory: str | Path, rec: Recording, vocab: list[str], title: str) -> Path:
    """Write lstm.yml, states.hdf5, train.hdf5 and train.dict into ``directory``."""
    import h5py  # only this export needs it

    out = Path(directory)
    types = []
    states = io.BytesIO()  # HDF5 written in memory, each file then written atomically
    with h5py.File(states, "w") as f:
        for layer in range(rec.layers):
            n = layer + 1  # LSTMVis counts layers from 1
            f.create_dataset(f"output{n}", data=rec.states["h"][:, layer])
            types.append(f"{{type: output, layer: {n}, path: output{n}, transform: none}}")
            if "c" in rec.states:
                f.create_dataset(f"states{n}", data=rec.states["c"][:, layer])
                types.append(f"{{type: state, layer: {n}, path: states{n}}}")
    ids = io.BytesIO()
    with h5py.File(ids, "w") as f:
        f.create_dataset("word_ids", data=rec.ids.astype(np.int64))
    lines = [f"{dict_entry(tok)} {i}" for i, tok in enumerate(vocab)]
    write_atomic(out / "states.hdf5", states.getbuffer())
    write_atomic(out / "train.hdf5", ids.getbuffer())
    write_atomic(out / "train.dict", ("\n".join(lines) + "\n").encode("utf-8"))
    write_atomic(out / "lstm.yml", _config(title, types).encode("utf-8"))  # last: the project
    return out


def _config(title: str, types: list[str]) -> str:
    # h is tanh(...) already, so it is shown as it is; a cell is unbounded, so LSTMVis's
    # default tanh squashes it into [-1, 1].
    name = title.replace('"', "'")
    listed = ",\n    ".join(types)
    return f"""name: "{name}"
description: "written by charlm inspect units --lstmvis"
files:
  states: states.hdf5
  train: train.hdf5
  words: train.dict
word_sequence:
  file: train
  path: word_ids
  dict_file: words
states:
  file: states
  types: [
    {listed}
  ]
"""
