"""A corpus made of several files: files and directories as named, joined into one text.

`charlm train a.txt b.txt notes/` trains on a.txt, then b.txt, then every text file under
notes/ (recursively, sorted by path, so the order is the same on every machine and every
resume). Each file that does not end with a newline gets one, so that the last line of one
file never runs into the first line of the next; nothing else marks the boundary.

Inside a directory, files that are not text in the run's encoding (images, archives, invalid
bytes) are skipped and counted, and hidden files and directories (``.git``, ``.DS_Store``)
are passed over; a file named on the command line must be text, or it is refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from charlm.errors import InputError
from charlm.text.reading import read_text


@dataclass
class JoinedText:
    text: str
    files: list[Path]  # the files read, in the order joined
    skipped: list[Path] = field(default_factory=list)  # in directories, not text: left out


def is_several(sources: list[str]) -> bool:
    """Whether the sources make a joined corpus, not the one file (or stdin) of old."""
    return len(sources) > 1 or (len(sources) == 1 and Path(sources[0]).is_dir())


def corpus_name(sources: list[str]) -> str:
    """Names the run: the file's or directory's name, and '+N' for N more sources."""
    first = Path(sources[0])
    name = (first.name if first.is_dir() else first.stem) or "corpus"
    return name if len(sources) == 1 else f"{name}+{len(sources) - 1}"


def read_joined(sources: list[str], encoding: str = "utf-8") -> JoinedText:
    """Every file of ``sources`` read and joined (see the module's docstring)."""
    if "-" in sources:
        raise InputError("stdin (-) cannot be joined with files: give files and directories only")
    joined = JoinedText("", [])
    parts: list[str] = []
    for source in sources:
        path = Path(source)
        if not path.exists():
            raise InputError(f"{path}: no such file or directory; check the path")
        for file in _files_under(path) if path.is_dir() else [path]:
            text = _read_one(file, encoding, named=not path.is_dir())
            if text is None:
                joined.skipped.append(file)
                continue
            joined.files.append(file)
            parts.append(text if not text or text.endswith("\n") else text + "\n")
    if not joined.files:
        raise InputError(
            f"no text files in {', '.join(sources)} ({len(joined.skipped)} file(s) skipped as "
            f"not {encoding} text): give files that hold text, or the right --encoding"
        )
    joined.text = "".join(parts)
    return joined


def files_in(sources: list[str]) -> list[str]:
    """``sources`` with each directory replaced by the files below it, in the order training
    joins them: for commands that take each file on its own (evaluate scores each)."""
    files: list[str] = []
    for source in sources:
        path = Path(source)
        if source == "-" or not path.is_dir():
            files.append(source)
            continue
        inside = _files_under(path)
        if not inside:
            raise InputError(f"{path} holds no files: give text files or a directory of them")
        files.extend(str(f) for f in inside)
    return files


def _files_under(directory: Path) -> list[Path]:
    """Files below ``directory``, hidden ones and those in hidden directories left out."""
    inside = {p.relative_to(directory): p for p in directory.rglob("*") if p.is_file()}
    visible = [r for r in inside if not any(part.startswith(".") for part in r.parts)]
    # Sorted by the path as text: the same order on every file system and every resume.
    return [inside[r] for r in sorted(visible, key=lambda r: r.as_posix())]


def _read_one(file: Path, encoding: str, named: bool) -> str | None:
    """The file's text; None for a non-text file found in a directory (a named one fails)."""
    try:
        return read_text(file, encoding)
    except InputError:
        if named:
            raise
        return None
