"""Bad checkpoints through every command that reads one: one line, exit 1, no code run.

test_checkpoint.py covers the library's refusals (truncated, random, newer version, a
pickle); here each reaches the user as one line, from sample, prime, evaluate and train.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from charlm.cli import app
from charlm.rundir import checkpoint as ckpt_io
from tests.helpers import MICRO_ARGS
from tests.helpers.results import one_line_error

runner = CliRunner()


def invoke(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args))


def every_reader(path: Path, corpus_file: Path, tmp_path: Path) -> dict[str, list[str]]:
    """The command lines that load ``path``: generation, scoring and both ways of training."""
    out, micro = str(tmp_path / "new-run"), MICRO_ARGS
    return {
        "sample": ["sample", str(path), "-n", "5"],
        "prime": ["prime", str(path), "All:", "-n", "5"],
        "evaluate": ["evaluate", str(path), str(corpus_file)],
        "init-from": ["train", str(corpus_file), "--init-from", str(path), "--out", out, *micro],
        "resume": ["train", "--resume", str(path)],
    }


READERS = ["sample", "prime", "evaluate", "init-from", "resume"]


def _damage(kind: str, best: Path, path: Path) -> str:
    """Write a damaged copy of ``best`` to ``path``; return a phrase the error must hold."""
    data = best.read_bytes()
    if kind == "missing":
        return "no such checkpoint; train one with 'charlm train CORPUS'"
    if kind == "truncated":
        path.write_bytes(data[: len(data) // 2])
        return "truncated or another format"
    if kind == "random":
        path.write_bytes(os.urandom(4096))
        return "not a charlm checkpoint"
    if kind == "empty":
        path.write_bytes(b"")
        return "not a charlm checkpoint"
    if kind == "newer":
        ck = ckpt_io.load(best)
        tensors, meta = ckpt_io._flatten(ck)
        meta["format_version"] = "7"
        from safetensors.torch import save

        path.write_bytes(save(tensors, metadata=meta))
        return "format version 7, newer than this charlm reads (1): upgrade charlm"
    if kind == "shapes":
        ck = ckpt_io.load(best)
        ck.config.model.hidden_size *= 2  # the config now describes a wider network
        ckpt_io.save(ck, path)
        return "has shape (35, 16), but the config stored with it needs (35, 32)"
    raise AssertionError(kind)


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("kind", ["missing", "truncated", "random", "empty", "newer", "shapes"])
def test_a_bad_checkpoint_is_one_line_for_every_reader(
    trained_run: Path, corpus_file: Path, tmp_path: Path, kind: str, reader: str
) -> None:
    path = tmp_path / "bad" / ckpt_io.LATEST  # --resume wants a latest checkpoint
    if kind != "missing":
        path.parent.mkdir()
    phrase = _damage(kind, trained_run / ckpt_io.LATEST, path)
    target = path.parent if reader == "resume" else path
    args = every_reader(target, corpus_file, tmp_path)[reader]
    one_line_error(invoke(*args), phrase)
    assert not (tmp_path / "new-run").exists()


class _Payload:
    """Unpickling this calls Path.touch(marker): proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (Path.touch, (self.marker,))


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("fmt", ["torch.save", "pickle"])
def test_a_pickle_that_would_run_code_is_refused_unrun(
    corpus_file: Path, tmp_path: Path, fmt: str, reader: str
) -> None:
    marker = tmp_path / "code-ran"
    evil = tmp_path / "model.pt"
    payload = {"model": _Payload(marker), "weight": torch.zeros(2)}
    if fmt == "torch.save":
        torch.save(payload, evil)
        # The trap is real: plain torch.load (weights_only=False) runs it.
        torch.load(evil, weights_only=False)
        assert marker.exists()
        marker.unlink()
    else:
        evil.write_bytes(pickle.dumps(payload))
    target = evil
    if reader == "resume":  # a run directory whose latest checkpoint was swapped for it
        target = tmp_path / "run"
        target.mkdir()
        evil.rename(target / ckpt_io.LATEST)
    args = every_reader(target, corpus_file, tmp_path)[reader]
    one_line_error(invoke(*args), "pickle", "never unpickles", ".safetensors")
    assert not marker.exists()


def test_a_directory_without_checkpoints_names_the_fix(tmp_path: Path) -> None:
    (tmp_path / "empty-run").mkdir()
    one_line_error(invoke("sample", str(tmp_path / "empty-run")), "holds no checkpoint",
                   "charlm train CORPUS")  # fmt: skip


def test_a_tokenizer_that_disagrees_with_the_model_is_refused(
    trained_run: Path, tmp_path: Path
) -> None:
    ck = ckpt_io.load(trained_run / ckpt_io.BEST)
    ck.tokenizer["chars"] = ck.tokenizer["chars"][:-3]  # ids the decoder cannot spell
    ckpt_io.save(ck, tmp_path / "c.safetensors")
    one_line_error(invoke("sample", str(tmp_path / "c.safetensors")),
                   "its tokenizer has 32 tokens but its model 35")  # fmt: skip


def test_a_best_only_checkpoint_cannot_be_resumed(trained_run: Path) -> None:
    (trained_run / ckpt_io.LATEST).unlink()
    one_line_error(invoke("train", "--resume", str(trained_run)), "no resumable checkpoint")
