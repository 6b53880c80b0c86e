"""`charlm prepare abc --transpose C`: every tune moved, skipped ones counted, results cached."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from charlm.cli import app
from charlm.music import corpus as musiccorpus
from charlm.music.abc import split_tunes
from charlm.music.corpus import transpose_tunes

TUNES = """X:1
T:In G
M:4/4
L:1/8
K:G
GABc dedB|"D"^c2 d2 D4|]

X:2
T:In A minor already
M:6/8
L:1/8
K:Am
ABc ded|cBA A3|]

X:3
T:In E minor
M:6/8
L:1/8
K:Em
EFG ABA|^d2e E3|]

X:4
T:Pipes
M:4/4
L:1/8
K:Hp
ABcd efga|]

X:5
T:In G
M:4/4
L:1/8
K:D
defg abaf|"A"^g2 a2 A4|]
"""


@pytest.fixture(autouse=True)
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("CHARLM_CACHE_DIR", str(cache))
    return cache


def prepare(tmp_path: Path, *extra: str):
    src = tmp_path / "tunes.abc"
    src.write_text(TUNES)
    return CliRunner().invoke(app, ["prepare", "abc", str(src), "--transpose", "C", *extra])


def test_every_tune_is_in_c_or_a_minor_and_the_rest_are_counted(
    tmp_path: Path, cache_dir: Path
) -> None:
    r = prepare(tmp_path)
    assert r.exit_code == 0, r.output
    tunes = {t.title: t for t in split_tunes(r.stdout)}
    assert {t.field("K") for t in tunes.values()} == {"C", "Am"}
    assert "In G" in tunes and "Pipes" not in tunes
    # X:5 is X:1 in D: once both are in C they are the same tune, and one is dropped.
    assert len(tunes) == 3 and tunes["In G"].body == ['cdef gage|"G"^f2 g2 G4|]']
    assert "transposed 4 tunes to C major / A minor (1 then duplicates" in r.stderr
    assert "1 skipped); 0 of 5 read from the cache" in r.stderr
    assert "no key to transpose from (K:Hp) (Pipes)" in r.stderr
    assert str(cache_dir / "abc-transpose-C-v1.json") in r.stderr


def test_a_second_run_reads_the_cache_and_writes_the_same(tmp_path: Path) -> None:
    first, second = prepare(tmp_path, "--seed", "3"), prepare(tmp_path, "--seed", "3")
    assert first.stdout == second.stdout
    assert "5 of 5 read from the cache" in second.stderr


def test_the_cache_holds_each_tune_by_its_hash_and_a_damaged_one_is_remade(
    tmp_path: Path, cache_dir: Path
) -> None:
    tunes = split_tunes(TUNES)[:2]
    out, _ = transpose_tunes(tunes, "C", cache_dir=cache_dir)
    path = cache_dir / "abc-transpose-C-v1.json"
    stored = json.loads(path.read_text())
    assert sorted(text for text, _ in stored.values()) == sorted(t.text() for t in out)
    path.write_text("{not json")
    again, report = transpose_tunes(tunes, "C", cache_dir=cache_dir)
    assert [t.text() for t in again] == [t.text() for t in out] and report.from_cache == 0


def test_many_tunes_go_through_two_workers_with_progress(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(musiccorpus, "POOL_ABOVE", 50)
    one = split_tunes(TUNES)[0].text()
    tunes = [split_tunes(one.replace("T:In G", f"T:{k}").replace("dedB", f"ded{n}"))[0]
             for k in range(30) for n in "ABcd"]  # fmt: skip
    seen: list[tuple[int, int]] = []
    out, report = transpose_tunes(
        tunes, "C", cache_dir=tmp_path, on_progress=lambda d, t: seen.append((d, t))
    )
    assert len(out) == 120 and report.transposed == 120 and seen[-1] == (120, 120)
    alone = transpose_tunes(tunes, "C", cache_dir=tmp_path / "other")[0]
    assert [t.text() for t in out] == [t.text() for t in alone]  # the pool keeps the order


def test_transpose_is_refused_outside_abc_and_for_other_keys(tmp_path: Path) -> None:
    text = tmp_path / "t.txt"
    text.write_text("some text\n")
    r = CliRunner().invoke(app, ["prepare", str(text), "--transpose", "C"])
    assert r.exit_code == 2 and "--transpose goes with 'charlm prepare abc'" in r.stderr
    r = prepare(tmp_path, "--transpose", "D")
    assert r.exit_code == 2 and "the one target is C" in r.stderr and not r.stdout
