"""Every command, every option naming a device, a path or a number, set to an impossible
value: one `charlm: error:` line on stderr, a non-zero exit, no traceback, nothing on
stdout and no file written or changed.

The table below drives it: a new command adds a valid invocation to COMMANDS (under its name,
or its name and a word when one command has two shapes) and its options to BREAKS; the kinds
of impossible value are shared.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import typer.main
from typer.testing import CliRunner

from charlm.cli import app
from charlm.cli.usage import UsageFailure, usage_line
from charlm.errors import (
    CharlmError,
    CheckpointError,
    ConfigError,
    DataError,
    InputError,
    RunLockedError,
    TrainingError,
    UnknownCharactersError,
)
from tests.helpers import MICRO_ARGS

runner = CliRunner()

# A valid invocation of each command; {names} are filled in from the paths below.
COMMANDS: dict[str, list[str]] = {
    "train": ["train", "{corpus}", "--out", "{new}", *MICRO_ARGS],
    "sample": ["sample", "{ckpt}", "-n", "5", "--seed", "1", "-q"],
    "fill": ["fill", "{ckpt}", "{back}", "Fir_t Cit_zen", "-q"],
    "prime": ["prime", "{ckpt}", "First", "-n", "5", "--seed", "1", "-q"],
    "complete": ["complete", "{ckpt}", "First", "-n", "4", "-q"],
    "chat": ["chat", "{ckpt}", "-n", "5", "--seed", "1", "-q"],
    "export": ["export", "{ckpt}", "-o", "{new}", "-q"],
    "evaluate": ["evaluate", "{ckpt}", "{corpus}", "-q"],
    "prepare": ["prepare", "{corpus}", "-o", "{new}", "-q"],
    "prepare shakespeare": ["prepare", "shakespeare", "-o", "{new}", "-q"],
    "prepare abc": ["prepare", "abc", "{abc}", "-o", "{new}", "-q"],
    "plot": ["plot", "{run}", "-o", "{png}", "-q"],
    "inspect gradients": [
        "inspect", "gradients", "{ckpt}", "--max-lag", "4", "--positions", "2",
        "--compare", "none", "-o", "{png}", "-q",
    ],
    "inspect units": ["inspect", "units", "{ckpt}", "--file", "{corpus}", "-q"],
    "inspect surprisal": ["inspect", "surprisal", "{ckpt}", "--file", "{corpus}", "-q"],
    "music check": ["music", "check", "{abc}", "-q"],
    "music render": ["music", "render", "{abc}", "-o", "{new}", "-q"],
    "serve": ["serve", "{run}", "--port", "0", "-q"],
}  # fmt: skip

# Impossible values by kind. Paths are filled in per test; "{unreadable}" needs a non-root user.
DEVICES = ["cuda", "cuda:1", "tpu", "mps", "meta", ""]
IN_PATHS = ["{missing}", "{dir}", "{nul}", "{too_long}", "{under_file}", "{unreadable}"]
# A missing directory is no error for an output: it is made.
OUT_PATHS = ["{nul}", "{too_long}", "{under_file}"]
COUNTS = ["0", "-1", "nan", "1e3"]  # positive integers
# Absurdly large sizes (--layers 10**20) are not tried: building such a model never ends.
SIZES = ["0", "-1", "nan"]
NON_NEGATIVE = ["-1", "nan", "x"]
REALS = ["nan", "inf", "-inf", "x"]  # any finite number is fine, the others are not
POSITIVE_REALS = ["0", "-1", "nan", "inf", "x"]
FRACTIONS = ["-0.1", "1", "nan", "inf", "x"]  # in [0, 1)
SEEDS = ["-1", "nan", str(2**64)]
THREADS = ["0", "-1", "nan"]

GENERATION = [  # sample and prime share these
    ("--device", DEVICES),
    ("--threads", THREADS),
    ("--seed", SEEDS),
    ("-n", NON_NEGATIVE),
    ("-k", COUNTS),
    ("-t", POSITIVE_REALS),
    ("--top-k", COUNTS),
    ("--top-p", ["0", "-0.5", "1.5", "nan", "inf"]),
    ("--bias", ["-1", "nan", "inf"]),
]

# (option, or a {name} in the valid invocation to replace) -> impossible values
BREAKS: dict[str, list[tuple[str, list[str]]]] = {
    "train": [
        ("{corpus}", IN_PATHS),
        ("{new}", [*OUT_PATHS, "{corpus}"]),  # --out is a directory: a file is in the way
        ("--resume", IN_PATHS),
        ("--init-from", IN_PATHS),
        ("--device", DEVICES),
        ("--threads", THREADS),
        ("--nproc", ["0", "-1", "nan"]),
        ("--seed", SEEDS),
        ("--encoding", ["no-such-codec", ""]),
        ("--layers", SIZES),
        ("--hidden-size", SIZES),
        ("--embed-size", SIZES),
        ("--dropout", FRACTIONS),
        ("--val-frac", ["0", "1", "nan", "-0.1"]),
        ("--test-frac", ["-0.1", "1", "nan"]),
        ("--min-freq", ["0", "-1", "nan"]),
        ("--max-vocab", ["0", "-1", "nan"]),
        ("--vocab-size", ["0", "-1", "nan"]),
        ("--batch-size", SIZES),
        ("--bptt", SIZES),
        ("--lr", POSITIVE_REALS),
        ("--weight-decay", ["-1", *REALS]),
        ("--warmup-steps", NON_NEGATIVE),
        ("--grad-clip", ["-1", *REALS]),
        ("--epochs", COUNTS),
        ("--max-steps", COUNTS),
        ("--max-time", ["-5m", "nan", "inf", "0.5.1h"]),
        ("--eval-every", COUNTS),
        ("--patience", ["0", "-1", "nan"]),
        ("--sample-length", NON_NEGATIVE),
        ("--reset-prob", ["-0.1", "1", "nan", "x"]),
        ("--unknown", ["maybe", ""]),
        ("--word-split", ["commas", ""]),
        ("--embed-dropout", FRACTIONS),
        ("--average-from", FRACTIONS),
        ("--jordan-decay", FRACTIONS),
        ("--spectral-radius", POSITIVE_REALS),
        ("--window", ["1", "0", "-1", "nan"]),
        ("--input-delays", SIZES),
        ("--output-delays", SIZES),
        ("--algorithm", ["bpt", ""]),
        ("--state-penalty", ["-1", *REALS]),
        ("--state-penalty-kind", ["l2", ""]),
        ("--forget-bias", REALS),
        ("--input-bias", REALS),
    ],
    "sample": [("{ckpt}", IN_PATHS), ("--prime-file", IN_PATHS), *GENERATION],
    "fill": [
        ("{ckpt}", ["{missing}.safetensors", "{dir}", "{corpus_ckpt}", "{back}"]),
        ("{back}", ["{missing}", "{dir}", "{ckpt}"]),
        ("Fir_t Cit_zen", ["First", "Fir_t \x01", ""]),
        ("--marker", ["", "__"]),
        ("--rule", ["product", ""]),
        ("--device", DEVICES),
        ("--threads", THREADS),
    ],
    "prime": [
        ("{ckpt}", ["{missing}.safetensors", "{dir}", "{corpus_ckpt}"]),
        ("-f", IN_PATHS),
        ("--candidates", ["0", "-1", "nan"]),
        *GENERATION,
    ],
    "complete": [
        ("{ckpt}", ["{missing}.safetensors", "{dir}", "{corpus_ckpt}", "{back}"]),
        ("-f", IN_PATHS),
        ("-k", COUNTS),
        ("--beam", COUNTS),
        ("-n", ["0", "-1", "nan"]),
        ("--length-norm", ["-1", "nan", "inf", "x"]),
        ("--stop", [""]),
        ("--unknown", ["maybe", ""]),
        ("--device", DEVICES),
        ("--threads", THREADS),
    ],
    "chat": [
        ("{ckpt}", ["{missing}.safetensors", "{dir}", "{corpus_ckpt}", "{back}"]),
        ("-n", NON_NEGATIVE),
        ("-t", POSITIVE_REALS),
        ("--seed", SEEDS),
        ("--stop", [""]),
        ("--unknown", ["maybe", ""]),
        ("--device", DEVICES),
        ("--threads", THREADS),
    ],
    "export": [
        ("{ckpt}", ["{missing}.safetensors", "{dir}", "{corpus_ckpt}"]),
        ("{new}", [*OUT_PATHS, "{dir}"]),
        ("--threads", THREADS),
    ],
    "evaluate": [
        ("{ckpt}", ["{missing}.safetensors", "{dir}", "{corpus_ckpt}"]),
        ("{corpus}", IN_PATHS),
        ("--device", DEVICES),
        ("--threads", THREADS),
        ("--batch-size", SIZES),
        ("--bptt", SIZES),
        ("--encoding", ["no-such-codec", ""]),
        ("--unknown", ["maybe", ""]),
    ],
    "prepare shakespeare": [("--plays-dir", ["{missing}", "{corpus}", "{nul}", "{too_long}"])],
    "prepare abc": [
        ("{abc}", [*IN_PATHS, "{corpus}"]),
        ("--collections", ["nosuch"]),
        ("--transpose", ["D", "c", ""]),
        ("--min-bars-right", ["-0.1", "1.5", "nan"]),
    ],
    "plot": [
        ("{run}", ["{missing}", "{dir}", "{nul}", "{too_long}"]),
        ("{png}", [*OUT_PATHS, "{new}.jpeg"]),
        ("--x", ["steps", ""]),
        ("--width", ["0", "-1", "nan"]),
        ("--height", ["0", "-1", "nan"]),
        ("--interval", ["0", "-1", "nan"]),
    ],
    "inspect gradients": [
        ("{ckpt}", ["{missing}.safetensors", "{dir}", "{corpus_ckpt}"]),
        ("{png}", OUT_PATHS),
        ("--file", IN_PATHS),
        ("--max-lag", ["-1", "nan"]),
        ("--positions", ["0", "-1", "nan"]),
        ("--carry-in", ["-1", "nan"]),
        ("--compare", ["lstm,xyz", ""]),
        ("--init-scale", ["nan", "inf", "x"]),
        ("--seed", SEEDS),
        ("--width", ["0", "-1", "nan"]),
    ],
    "inspect units": [
        ("{ckpt}", ["{missing}.safetensors", "{dir}", "{corpus_ckpt}"]),
        ("{corpus}", IN_PATHS),
        ("--npz", [*OUT_PATHS, "{dir}"]),
        ("--lstmvis", [*OUT_PATHS, "{corpus}"]),
        ("-o", [*OUT_PATHS, "{new}.png", "{dir}"]),
        ("--unit", ["0:h:99", "x", "0:q:1", "", "-1:h:0"]),
        ("--find", ["nosuch", ""]),
        ("--find-regex", ["(", "["]),
        ("--top", ["0", "-1", "nan"]),
        ("--max-chars", ["0", "-1", "nan"]),
        ("--unknown", ["maybe", ""]),
        ("--device", DEVICES),
        ("--threads", THREADS),
    ],
    "inspect surprisal": [
        ("{ckpt}", ["{missing}.safetensors", "{dir}", "{corpus_ckpt}"]),
        ("{corpus}", IN_PATHS),
        ("--spans", ["-1", "nan"]),
        ("--span-length", ["0", "-1", "nan"]),
        ("--backward", ["{missing}", "{ckpt}", "{dir}"]),
        ("--max-chars", ["0", "-1", "nan"]),
        ("--unknown", ["maybe", ""]),
        ("--device", DEVICES),
        ("--threads", THREADS),
    ],
    "serve": [
        ("{run}", [*IN_PATHS, "{back}"]),
        ("--name", ["", "a/b"]),
        ("--host", ["", "999.1.1.1"]),
        ("--port", ["-1", "65536", "nan", "x"]),
        ("--max-streams", COUNTS),
        ("--max-tokens", ["0", "-1", "nan"]),
        ("--max-prompt-chars", ["0", "-1", "nan"]),
        ("--max-body-bytes", ["0", "-1", "nan"]),
        ("--api-key", ["", " "]),
        ("--cors-origin", ["example.org", ""]),
        ("--threads", THREADS),
    ],
    "music check": [("{abc}", [*IN_PATHS, "{corpus}"])],
    "music render": [("{abc}", [*IN_PATHS, "{corpus}"]), ("{new}", OUT_PATHS)],
    "prepare": [
        ("{corpus}", IN_PATHS),
        ("{new}", [*OUT_PATHS, "{dir}"]),  # -o is a file: a directory is in the way
        ("--max-chars", ["0", "-1", "nan"]),
        ("--encoding", ["no-such-codec", ""]),
    ],
}


def _cases() -> list[tuple[str, str, str]]:
    return [
        pytest.param(command, slot, value, id=f"{command} {slot}={value or 'empty'}"[:90])
        for command, rows in BREAKS.items()
        for slot, values in rows
        for value in values
    ]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A micro model trained once for the whole module."""
    home = tmp_path_factory.mktemp("trained")
    corpus = home / "verse.txt"
    corpus.write_text("First Citizen:\nSpeak, speak.\n\nAll:\nResolved. resolved.\n" * 40)
    out = home / "run"
    result = runner.invoke(app, ["train", str(corpus), "--out", str(out), *MICRO_ARGS, "-q"])
    assert result.exit_code == 0, result.output
    back = [str(home / "back"), *MICRO_ARGS, "--reverse", "-q"]  # for charlm fill
    result = runner.invoke(app, ["train", str(corpus), "--out", *back])
    assert result.exit_code == 0, result.output
    return out / "best.safetensors"


