"""What a refused command looks like to its user, asserted on a CliRunner result."""

from __future__ import annotations

from typer.testing import Result


def one_line_error(result: Result, *phrases: str, code: int = 1) -> str:
    """The command failed with ``code``, stdout empty, one `charlm: error:` line holding
    every phrase, and no traceback."""
    assert result.exit_code == code, result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("charlm: error: "), result.stderr
    assert "Traceback" not in result.stderr
    for phrase in phrases:
        assert phrase in lines[0], lines[0]
    return lines[0]
