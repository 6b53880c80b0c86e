"""The folk-tune corpus behind ``charlm prepare abc``: ABC files in, one clean text out.

By default the tunes come from the ABC files the music21 package ships in its corpus
folder (Ryan's Mammoth Collection, O'Neill's 1850, the Essen folk songs, Aird's airs and
others; about 13,000 tunes), read as data files: nothing is downloaded.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from importlib import util
from pathlib import Path

from charlm.abc import CleanReport, Tune, clean_tunes, join_tunes, split_tunes
from charlm.textio import InputError, read_bytes


@dataclass
class ABCCorpus:
    text: str
    report: CleanReport
    files: int
    collections: list[str] = field(default_factory=list)


def music21_collections() -> dict[str, list[Path]]:
    """music21's corpus ABC files by collection (the folder under corpus/), sorted."""
    spec = util.find_spec("music21")
    if spec is None or not spec.submodule_search_locations:
        raise InputError(
            "the music21 package is not installed: run 'make install' (or pip install music21), "
            "or name ABC files to read"
        )
    root = Path(next(iter(spec.submodule_search_locations))) / "corpus"
    found: dict[str, list[Path]] = {}
    for path in sorted(root.rglob("*.abc")):
        found.setdefault(path.relative_to(root).parts[0], []).append(path)
    if not found:
        raise InputError(f"no ABC files under {root}: reinstall music21, or name ABC files")
    return found


def pick_collections(available: dict[str, list[Path]], wanted: list[str]) -> dict[str, list[Path]]:
    if not wanted:
        return available
    lower = {k.lower(): k for k in available}
    unknown = [w for w in wanted if w.lower() not in lower]
    if unknown:
        raise InputError(
            f"unknown collection(s) {', '.join(unknown)}: choose from {', '.join(available)}"
        )
    return {lower[w.lower()]: available[lower[w.lower()]] for w in wanted}


def abc_files(sources: list[str]) -> list[Path | str]:
    """Files named, and every .abc file under directories named, in a stable order."""
    out: list[Path | str] = []
    for s in sources:
        path = Path(s)
        if s != "-" and path.is_dir():
            inside = sorted(path.rglob("*.abc"))
            if not inside:
                raise InputError(f"{path} holds no .abc files")
            out += inside
        else:
            out.append(s)
    return out


def read_abc(source: Path | str) -> str:
    """An ABC file's text: UTF-8, or Latin-1 as older collections are written."""
    data = read_bytes(source)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def build_corpus(files: list[Path | str], seed: int = 0) -> ABCCorpus:
    """Split, clean and deduplicate every tune, then shuffle them with ``seed``.

    The shuffle is what makes the validation split (the corpus's tail) a sample of every
    collection rather than the last collection read.
    """
    tunes: list[Tune] = []
    for f in files:
        tunes += split_tunes(read_abc(f))
    if not tunes:
        raise InputError("no ABC tunes found (a tune starts with an 'X:' line): is this ABC?")
    kept, report = clean_tunes(tunes)
    if not kept:
        raise InputError(f"none of the {len(tunes)} tune(s) could be read as ABC")
    random.Random(seed).shuffle(kept)
    return ABCCorpus(join_tunes(kept), report, len(files))
