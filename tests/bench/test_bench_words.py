"""bench/words.py and its WikiText-style corpus: the plumbing, without word_language_model."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from bench import words
from bench.wikistyle import make_corpus, tokenise_line
from charlm.text.pretokenised import choose_word_split
from tests.helpers.texts import VERSE


def test_lines_are_lowercased_and_split_as_wikitext_does() -> None:
    assert tokenise_line("Well-a-day, O'er the hills - lo!") == [
        "well", "@-@", "a", "@-@", "day", ",", "o'er", "the", "hills", "-", "lo", "!",
    ]  # fmt: skip


def test_the_corpus_marks_rare_words_and_reads_as_pretokenised() -> None:
    parts = make_corpus(VERSE * 40 + "Zounds, the rare word.\n", min_count=3, eval_share=0.05)
    lines = {k: v.splitlines() for k, v in parts.items()}
    assert len(lines["valid"]) == len(lines["test"]) == round(len(lines["train"]) / 18)
    assert lines["test"][-1] == "<unk> , the <unk> <unk> ."  # seen once: <unk> everywhere
    assert all(v.endswith("\n") for v in parts.values())
    assert choose_word_split("auto", parts["train"])[0] == "whitespace"


def test_wlm_bits_per_char_come_from_its_perplexity_and_the_shared_count(tmp_path: Path) -> None:
    (tmp_path / "wlm.log").write_text(
        "| end of epoch   1 | time: 9.00s | valid loss  5.00 | valid ppl   148.41\n"
        "=========================================================================\n"
        "| End of training | test loss  4.61 | test ppl   100.00\n"
    )
    got = words.wlm_result(tmp_path, scored_tokens=1000, scored_chars=4000)
    assert got["test_ppl_per_word"] == 100.0 and got["epochs_finished"] == 1
    assert got["test_bits_per_char"] == pytest.approx(1000 * math.log2(100) / 4000, abs=1e-4)
    (tmp_path / "wlm.log").write_text("Traceback: FileNotFoundError model.pt\n")
    assert "did it finish an epoch" in words.wlm_result(tmp_path, 1, 1)["error"]


def test_without_the_reference_code_the_section_says_how_to_enable_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CHARLM_WLM_DIR", raising=False)
    assert "CHARLM_WLM_DIR" in words.run()["skipped"]
    monkeypatch.setenv("CHARLM_WLM_DIR", str(tmp_path))  # no main.py there
    assert words.reference_dir(None) is None
    for name in ("main.py", "data.py", "model.py"):
        (tmp_path / name).write_text("")
    assert words.reference_dir(None) == tmp_path
    assert words.main(["--wlm", str(tmp_path / "nowhere")]) == 2
