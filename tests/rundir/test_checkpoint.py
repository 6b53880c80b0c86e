"""Checkpoints: self-contained, atomic, no pickle."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

from charlm.data.tokenizers import CharTokenizer, tokenizer_from_dict
from charlm.errors import CheckpointError, OutputError
from charlm.models.lm import RNNLM
from charlm.rundir import atomic
from charlm.rundir import checkpoint as ckpt_io
from charlm.rundir.checkpoint import Checkpoint
from tests.helpers import micro_config


def _checkpoint(tie: bool = False) -> Checkpoint:
    config = micro_config()
    config.model.vocab_size = 5
    if tie:
        config.model.embed_size = config.model.hidden_size = 8
        config.model.tie_weights = True
    model = RNNLM(config.model)
    opt = torch.optim.AdamW(model.parameters())
    x, y = torch.zeros(2, 3, dtype=torch.long), torch.ones(2, 3, dtype=torch.long)
    model(x, targets=y).nll.sum().backward()
    opt.step()
    return Checkpoint(
        config=config,
        tokenizer=CharTokenizer(list("abcde")).to_dict(),
        model=model.state_dict(),
        state={"step": 7, "seed": 1},
        optimizer=opt.state_dict(),
        hidden=[torch.randn(2, 4, 16), torch.randn(2, 4, 16)],
        rng={"torch": torch.get_rng_state()},
    )


@pytest.mark.parametrize("tie", [False, True])
def test_round_trip_restores_everything(tmp_path: Path, tie: bool) -> None:
    ck = _checkpoint(tie)
    ckpt_io.save(ck, tmp_path / "c.safetensors")
    back = ckpt_io.load(tmp_path / "c.safetensors")
    assert back.config == ck.config and back.state == ck.state
    assert tokenizer_from_dict(back.tokenizer).decode([0, 4]) == "ae"
    for k, v in ck.model.items():
        assert torch.equal(back.model[k], v)
    assert all(torch.equal(a, b) for a, b in zip(back.hidden, ck.hidden, strict=True))
    assert torch.equal(back.rng["torch"], ck.rng["torch"])
    model = RNNLM(back.config.model)
    model.load_state_dict(back.model)
    opt = torch.optim.AdamW(model.parameters())
    opt.load_state_dict(back.optimizer)
    assert opt.state_dict()["state"][0]["exp_avg"].equal(ck.optimizer["state"][0]["exp_avg"])


def test_failed_write_leaves_the_previous_file_and_no_temporary(
    tmp_path: Path, monkeypatch
) -> None:
    path = tmp_path / "c.safetensors"
    ckpt_io.save(_checkpoint(), path)
    before = path.read_bytes()

    def boom(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", boom)
    with pytest.raises(OutputError, match=f"cannot write {path} .*free disk space"):
        ckpt_io.save(_checkpoint(), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["c.safetensors"]


class _Exploit:
    def __reduce__(self) -> tuple:
        return (Path.touch, (Path(self.target),))


def test_a_pickle_is_refused_without_running_it(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    exploit = _Exploit()
    exploit.target = str(marker)
    bad = tmp_path / "evil.pt"
    bad.write_bytes(pickle.dumps({"model": exploit}))
    with pytest.raises(CheckpointError, match="not a charlm checkpoint"):
        ckpt_io.load(bad)
    assert not marker.exists()


def test_truncated_and_random_files_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.safetensors"
    ckpt_io.save(_checkpoint(), path)
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(CheckpointError, match="truncated or another format"):
        ckpt_io.load(path)
    path.write_bytes(b"\x00\x01" * 50)
    with pytest.raises(CheckpointError):
        ckpt_io.load(path)


def test_newer_format_version_is_refused(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(ckpt_io, "FORMAT_VERSION", 99)
    ckpt_io.save(_checkpoint(), tmp_path / "c.safetensors")
    monkeypatch.setattr(ckpt_io, "FORMAT_VERSION", 1)
    with pytest.raises(CheckpointError, match=r"version 99.*upgrade charlm"):
        ckpt_io.load(tmp_path / "c.safetensors")


def test_resolve_and_find_latest(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="charlm train"):
        ckpt_io.find_latest(tmp_path)
    for name in ("a", "b"):
        ckpt_io.save(_checkpoint(), tmp_path / name / ckpt_io.BEST)
    assert ckpt_io.find_latest(tmp_path) == tmp_path / "b" / ckpt_io.BEST
    assert ckpt_io.resolve(tmp_path / "a") == tmp_path / "a" / ckpt_io.BEST