def _paths(tmp: Path, corpus: Path, ckpt: Path) -> dict[str, str]:
    (tmp / "a-directory").mkdir()
    unreadable = tmp / "unreadable.txt"
    unreadable.write_text("First Citizen:\n")
    unreadable.chmod(0)
    corpus_ckpt = tmp / "text.safetensors"  # a text file named like a checkpoint
    corpus_ckpt.write_text("not a checkpoint\n")
    abc = tmp / "tunes.abc"
    abc.write_text("X:1\nT:t\nM:4/4\nL:1/8\nK:C\nCDEF GABc|c8|]\n")
    return {
        "abc": str(abc),
        "run": str(ckpt.parent),
        "back": str(ckpt.parent.parent / "back"),
        "png": str(tmp / "plot.png"),
        "corpus": str(corpus),
        "ckpt": str(ckpt),
        "new": str(tmp / "new-output"),
        "missing": str(tmp / "no-such-file"),
        "dir": str(tmp / "a-directory"),
        "nul": str(tmp / "nul\x00byte"),
        "too_long": str(tmp / ("x" * 300)),
        "under_file": str(corpus / "below"),
        "unreadable": str(unreadable),
        "corpus_ckpt": str(corpus_ckpt),
    }


def _fill(arg: str, paths: dict[str, str]) -> str:
    return arg.format(**paths) if "{" in arg else arg


