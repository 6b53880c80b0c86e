"""The folk-tune corpus behind ``charlm prepare abc``: ABC files in, one clean text out.

By default the tunes come from the ABC files the music21 package ships in its corpus
folder (Ryan's Mammoth Collection, O'Neill's 1850, the Essen folk songs, Aird's airs and
others; about 13,000 tunes), read as data files: nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import util
from pathlib import Path

from charlm.data.token_cache import cache_root
from charlm.errors import InputError
from charlm.extras import require
from charlm.music.abc import CleanReport, Tune, clean_tunes, join_tunes, split_tunes
from charlm.music.check import fits_meter
from charlm.music.transpose import TARGETS, TransposeError, transpose_tune
from charlm.rundir.atomic import write_atomic
from charlm.text.reading import read_bytes

# Raise when charlm.music.transpose writes anything differently: the cache file is named for it.
TRANSPOSER_VERSION = 1
WORKERS = 2
# A tune is kept when at least this share of its bars have its meter's length. About 7% of
# music21's tunes fall below it, mostly Essen songs whose bars change meter unmarked; a
# model trained on them writes such tunes too (docs/records/music.md).
MIN_BARS_RIGHT = 0.9
POOL_ABOVE = 500  # fewer tunes than this to transpose: a pool costs more than it saves
Progress = Callable[[int, int], None]  # (tunes done, tunes in all)


@dataclass
class TransposeReport:
    target: str
    transposed: int = 0
    from_cache: int = 0
    duplicates: int = 0  # a tune written in two keys is one tune once both are in C
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (tune title, reason)
    cache: Path | None = None


@dataclass
class ABCCorpus:
    text: str
    report: CleanReport
    files: int
    collections: list[str] = field(default_factory=list)
    transposed: TransposeReport | None = None


def music21_collections() -> dict[str, list[Path]]:
    """music21's corpus ABC files by collection (the folder under corpus/), sorted."""
    require("music21", "charlm prepare abc without ABC files (music21's collections)")
    spec = util.find_spec("music21")
    if spec is None or not spec.submodule_search_locations:  # a module, not the package
        raise InputError("music21 is not the package charlm knows: name ABC files to read")
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


def build_corpus(
    files: list[Path | str],
    seed: int = 0,
    transpose: str | None = None,
    on_progress: Progress | None = None,
    min_bars_right: float = MIN_BARS_RIGHT,
) -> ABCCorpus:
    """Split, clean and deduplicate every tune, drop those whose bars do not fit their meter
    (``min_bars_right``, 0 keeps them), maybe transpose them, then shuffle with ``seed``.

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
    if min_bars_right > 0:
        fitting = [t for t in kept if fits_meter(t, min_bars_right)]
        if not fitting:
            raise InputError(
                f"none of the {len(tunes)} tune(s) has {min_bars_right:.0%} of its bars of its "
                "meter's length: lower --min-bars-right (0 keeps every tune)"
            )
        report.off_meter, report.tunes_out = len(kept) - len(fitting), len(fitting)
        kept = fitting
    moved = None
    if transpose is not None:
        kept, moved = transpose_tunes(kept, transpose, on_progress=on_progress)
    random.Random(seed).shuffle(kept)
    return ABCCorpus(join_tunes(kept), report, len(files), transposed=moved)


def transpose_tunes(
    tunes: list[Tune],
    target: str,
    cache_dir: Path | None = None,
    on_progress: Progress | None = None,
) -> tuple[list[Tune], TransposeReport]:
    """Every tune in ``target`` (``music.transpose``'s rule), in order; those it cannot, left out.

    Results are cached by each tune's content hash in one JSON file under ``cache_dir``
    (charlm's cache directory by default), so preparing the corpus again costs no
    transposing; what is not cached is shared among two worker processes.
    """
    if target not in TARGETS:
        raise InputError(f"--transpose {target}: the one target is C (C major, A minor)")
    report = TransposeReport(target)
    report.cache = (
        cache_dir or cache_root()
    ) / f"abc-transpose-{target}-v{TRANSPOSER_VERSION}.json"
    cache = _load_cache(report.cache)
    texts = [t.text() for t in tunes]
    keys = [hashlib.sha256(t.encode("utf-8")).hexdigest() for t in texts]
    todo = sorted({k: t for k, t in zip(keys, texts, strict=True) if k not in cache}.items())
    report.from_cache = len(tunes) - sum(1 for k in keys if k not in cache)
    done = _transpose_texts([t for _, t in todo], on_progress)
    cache.update({k: list(r) for (k, _), r in zip(todo, done, strict=True)})
    if todo:
        _save_cache(report.cache, cache)
    out: list[Tune] = []
    seen: set[str] = set()
    for tune, key in zip(tunes, keys, strict=True):
        text, reason = cache[key]
        if reason:
            report.skipped.append((tune.title or "untitled", f"tune {tune.number}: {reason}"))
        elif text.split("\n", 1)[1] in seen:  # all but the X: line, as clean_tunes compares
            report.duplicates += 1
        else:
            seen.add(text.split("\n", 1)[1])
            out.append(split_tunes(text)[0])
    report.transposed = len(out) + report.duplicates
    return out, report


def _transpose_one(text: str) -> tuple[str, str]:
    """(the transposed text, '') or ('', why not): what a worker sends back."""
    try:
        return transpose_tune(text), ""
    except TransposeError as e:
        return "", str(e)


def _transpose_texts(texts: list[str], on_progress: Progress | None) -> list[tuple[str, str]]:
    if len(texts) < POOL_ABOVE:
        out = [_transpose_one(t) for t in texts]
        if on_progress and texts:
            on_progress(len(texts), len(texts))
        return out
    out = []
    with multiprocessing.Pool(WORKERS) as pool:
        for result in pool.imap(_transpose_one, texts, chunksize=100):
            out.append(result)
            if on_progress and (len(out) % 100 == 0 or len(out) == len(texts)):
                on_progress(len(out), len(texts))
    return out


def _load_cache(path: Path) -> dict[str, list[str]]:
    """The cached results, or none when the file is missing or unreadable (it is remade)."""
    try:
        found = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(found, dict):
        return {}
    return {k: v for k, v in found.items() if _is_result(v)}  # a damaged entry is redone


def _is_result(value: object) -> bool:
    return isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value)


def _save_cache(path: Path, cache: dict[str, list[str]]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps(cache).encode("utf-8"))
    except OSError:
        pass  # a cache that cannot be written costs time next run, nothing else
