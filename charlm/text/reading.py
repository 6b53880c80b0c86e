"""Reading text files (or stdin) into clean strings, with one-line errors for bad input.

What charlm reads into memory is bounded, and refused early when it cannot be text:
- a path must name a regular file: a device (/dev/zero), a named pipe, a socket or a
  directory is refused before it is opened (opening a pipe with no writer waits forever);
  to read a pipe, give ``-`` and pipe it into stdin;
- the first chunk is looked at before the rest is read: a known binary format, a
  byte-order mark of another encoding, or NUL bytes end the read at once, saying
  "binary" before any advice about encodings (which cannot make binary data text);
- at most ``MAX_READ_BYTES`` of one source is held: a larger file is refused by its size
  before reading, endless stdin once it passes the limit. `charlm train` streams a single
  corpus file larger than 64 MiB from disk instead (charlm.data.token_cache).
"""

from __future__ import annotations

import codecs
import stat
import sys
from pathlib import Path
from typing import BinaryIO

from charlm.errors import InputError

# The most charlm holds of one input in memory. A corpus that size already needs several
# times it once split and tokenised; anything larger is a mistake or a stream.
MAX_READ_BYTES = 1 << 30
CHUNK_BYTES = 1 << 20  # what is read at a time; the first chunk is checked before the rest

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_BINARY_MAGIC = {
    b"\x89PNG": "a PNG image",
    b"\x1f\x8b": "gzip-compressed data",
    b"PK\x03\x04": "a zip archive",
    b"%PDF": "a PDF document",
    b"\xff\xd8\xff": "a JPEG image",
    b"BZh": "bzip2-compressed data",
    b"\xfd7zXZ": "xz-compressed data",
    b"\x28\xb5\x2f\xfd": "zstd-compressed data",
    b"7z\xbc\xaf\x27\x1c": "a 7-zip archive",
    b"\x7fELF": "an ELF executable",
    b"\x93NUMPY": "a NumPy array",
    b"\x89HDF\r\n\x1a\n": "an HDF5 file",
    b"SQLite format 3\x00": "an SQLite database",
    b"GIF8": "a GIF image",
}
# Kinds of path that are not regular files, and what to give instead.
_NOT_FILES = (
    (stat.S_ISDIR, "a directory", "give a text file inside it"),
    (stat.S_ISCHR, "a character device", "give a text file"),
    (stat.S_ISBLK, "a block device", "give a text file"),
    (stat.S_ISFIFO, "a named pipe", "to read a pipe, give - and pipe it in"),
    (stat.S_ISSOCK, "a socket", "give a text file"),
)


def read_bytes(source: str | Path, encoding: str = "utf-8") -> bytes:
    """Bytes of a regular file, or of stdin when ``source`` is '-' (see the module's rules).

    ``encoding`` tells the first chunk's check whether NUL bytes can be text (UTF-16/32).
    """
    if str(source) == "-":
        if sys.stdin is None or sys.stdin.closed:
            raise InputError("stdin is closed: pipe text in, or give a file name")
        return _read_stream(sys.stdin.buffer, encoding)
    path = Path(source)
    size = _regular_size(path)
    if size > MAX_READ_BYTES:
        raise InputError(
            f"{path} is {size / 1e6:,.1f} MB, more than the {_mib(MAX_READ_BYTES)} charlm "
            "reads into memory: give a part of it (charlm train streams one large file)"
        )
    try:
        with open(path, "rb") as f:
            sniff(f.read(CHUNK_BYTES), encoding, str(path))
            f.seek(0)
            return f.read()
    except OSError as e:  # permissions, a name too long, a file where a directory should be
        raise InputError(f"{path}: cannot read it ({e.strerror}); check the path") from None


