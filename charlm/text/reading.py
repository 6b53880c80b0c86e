"""Reading text files (or stdin) into clean strings, with one-line errors for bad input."""

from __future__ import annotations

import codecs
import sys
from pathlib import Path

from charlm.errors import InputError

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
}


def read_bytes(source: str | Path) -> bytes:
    """Bytes of a file, or of stdin when ``source`` is '-'."""
    if str(source) == "-":
        if sys.stdin is None or sys.stdin.closed:
            raise InputError("stdin is closed: pipe text in, or give a file name")
        return sys.stdin.buffer.read()
    path = Path(source)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file; check the path") from None
    except IsADirectoryError:
        raise InputError(f"{path} is a directory: give a text file inside it") from None
    except OSError as e:  # permissions, a name too long, a file where a directory should be
        raise InputError(f"{path}: cannot read it ({e.strerror}); check the path") from None
    except ValueError:  # a NUL byte in the name
        raise InputError(f"{path!r} is not a possible file name; check the path") from None


def is_utf8(encoding: str) -> bool:
    """Whether an encoding name means UTF-8 however it is spelled (UTF8, utf_8, Utf-8)."""
    return encoding.lower().replace("-", "").replace("_", "") == "utf8"


def decode(data: bytes, encoding: str, name: str) -> str:
    """Decode strictly, naming the byte offset of the first bad byte."""
    for magic, what in _BINARY_MAGIC.items():
        if data.startswith(magic):
            raise InputError(f"{name} looks like {what}, not text: decompress or convert it first")
    skip = 0  # a UTF-8 byte-order mark is harmless: dropped
    if is_utf8(encoding):
        for bom, enc in _BOMS:
            if data.startswith(bom):
                raise InputError(
                    f"{name} starts with a {enc.upper()} byte-order mark: "
                    f"pass --encoding {enc}, or convert it to UTF-8"
                )
        skip = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
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
        raise InputError(f"{name} contains NUL bytes: it looks binary, not text")
    return normalize_newlines(text)


def normalize_newlines(text: str) -> str:
    """Windows (CRLF) and old Mac (CR) line ends as \\n: the one place charlm does this."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def read_text(source: str | Path, encoding: str = "utf-8") -> str:
    name = "stdin" if str(source) == "-" else str(source)
    return decode(read_bytes(source), encoding, name)