def _snapshot(*roots: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``roots`` with its size and modification time, and every directory
    (whose times change when a temporary file comes and goes, so they are left out)."""
    found = {}
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            found |= {os.path.join(dirpath, d): (0, 0) for d in dirnames}
            for name in filenames:
                st = os.lstat(os.path.join(dirpath, name))
                found[os.path.join(dirpath, name)] = (st.st_size, st.st_mtime_ns)
    return found


def _argv(command: str, slot: str, value: str, paths: dict[str, str]) -> list[str]:
    base = COMMANDS[command]
    if slot.startswith("{"):
        return [_fill(value, paths) if a == slot else _fill(a, paths) for a in base]
    return [*(_fill(a, paths) for a in base), slot, _fill(value, paths)]


@pytest.mark.parametrize(("command", "slot", "value"), _cases())
def test_impossible_values_fail_in_one_line(
    command: str,
    slot: str,
    value: str,
    checkpoint: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if value == "{unreadable}" and os.geteuid() == 0:
        pytest.skip("root reads files whatever their permissions")
    work = tmp_path / "work"
    work.mkdir()
    corpus = work / "verse.txt"
    corpus.write_text("First Citizen:\nSpeak, speak.\n\nAll:\nResolved. resolved.\n" * 40)
    paths = _paths(work, corpus, checkpoint)
    monkeypatch.chdir(work)  # default checkpoint and output places land here
    monkeypatch.setenv("CHARLM_CACHE_DIR", str(tmp_path / "cache"))
    before = _snapshot(work, checkpoint.parent, tmp_path)

    result = runner.invoke(app, _argv(command, slot, value, paths))

    assert result.exit_code != 0, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("charlm: error: "), result.stderr
    assert result.stdout == ""
    assert _snapshot(work, checkpoint.parent, tmp_path) == before


def test_every_command_is_in_the_table() -> None:
    """A new subcommand must join the table (and so get its impossible values tried)."""
    root = typer.main.get_command(app)
    names = set()
    for name, command in root.commands.items():  # type: ignore[attr-defined]
        subs = getattr(command, "commands", None)  # a group: each of its subcommands
        names |= {f"{name} {sub}" for sub in subs} if subs else {name}
    assert set(COMMANDS) == set(BREAKS)
    assert names <= set(COMMANDS) and all(
        label.split()[0] in {n.split()[0] for n in names} for label in COMMANDS
    )


def test_every_error_is_a_charlm_error() -> None:
    for cls in (
        CheckpointError,
        ConfigError,
        DataError,
        InputError,
        RunLockedError,
        TrainingError,
        UnknownCharactersError,
    ):
        assert issubclass(cls, CharlmError)


def test_usage_errors_are_the_class_typer_raises() -> None:
    """Typer's vendored Click is private: if it changes, this fails rather than a traceback."""
    command = typer.main.get_command(app)
    with pytest.raises(UsageFailure) as caught:
        command.main(["sample", "--no-such-option"], "charlm", standalone_mode=False)
    line = usage_line(caught.value)
    assert line is not None
    assert "--no-such-option" in line and "charlm sample --help" in line


def test_no_arguments_is_not_an_error_line() -> None:
    command = typer.main.get_command(app)
    with pytest.raises(UsageFailure) as caught:
        command.main([], "charlm", standalone_mode=False)
    assert usage_line(caught.value) is None


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_train_on_missing_cuda_in_a_real_process(tmp_path: Path) -> None:
    """The case from issue 11, run as a user would: one line, not a traceback."""
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("First Citizen:\nSpeak, speak.\n" * 40)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    done = subprocess.run(
        [sys.executable, "-m", "charlm", "train", str(corpus), "--device", "cuda"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2  # an option that cannot work here: the exit code table
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        "charlm: error: --device cuda asked for, but no CUDA device is available: use --device cpu"
    ]
    assert not (tmp_path / "checkpoints").exists()
