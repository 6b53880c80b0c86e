"""stderr that may go away: `charlm train 2>&1 | head -2` must keep training, not die.

When the reader of stderr leaves (or stderr was closed), writing raises BrokenPipeError or
ValueError; from then on reports are dropped and the work goes on. The data on stdout is
not affected: its own closed pipe is handled by ``common.closed_pipe_ok``.
"""

from __future__ import annotations

import os
import sys
from typing import IO, Any

# What writing to a stream that went away raises: EPIPE (reader gone), EBADF (descriptor
# closed), EIO (terminal gone), ValueError (file object closed). Any of them ends the reports.
_GONE = (OSError, ValueError)


class DroppingStderr:
    """A file for Rich's Console: sys.stderr as it is now, until writing to it fails once.

    It looks sys.stderr up on every write, so pytest's and CliRunner's captures still work.
    """

    def __init__(self) -> None:
        self._gone: object = None  # the stream that failed; a new sys.stderr is used again

    @property
    def gone(self) -> bool:
        return sys.stderr is None or sys.stderr is self._gone

    @property
    def _stream(self) -> IO[str] | None:
        return None if self.gone else sys.stderr

    def write(self, text: str) -> int:
        stream = self._stream
        if stream is None:
            return len(text)
        try:
            return stream.write(text)
        except _GONE:
            self._give_up(stream)
            return len(text)

    def flush(self) -> None:
        stream = self._stream
        if stream is None:
            return
        try:
            stream.flush()
        except _GONE:
            self._give_up(stream)

    def isatty(self) -> bool:
        stream = self._stream
        try:
            return stream is not None and stream.isatty()
        except _GONE:
            return False

    def fileno(self) -> int:
        stream = self._stream
        if stream is None:
            raise OSError("stderr is gone")
        return stream.fileno()

    @property
    def encoding(self) -> str:
        return getattr(self._stream, "encoding", None) or "utf-8"

    def __getattr__(self, name: str) -> Any:  # anything else Rich may ask of a file
        return getattr(sys.stderr, name)

    def _give_up(self, stream: IO[str]) -> None:
        """Stop reporting; point file descriptor 2 at /dev/null so that the interpreter's
        final flush, Python warnings and torch's C++ warnings do not fail on it again."""
        self._gone = stream
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, stream.fileno())
            os.close(devnull)
        except (OSError, ValueError, AttributeError):  # no file descriptor (captured in tests)
            pass
