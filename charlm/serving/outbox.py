"""What the engine thread has made for one request and its HTTP handler has not yet sent.

The engine writes; the handler, on the event loop, takes everything written since it last
looked. The loop is woken only when a handler is waiting, once per engine step for all of
them, so a slow reader costs the engine nothing (its text piles up in its own box) and a
fast one gets each token as it comes.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable
from contextlib import suppress
from dataclasses import dataclass, field

ABORT = "abort"  # finish_reason of a stream the server ended (shutting down), as vLLM names it


@dataclass
class TokenLogprob:
    """One token with its log-probability under the model and its likeliest alternatives."""

    text: str
    logprob: float | None  # None for a prompt's first token: nothing predicted it
    top: list[tuple[str, float]] | None


@dataclass
class Piece:
    """What one choice added since it was last read."""

    text: str = ""
    tokens: list[TokenLogprob] = field(default_factory=list)  # with logprobs only
    drawn: int = 0  # tokens generated (for usage counts)
    finish_reason: str | None = None


@dataclass
class Update:
    pieces: list[Piece]  # one per choice
    done: bool  # every choice has finished
    error: str | None = None  # the engine failed on this request (a bug, logged)


class Outbox:
    """Per choice, the text and log-probabilities not yet taken, and whether it finished."""

    def __init__(self, choices: int, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._lock = threading.Lock()
        self._pending = [Piece() for _ in range(choices)]
        self._finished = [False] * choices
        self._error: str | None = None
        self._changed = False
        self._waiting = False
        self._event = asyncio.Event()

    # ---- the engine's side ----------------------------------------------------------
    def put(
        self, choice: int, text: str, token: TokenLogprob | None = None, drawn: int = 0
    ) -> bool:
        """Add to a choice; True when the reader waits and must be woken (see ``wake``)."""
        with self._lock:
            piece = self._pending[choice]
            piece.text += text
            piece.drawn += drawn
            if token is not None:
                piece.tokens.append(token)
            return self._touch()

    def finish(self, choice: int, reason: str) -> bool:
        with self._lock:
            if self._finished[choice]:
                return False
            self._finished[choice] = True
            self._pending[choice].finish_reason = reason
            return self._touch()

    def fail(self, message: str) -> bool:
        with self._lock:
            self._error = message
            self._finished = [True] * len(self._finished)
            return self._touch()

    def finished(self, choice: int) -> bool:
        return self._finished[choice]

    @property
    def done(self) -> bool:
        return all(self._finished)

    def _touch(self) -> bool:
        self._changed = True
        wake, self._waiting = self._waiting, False
        return wake

    # ---- the HTTP handler's side ----------------------------------------------------
    async def take(self) -> Update:
        """Everything added since the last call; waits until there is something."""
        while True:
            with self._lock:
                if self._changed:
                    pieces = self._pending
                    self._pending = [Piece() for _ in pieces]
                    self._changed = False
                    return Update(pieces, all(self._finished), self._error)
                self._waiting = True
                self._event.clear()
            await self._event.wait()


def wake(boxes: Iterable[Outbox]) -> None:
    """Wake the readers of ``boxes`` (all on one loop) with one call into that loop."""
    boxes = list(boxes)
    if not boxes:
        return
    with suppress(RuntimeError):  # a closed loop: the server is gone, its readers with it
        boxes[0].loop.call_soon_threadsafe(_set_all, boxes)


def _set_all(boxes: list[Outbox]) -> None:
    for box in boxes:
        box._event.set()
