"""``POST /v1/completions``: a request turned into engine jobs, their output into OpenAI's
response, whole or as server-sent events.

Choices are numbered prompt by prompt: prompt i's n choices are ``i * n .. i * n + n - 1``,
as OpenAI numbers them.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from charlm.config.runtime import new_seed
from charlm.data.tokenizers import drop_unknown
from charlm.errors import RequestError, describe_unknown
from charlm.generation.generate import start_context, unk_masked
from charlm.generation.sampling import SamplingConfig
from charlm.serving.catalog import ServedModel
from charlm.serving.engine import Job
from charlm.serving.outbox import Outbox, Piece, TokenLogprob, Update
from charlm.serving.protocol import Completion, CompletionRequest, choice, logprobs_body, usage
from charlm.serving.settings import ServeConfig

# Seconds between two chunks of one stream. A chunk per token would cost the event loop a
# JSON chunk per stream per step, and it shares the interpreter with the engine's thread: at
# 32 streams that work, not the model, set the pace (docs/commands/serve.md, "Figures").
# 20 chunks a second still reads as smooth.
SEND_EVERY = 0.05


@dataclass
class Prompt:
    text: str  # as the model reads it (unknown characters dropped when asked)
    ids: list[int]


def check_limits(req: CompletionRequest, settings: ServeConfig) -> None:
    if req.max_tokens > settings.max_tokens:
        raise RequestError(
            f"max_tokens {req.max_tokens} is above this server's limit of {settings.max_tokens} "
            "(--max-tokens)",
            param="max_tokens",
        )
    streams = req.n * len(req.prompts)
    if streams > settings.max_streams:
        raise RequestError(
            f"n times the prompts asks for {streams} streams; this server runs at most "
            f"{settings.max_streams} at once (--max-streams)",
            param="n",
        )
    if not req.prompts:
        raise RequestError("prompt is an empty list: give at least one prompt", param="prompt")
    if any(not s for s in req.stops):
        raise RequestError("stop needs non-empty strings", param="stop")


def readable_text(
    served: ServedModel, text: str, unknown: str, settings: ServeConfig, param: str
) -> str:
    """``text`` as the model can read it: too long is refused, unknown characters too, or
    dropped when ``unknown`` is "skip" (as `charlm sample --unknown skip`)."""
    if len(text) > settings.max_prompt_chars:
        raise RequestError(
            f"{param} has {len(text)} characters; this server takes at most "
            f"{settings.max_prompt_chars}",
            param=param,
        )
    missing = served.lm.tokenizer.unknown(text)
    if missing and unknown == "error":
        raise RequestError(
            f'{param} has {describe_unknown(missing)}; send "unknown": "skip" to drop them',
            param=param,
        )
    return drop_unknown(text, missing)


def make_jobs(
    req: CompletionRequest, served: ServedModel, settings: ServeConfig, outboxes: list[Outbox]
) -> tuple[list[Job], list[Prompt]]:
    """One job per prompt, each with ``n`` streams."""
    check_limits(req, settings)
    tokenizer = served.lm.tokenizer
    sampling = SamplingConfig(
        temperature=req.temperature or 1.0,
        bias=req.bias,
        top_k=req.top_k,
        top_p=req.top_p if req.top_p < 1 else None,
        greedy=req.greedy or req.temperature == 0,
    )
    sampling = unk_masked(sampling, tokenizer)
    seed = new_seed() if req.seed is None else req.seed
    jobs, prompts = [], []
    for text, box in zip(req.prompts, outboxes, strict=True):
        text = readable_text(served, text, req.unknown, settings, "prompt")
        ids = [int(i) for i in tokenizer.encode(text)] if text else []
        context = ids or start_context(tokenizer)
        job = Job(context, req.n, req.max_tokens, sampling, seed, box, req.stops, req.logprobs)
        job.echo_ids = ids if req.echo and req.logprobs is not None else []
        jobs.append(job)
        prompts.append(Prompt(text, ids))
    return jobs, prompts


@dataclass
class ChoiceText:
    """One choice as a whole response holds it."""

    text: str = ""
    tokens: list[TokenLogprob] = field(default_factory=list)
    finish_reason: str | None = None


async def updates(jobs: list[Job]) -> AsyncIterator[tuple[int, Update]]:
    """(job index, update) as any job's engine output arrives, until every job is done."""
    queue: asyncio.Queue[tuple[int, Update]] = asyncio.Queue()

    async def follow(i: int, job: Job) -> None:
        while True:
            update = await job.outbox.take()
            queue.put_nowait((i, update))
            if update.done:
                return
            await asyncio.sleep(SEND_EVERY)  # let text gather: one chunk, not one per token

    tasks = [asyncio.create_task(follow(i, job)) for i, job in enumerate(jobs)]
    try:
        remaining = len(jobs)
        while remaining:
            i, update = await queue.get()
            remaining -= update.done
            yield i, update
    finally:
        for task in tasks:
            task.cancel()


