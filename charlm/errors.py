"""Every error a user can fix derives from one class, `CharlmError`.

The CLI catches that one type and prints its message as one `charlm: error:` line, so a
new error needs no edit at the boundary: derive from the right class below. Foreign
errors (torch, the OS, safetensors) are translated into these where they arise, with a
message that names the problem and the fix. Anything else reaching the CLI is a bug and
keeps its traceback.
"""

from __future__ import annotations

import errno

# The exit codes, one table for every command (docs: "When things go wrong"):
EXIT_OK = 0
EXIT_FAILED = 1  # the command was well formed and could not be done: input, data, files
EXIT_USAGE = 2  # the command line is wrong: unknown option, wrong type, impossible value
EXIT_INTERRUPTED = 130  # Ctrl-C or SIGTERM, after saving what could be saved


class CharlmError(Exception):
    """A failure the user can fix; the message names the problem and what to do."""

    exit_code = EXIT_FAILED


class ConfigError(CharlmError):
    """A setting that cannot work; the message says what to change. A usage error: the
    options given cannot work together, whatever the input."""

    exit_code = EXIT_USAGE


class InputError(CharlmError):
    """Input that cannot be used; the message names the problem and the fix."""


class DataError(CharlmError):
    """The corpus cannot feed the requested batches; the message says what to change."""


class CheckpointError(CharlmError):
    """A checkpoint that cannot be used; the message says what to do instead."""


class RunLockedError(CharlmError):
    """Another live training owns the run directory; the message says what to do."""


class TrainingError(CharlmError):
    """Training cannot go on; the message says what to change."""


class UnknownCharactersError(CharlmError):
    """Text holds characters the vocabulary lacks; ``unknown`` lists (position, char)."""

    def __init__(self, unknown: list[tuple[int, str]]) -> None:
        self.unknown = unknown
        super().__init__(describe_unknown(unknown))


def describe_unknown(unknown: list[tuple[int, str]], limit: int = 5) -> str:
    shown = ", ".join(f"{c!r} at {pos}" for pos, c in unknown[:limit])
    more = f" and {len(unknown) - limit} more" if len(unknown) > limit else ""
    return f"{len(unknown)} character(s) not in the model's vocabulary: {shown}{more}"


class OutputError(CharlmError):
    """A file could not be written; the message names it and what to do."""


class MissingExtraError(CharlmError):
    """An optional package a command needs is not installed; the message names the extra."""


class RequestError(InputError):
    """A request to `charlm serve` that cannot be served as sent: answered with ``status``
    and OpenAI's error object naming ``param``; ``retry_after`` seconds for a busy server."""

    def __init__(
        self,
        message: str,
        status: int = 400,
        param: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.param, self.retry_after = status, param, retry_after


# Writing failures a user can fix, not bugs: what to do about each.
_NO_SPACE = "free disk space or choose another place"
_NO_RIGHTS = "fix the permissions or choose another place"
_IN_THE_WAY = "a file is in the way: choose another path"
WRITE_FIXES = {
    errno.ENOSPC: _NO_SPACE,
    errno.EDQUOT: _NO_SPACE,
    errno.EFBIG: _NO_SPACE,
    errno.EACCES: _NO_RIGHTS,
    errno.EPERM: _NO_RIGHTS,
    errno.EROFS: _NO_RIGHTS,
    errno.EEXIST: _IN_THE_WAY,
    errno.ENOTDIR: _IN_THE_WAY,
    errno.EISDIR: _IN_THE_WAY,
    errno.ENAMETOOLONG: "the name is too long: choose a shorter path",
}


def cannot_write(e: OSError) -> OutputError | None:
    """The OutputError for a writing failure a user can fix; None for one that is a bug."""
    if e.errno not in WRITE_FIXES:
        return None
    return OutputError(
        f"cannot write {e.filename or 'a file'} ({e.strerror}): {WRITE_FIXES[e.errno]}; "
        "files written before are intact"
    )