def _regular_size(path: Path) -> int:
    """The size of the regular file at ``path``; anything else is refused, unopened."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file; check the path") from None
    except OSError as e:
        raise InputError(f"{path}: cannot read it ({e.strerror}); check the path") from None
    except ValueError:  # a NUL byte in the name
        raise InputError(f"{path!r} is not a possible file name; check the path") from None
    kind = special_kind(st.st_mode)
    if kind is not None:
        fix = next(fix for _, what, fix in _NOT_FILES if what == kind)
        raise InputError(f"{path} is {kind}, not a file: {fix}")
    return st.st_size


def special_kind(mode: int) -> str | None:
    """What a path of this ``st_mode`` is when it is not a regular file ("a named pipe")."""
    return next((what for is_kind, what, _ in _NOT_FILES if is_kind(mode)), None)


def _read_stream(stream: BinaryIO, encoding: str) -> bytes:
    """A pipe read chunk by chunk: checked after the first, refused past the limit."""
    parts, size = [], 0
    while chunk := stream.read(CHUNK_BYTES):
        if not parts:
            sniff(chunk, encoding, "stdin")
        size += len(chunk)
        if size > MAX_READ_BYTES:
            raise InputError(
                f"stdin gave more than {_mib(MAX_READ_BYTES)}, the most charlm reads from a "
                "pipe: save it to a file and give its name (charlm train streams a large file)"
            )
        parts.append(chunk)
    return b"".join(parts)


def _mib(n: int) -> str:
    return f"{n / (1 << 30):g} GiB" if n >= 1 << 30 else f"{n / (1 << 20):g} MiB"


def sniff(head: bytes, encoding: str, name: str) -> None:
    """Refuse from its first bytes what is plainly not text in ``encoding``: a known binary
    format, a byte-order mark naming another encoding, NUL bytes. Binary is said first."""
    for magic, what in _BINARY_MAGIC.items():
        if head.startswith(magic):
            packed = "compressed" in what or "archive" in what
            fix = "decompress it first" if packed else "give a text file, or convert it to text"
            raise InputError(f"{name} looks like {what}: binary, not text; {fix}")
    if is_utf8(encoding):
        for bom, enc in _BOMS:
            if head.startswith(bom):
                raise InputError(
                    f"{name} starts with a {enc.upper()} byte-order mark: "
                    f"pass --encoding {enc}, or convert it to UTF-8"
                )
    if _is_wide(encoding):
        head_text = codecs.getincrementaldecoder(encoding)(errors="replace").decode(head)
        if "\x00" in head_text:
            raise _binary(name)
    elif b"\x00" in head:
        raise _binary(name)


def _is_wide(encoding: str) -> bool:
    """Whether ``encoding`` writes text with NUL bytes (UTF-16, UTF-32): then NULs are no sign."""
    try:
        return b"\x00" in "a".encode(encoding)
    except LookupError as e:
        raise InputError(f"unknown encoding '{encoding}': try utf-8 or latin-1") from e


def _binary(name: str) -> InputError:
    return InputError(f"{name} contains NUL bytes: it looks binary, not text")


def is_utf8(encoding: str) -> bool:
    """Whether an encoding name means UTF-8 however it is spelled (UTF8, utf_8, Utf-8)."""
    return encoding.lower().replace("-", "").replace("_", "") == "utf8"


def decode(data: bytes, encoding: str, name: str) -> str:
    """Decode strictly, naming the byte offset of the first bad byte; binary is said first."""
    sniff(data[:CHUNK_BYTES], encoding, name)
    if not _is_wide(encoding) and b"\x00" in data:
        raise _binary(name)  # anywhere in the file: no encoding makes it text
    # A UTF-8 byte-order mark is harmless: dropped.
    skip = len(codecs.BOM_UTF8) if is_utf8(encoding) and data.startswith(codecs.BOM_UTF8) else 0
    try:
        text = data[skip:].decode(encoding)
    except LookupError as e:
        raise InputError(f"unknown encoding '{encoding}': try utf-8 or latin-1") from e
    except UnicodeDecodeError as e:
        at = skip + e.start  # messages name the user's encoding and offsets in the file
        raise InputError(
            f"{name} is not valid {encoding}: bad byte 0x{data[at]:02x} at byte offset "
            f"{at}; pass the right --encoding (e.g. latin-1) or fix the file"
        ) from e
    if "\x00" in text:
        raise _binary(name)
    return normalize_newlines(text)


def normalize_newlines(text: str) -> str:
    """Windows (CRLF) and old Mac (CR) line ends as \\n: the one place charlm does this."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def read_text(source: str | Path, encoding: str = "utf-8") -> str:
    name = "stdin" if str(source) == "-" else str(source)
    return decode(read_bytes(source, encoding), encoding, name)