class Responder:
    """Turns engine updates for one request into OpenAI's response or chunks."""

    def __init__(self, req: CompletionRequest, jobs: list[Job], prompts: list[Prompt]) -> None:
        self.req, self.jobs, self.prompts = req, jobs, prompts
        self.ids = Completion(req.model)
        self.offsets = [0] * (len(jobs) * req.n)  # where each choice's next token starts
        self.drawn = 0
        self.failed: str | None = None

    def index(self, job: int, k: int) -> int:
        return job * self.req.n + k

    def echoes(self) -> list[tuple[int, str]]:
        """(choice, text) for the prompt text that leads each choice when echo is asked."""
        if not self.req.echo:
            return []
        return [
            (self.index(i, k), p.text)
            for i, p in enumerate(self.prompts)
            for k in range(self.req.n)
        ]

    def logprobs(self, index: int, piece: Piece) -> dict[str, Any] | None:
        if self.req.logprobs is None:
            return None
        body = logprobs_body(piece.tokens, self.offsets[index])
        self.offsets[index] += sum(len(t.text) for t in piece.tokens)
        return body

    def usage(self) -> dict[str, int]:
        return usage(sum(len(p.ids) for p in self.prompts), self.drawn)

    def note(self, update: Update) -> None:
        self.drawn += sum(p.drawn for p in update.pieces)
        self.failed = self.failed or update.error

    async def whole(self) -> dict[str, Any]:
        """The response of a request without ``stream``."""
        choices = [ChoiceText() for _ in self.offsets]
        for index, text in self.echoes():
            choices[index].text = text
        async for i, update in updates(self.jobs):
            self.note(update)
            for k, piece in enumerate(update.pieces):
                c = choices[self.index(i, k)]
                c.text += piece.text
                c.tokens += piece.tokens
                c.finish_reason = piece.finish_reason or c.finish_reason
        if self.failed:
            raise RuntimeError(self.failed)
        out = [
            choice(n, c.text, self.logprobs(n, Piece(tokens=c.tokens)), c.finish_reason)
            for n, c in enumerate(choices)
        ]
        return self.ids.body(out, self.usage())

    async def events(self) -> AsyncIterator[str]:
        """Server-sent events: chunks as the text is made, ``data: [DONE]`` at the end."""
        for index, text in self.echoes():
            yield _event(self.ids.body([choice(index, text, None, None)], None))
        async for i, update in updates(self.jobs):
            self.note(update)
            out = [
                choice(
                    self.index(i, k), p.text, self.logprobs(self.index(i, k), p), p.finish_reason
                )
                for k, p in enumerate(update.pieces)
                if p.text or p.tokens or p.finish_reason
            ]
            if out:
                yield _event(self.ids.body(out, None))
        if self.failed:
            yield _event({"error": {"message": self.failed, "type": "server_error"}})
        options = self.req.stream_options
        if options is not None and options.include_usage:
            yield _event(self.ids.body([], self.usage()))
        yield "data: [DONE]\n\n"

    def cancel(self) -> None:
        for job in self.jobs:
            job.cancelled = True


def _event(doc: dict[str, Any]) -> str:
    return f"data: {json.dumps(doc, ensure_ascii=False)}\n\n"


async def until_disconnected(receive: Callable[[], Awaitable[dict[str, Any]]]) -> None:
    """Returns when the client goes away (for a response that is not streamed)."""
    while (await receive())["type"] != "http.disconnect":
        pass
