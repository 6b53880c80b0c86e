"""Writing a recording for other tools: a NumPy archive, and the files LSTMVis reads.

LSTMVis (Strobelt et al.) opens a directory holding ``lstm.yml``, an HDF5 file of states
(one (T, H) table per layer and type, ``state`` for the cell, ``output`` for h), an HDF5 file
of token ids (``word_ids``) and a dictionary of ``token id`` lines.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from charlm.inspection.recording import Recording


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
    # Through an open file: given a name, NumPy would append ".npz" to a path without it.
    with open(path, "wb") as f:
        np.savez_compressed(f, **arrays)


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
    out.mkdir(parents=True, exist_ok=True)
    types = []
    with h5py.File(out / "states.hdf5", "w") as f:
        for layer in range(rec.layers):
            n = layer + 1  # LSTMVis counts layers from 1
            f.create_dataset(f"output{n}", data=rec.states["h"][:, layer])
            types.append(f"{{type: output, layer: {n}, path: output{n}, transform: none}}")
            if "c" in rec.states:
                f.create_dataset(f"states{n}", data=rec.states["c"][:, layer])
                types.append(f"{{type: state, layer: {n}, path: states{n}}}")
    with h5py.File(out / "train.hdf5", "w") as f:
        f.create_dataset("word_ids", data=rec.ids.astype(np.int64))
    lines = [f"{dict_entry(tok)} {i}" for i, tok in enumerate(vocab)]
    (out / "train.dict").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (out / "lstm.yml").write_text(_config(title, types), encoding="utf-8")
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
