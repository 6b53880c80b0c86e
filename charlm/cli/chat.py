"""`charlm chat`: an interactive session with a model that keeps its state.

On a terminal the lines are read with prompt_toolkit (history, editing); from a pipe, line by
line. Ctrl-C stops the continuation being written, not the session; Ctrl-D ends it.
"""

from __future__ import annotations

import math
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from charlm.cli.common import (
    CheckpointArg,
    DataOut,
    GenerationDeviceOpt,
    LengthOpt,
    QuietOpt,
    SeedOpt,
    ShowUnkOpt,
    StopOpt,
    TemperatureOpt,
    ThreadsOpt,
    UnknownOpt,
    error,
    info,
    load_checkpoint,
    unescape,
    user_errors,
)
from charlm.cli.generation import check_prime
from charlm.config.runtime import new_seed, set_threads
from charlm.config.schema import check_seed
from charlm.errors import CharlmError, InputError
from charlm.generation.conversation import Conversation
from charlm.generation.load import GENERATION_DEVICE, require_forward
from charlm.generation.sampling import SamplingConfig
from charlm.rundir.atomic import write_atomic

COMMANDS = "/temperature T, /reset, /save FILE, /state, /help"
PROMPT = "> "


@dataclass
class _Session:
    conversation: Conversation
    sampling: SamplingConfig
    length: int
    stop: tuple[str, ...]
    unknown: str
    show_unk: bool
    rng: np.random.Generator


def chat(
    checkpoint: CheckpointArg = None,
    *,
    temperature: TemperatureOpt = 0.8,
    length: LengthOpt = 400,
    stop: StopOpt = None,
    unknown: UnknownOpt = "error",
    show_unk: ShowUnkOpt = False,
    seed: SeedOpt = None,
    device: GenerationDeviceOpt = GENERATION_DEVICE,
    threads: ThreadsOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Talk with a model: what you type and what it writes stay in its state, turn after turn.

    Each line you type is read, with its line end, and the model continues until a stop
    string (default: an empty line) or --length tokens. Commands: /temperature T, /reset,
    /save FILE (the transcript), /state, /help. Ctrl-C stops the model's continuation;
    Ctrl-D ends the session.
    """
    with user_errors():
        stops = tuple(unescape(s) for s in stop) if stop else ("\n\n",)
        if not all(stops):
            raise InputError("--stop needs a non-empty string")
        sampling = SamplingConfig(temperature)
        check_seed(seed)
        set_threads(threads)
        lm = load_checkpoint(checkpoint, device, quiet)
        require_forward(lm, "charlm chat")
        check_prime(lm.tokenizer, "", unknown, quiet)  # --unknown itself, before any turn
        rng = np.random.default_rng(new_seed() if seed is None else seed)
        session = _Session(
            Conversation(lm.model, lm.tokenizer), sampling, length, stops, unknown, show_unk, rng
        )
        if not quiet:
            info(f"chatting with {lm.path}: Ctrl-C stops its reply, Ctrl-D ends; {COMMANDS}")
        for line in _lines():
            _turn(session, line, quiet)


def _lines() -> Iterator[str]:
    """The user's lines: prompt_toolkit's editing and history on a terminal, else stdin's."""
    if not (sys.stdin is not None and sys.stdin.isatty() and sys.stdout.isatty()):
        for line in sys.stdin or ():
            yield line.rstrip("\n")
        return
    from prompt_toolkit import PromptSession
    from prompt_toolkit.history import InMemoryHistory

    prompt: PromptSession[str] = PromptSession(history=InMemoryHistory())
    while True:
        try:
            yield prompt.prompt(PROMPT)
        except KeyboardInterrupt:  # Ctrl-C at the prompt clears the line, as in a shell
            continue
        except EOFError:
            return


def _turn(session: _Session, line: str, quiet: bool) -> None:
    """One line: a command, or text read into the state and answered. An error ends the
    turn, in one line, not the session."""
    try:
        if line.startswith("/"):
            _command(session, line, quiet)
            return
        text = check_prime(session.conversation.tokenizer, line + "\n", session.unknown, quiet)
        session.conversation.read(text)
        _reply(session)
    except CharlmError as e:
        error(str(e))


def _reply(session: _Session) -> None:
    data = DataOut(every=0.0)  # a person is reading: each piece at once
    pieces = session.conversation.write(
        session.length, session.sampling, session.rng, session.stop, session.show_unk
    )
    with _interruptible() as interrupted:
        for piece in pieces:
            data.write(piece)
            if interrupted():
                pieces.close()
                break
    if not data.ends_line:
        data.write("\n")
    data.flush()


@contextmanager
def _interruptible() -> Iterator[Callable[[], bool]]:
    """Ctrl-C sets a flag, read between tokens, instead of raising wherever it lands: the
    token being read is finished, so the state holds what was shown."""
    hits: list[int] = []

    def handler(signum: int, frame: Any) -> None:
        hits.append(signum)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield lambda: bool(hits)
    finally:
        signal.signal(signal.SIGINT, previous)


def _command(session: _Session, line: str, quiet: bool) -> None:
    name, _, arg = line.strip().partition(" ")
    arg = arg.strip()
    conv = session.conversation
    if name == "/temperature" and arg:
        session.sampling = replace(session.sampling, temperature=_number(arg))
        _say(f"temperature {session.sampling.temperature:g}", quiet)
    elif name == "/reset" and not arg:
        conv.reset()
        _say("the state is reset: nothing read", quiet)
    elif name == "/save" and arg:
        text = conv.transcript
        write_atomic(Path(arg), text.encode("utf-8"))
        _say(f"saved the transcript ({len(text):,} characters) to {arg}", quiet)
    elif name == "/state" and not arg:
        info(f"{conv.tokens:,} tokens read ({len(conv.transcript):,} characters in the transcript)")
    elif name == "/help" and not arg:
        info(f"commands: {COMMANDS}")
    else:
        raise InputError(f"unknown command {line.strip()!r}: {COMMANDS}")


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"/temperature takes a number (got {text!r})") from None
    if not (math.isfinite(value) and value > 0):
        raise InputError(f"/temperature takes a number above 0 (got {text!r})")
    return value


def _say(message: str, quiet: bool) -> None:
    if not quiet:
        info(message)
