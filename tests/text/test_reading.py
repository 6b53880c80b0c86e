"""Reading input: binary said first, non-regular files refused before they are opened, and no
source read past the limit charlm holds in memory (an endless pipe ends in one line)."""

from __future__ import annotations

import io
import os
import socket
from pathlib import Path

import pytest

from charlm.errors import InputError
from charlm.text import reading
from charlm.text.reading import decode, read_bytes, read_text

ELF = b"\x7fELF\x02\x01\x01\x00" + bytes(8) + b"\x02\x00\x3e\x00\x01\xff\xfe" + bytes(range(256))


class Endless(io.RawIOBase):
    """A pipe that never ends: ``fill`` forever, counting what was taken from it."""

    def __init__(self, fill: bytes) -> None:
        self.fill, self.taken = fill, 0

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:  # type: ignore[no-untyped-def]
        n = len(b)
        b[:n] = (self.fill * (n // len(self.fill) + 1))[:n]
        self.taken += n
        return n


class FakeStdin:
    def __init__(self, raw: io.RawIOBase) -> None:
        self.buffer, self.closed = raw, False


def test_an_executable_is_called_binary_before_any_encoding_is_suggested(tmp_path: Path) -> None:
    path = tmp_path / "bin.dat"
    path.write_bytes(ELF)
    with pytest.raises(InputError, match="ELF executable") as e:
        read_text(path)
    assert "--encoding" not in str(e.value)
    with pytest.raises(InputError, match="NUL bytes: it looks binary"):
        decode(b"\x01\x02\xff\xfe\x00 bad", "utf-8", "x")  # no magic: the NUL says it


def test_nul_bytes_anywhere_come_before_a_bad_byte(tmp_path: Path) -> None:
    path = tmp_path / "mixed.txt"
    path.write_bytes(b"caf\xe9\n" * 10 + b"x" * 100_000 + b"\x00")
    with pytest.raises(InputError, match="binary"):
        read_text(path)


def test_wide_encodings_keep_their_nul_bytes(tmp_path: Path) -> None:
    path = tmp_path / "utf16.txt"
    path.write_bytes("To be\n".encode("utf-16"))
    assert read_text(path, "utf-16") == "To be\n"
    with pytest.raises(InputError, match="UTF-16 byte-order mark"):
        read_text(path)  # the mark is named before its NUL bytes could look binary
    path.write_bytes("a\x00b".encode("utf-16-le"))
    with pytest.raises(InputError, match="binary"):  # U+0000 itself
        read_text(path, "utf-16-le")


@pytest.mark.parametrize(
    ("make", "phrase"),
    [
        (lambda p: Path("/dev/zero"), "a character device, not a file"),
        (lambda p: (os.mkfifo(p / "fifo"), p / "fifo")[1], "a named pipe"),
        (lambda p: p, "is a directory"),
    ],
    ids=["device", "fifo", "directory"],
)
def test_what_is_not_a_regular_file_is_refused_before_it_is_opened(
    tmp_path: Path, make, phrase: str
) -> None:
    # A FIFO without a writer blocks open() forever: only a check before opening returns.
    with pytest.raises(InputError, match=phrase) as e:
        read_bytes(make(tmp_path))
    assert "\n" not in str(e.value)


def test_a_socket_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s"
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(path))
        with pytest.raises(InputError, match="a socket, not a file"):
            read_bytes(path)


def test_endless_text_on_stdin_stops_at_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    pipe = Endless(b"y\n")
    monkeypatch.setattr("sys.stdin", FakeStdin(pipe))
    monkeypatch.setattr(reading, "MAX_READ_BYTES", 5 << 20)
    with pytest.raises(InputError, match=r"stdin gave more than 5 MiB.*save it to a file"):
        read_text("-")
    assert pipe.taken <= (5 << 20) + 2 * reading.CHUNK_BYTES


def test_endless_nul_bytes_on_stdin_are_refused_at_the_first_chunk(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pipe = Endless(b"\x00")
    monkeypatch.setattr("sys.stdin", FakeStdin(pipe))
    with pytest.raises(InputError, match="stdin contains NUL bytes: it looks binary"):
        read_text("-")
    assert pipe.taken <= reading.CHUNK_BYTES


def test_a_file_over_the_limit_is_refused_by_its_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "big.txt"
    path.write_bytes(b"word " * 300_000)
    monkeypatch.setattr(reading, "MAX_READ_BYTES", 1 << 20)
    with pytest.raises(InputError, match=r"big.txt is 1.5 MB, more than the 1 MiB"):
        read_text(path)
    monkeypatch.setattr(reading, "MAX_READ_BYTES", 2 << 20)
    assert read_text(path) == "word " * 300_000
