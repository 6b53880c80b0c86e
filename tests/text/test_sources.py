"""Several files and directories as one corpus: order, joining, skipping, naming, resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from charlm.cli import app
from charlm.data.corpus import read_corpus
from charlm.errors import CharlmError, InputError
from charlm.rundir import checkpoint as ckpt_io
from charlm.text.sources import corpus_name, read_joined
from charlm.training.events import StepEvent
from charlm.training.setup import new_trainer, resume_trainer
from tests.helpers import MICRO_ARGS, micro_config


@pytest.fixture
def tree(tmp_path: Path, corpus_text: str) -> Path:
    """notes/ with text in an order that sorting by name alone would get wrong."""
    root = tmp_path / "notes"
    (root / "b" / "deep").mkdir(parents=True)
    (root / ".git").mkdir()
    half = len(corpus_text) // 2
    a = corpus_text[:half].rstrip("\n")
    (root / "a.txt").write_text(a, encoding="utf-8")  # no newline at its end
    (root / "b" / "deep" / "c.md").write_text(corpus_text[half:], encoding="utf-8")
    (root / "b" / "picture.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(200)))
    (root / "b" / "latin1.txt").write_bytes("caf\xe9\n".encode("latin-1"))
    (root / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (root / ".hidden.txt").write_text("secret\n")
    return root


def test_a_directory_is_every_text_file_inside_in_sorted_order(tree: Path) -> None:
    joined = read_joined([str(tree)])
    assert [p.relative_to(tree).as_posix() for p in joined.files] == ["a.txt", "b/deep/c.md"]
    assert sorted(p.name for p in joined.skipped) == ["latin1.txt", "picture.png"]
    a, c = (tree / "a.txt").read_text(), (tree / "b" / "deep" / "c.md").read_text()
    assert joined.text == a + "\n" + c  # a newline where a file lacks one, nothing else


def test_files_and_directories_join_in_the_order_given(tree: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.txt"
    other.write_text("Zebras sing.\n")
    joined = read_joined([str(other), str(tree)])
    assert joined.files[0] == other
    assert joined.text.startswith("Zebras sing.\nFirst Citizen:")
    assert read_joined([str(tree), str(other)]).text.endswith("people.\nZebras sing.\n")


def test_the_encoding_decides_what_is_text(tree: Path) -> None:
    joined = read_joined([str(tree)], encoding="latin-1")
    assert "latin1.txt" in [p.name for p in joined.files]  # PNG is still refused by its magic


def test_a_named_file_that_is_not_text_is_refused(tree: Path) -> None:
    with pytest.raises(InputError, match="PNG"):
        read_joined([str(tree / "a.txt"), str(tree / "b" / "picture.png")])
    with pytest.raises(InputError, match="stdin"):
        read_joined(["-", str(tree)])
    empty = tree / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no text files"):
        read_joined([str(empty)])


def test_names_and_identity(tree: Path, corpus_file: Path) -> None:
    assert corpus_name([str(tree)]) == "notes"
    assert corpus_name([str(corpus_file), str(tree)]) == "verse+1"
    one = read_corpus([str(corpus_file)])
    assert one.source == str(corpus_file.resolve())  # one file: as before, so old runs resume
    both = read_corpus([str(corpus_file), str(tree)])
    assert both.source == [str(corpus_file.resolve()), str(tree.resolve())]
    (tree / "b" / "deep" / "c.md").write_text("changed\n")
    assert read_corpus([str(corpus_file), str(tree)]).sha256 != both.sha256


def test_the_cli_trains_on_several_sources_and_says_what_it_skipped(
    tree: Path, corpus_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(app, ["train", str(corpus_file), str(tree), *MICRO_ARGS])
    assert r.exit_code == 0, r.output
    assert "skipped 2 file(s) that are not utf-8 text" in r.stderr
    run = tmp_path / "checkpoints" / "verse+1-lstm"
    config = json.loads((run / "config.json").read_text())
    assert config["corpus"] == [str(corpus_file.resolve()), str(tree.resolve())]


def test_a_joined_corpus_resumes_exactly(tree: Path, corpus_file: Path, tmp_path: Path) -> None:
    sources = [str(tree), str(corpus_file)]
    config = micro_config(epochs=1, max_steps=None, eval_every=7)
    straight, _ = new_trainer(config, read_corpus(sources), tmp_path / "a", seed=5)
    straight.run()
    stopped, _ = new_trainer(config, read_corpus(sources), tmp_path / "b", seed=5)

    def stop_midway(e: object) -> None:
        if isinstance(e, StepEvent) and e.step == 9:
            stopped.stop_requested = True

    assert stopped.run(stop_midway).reason == "interrupted"
    resumed, warnings = resume_trainer(tmp_path / "b")  # re-reads the sources from the state
    assert warnings == []
    assert resumed.state.step == 9
    resumed.run()
    a = ckpt_io.load(tmp_path / "a" / ckpt_io.LATEST).model
    b = ckpt_io.load(tmp_path / "b" / ckpt_io.LATEST).model
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_notices_a_changed_directory(tree: Path, tmp_path: Path) -> None:
    config = micro_config(max_steps=3)
    trainer, _ = new_trainer(config, read_corpus([str(tree)]), tmp_path / "r", seed=5)
    trainer.run()
    (tree / "b" / "new.txt").write_text("a file added later\n")
    try:  # a warning today; a refusal once resuming on another corpus is refused (issue 12.12)
        _, warnings = resume_trainer(tmp_path / "r", options={"max_steps": 6})  # not finished
    except CharlmError as e:
        assert "changed" in str(e)
    else:
        assert any("corpus changed" in w for w in warnings)
