"""Click's usage errors as one `charlm:` line: the one place charlm touches Typer's Click.

Typer 0.2x raises the exceptions of its own copy of Click (``typer._click``), which are not
the classes of the ``click`` package, and Typer exports none of them but ``BadParameter``.
So the import of that private module lives here alone, and tests/test_errors.py checks that
what the app raises is what this module catches.
"""

from __future__ import annotations

try:  # Typer 0.2x: its vendored Click
    from typer._click import exceptions as _click
except ImportError:  # pragma: no cover  (older Typer runs on the click package itself)
    from click import exceptions as _click  # type: ignore[no-redef]

UsageFailure = _click.ClickException
# `charlm` alone: the help has been printed; there is nothing to add.
_NoArgsIsHelp = getattr(_click, "NoArgsIsHelpError", ())


def usage_line(e: UsageFailure) -> str | None:
    """The one-line message for a usage error, naming the help to read; None when the
    error is "no arguments, help shown" and there is nothing to say."""
    if isinstance(e, _NoArgsIsHelp):
        return None
    ctx = getattr(e, "ctx", None)
    command = ctx.command_path if ctx is not None else "charlm"
    return f"{' '.join(e.format_message().split())} (see '{command} --help')"
