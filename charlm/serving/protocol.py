"""The shapes on the wire: OpenAI's completion request and response, charlm's score request.

Requests are validated strictly (a string is no number, NaN is no temperature), so that a
client's mistake comes back as a 400 naming the field rather than as a guess. Fields OpenAI
defines and charlm has no use for (``user``, penalties) are accepted and ignored, as other
OpenAI-compatible servers do, so clients that send them work unchanged.
"""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from charlm.config.schema import SEED_LIMIT
from charlm.serving.outbox import TokenLogprob

MAX_STOPS = 4  # OpenAI's limit on stop strings
MAX_LOGPROBS = 20  # alternatives listed per token

Real = Annotated[float, Field(allow_inf_nan=False)]


class _Request(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")


class StreamOptions(_Request):
    include_usage: bool = False


class CompletionRequest(_Request):
    """``POST /v1/completions``: OpenAI's fields, then charlm's own."""

    model: str
    prompt: str | list[str] = ""  # "" continues from the start of a line
    max_tokens: Annotated[int, Field(ge=0)] = 16  # OpenAI's default
    temperature: Annotated[Real, Field(ge=0)] = 1.0  # 0: the most likely token (greedy)
    top_p: Annotated[Real, Field(gt=0, le=1)] = 1.0
    n: Annotated[int, Field(ge=1)] = 1
    stop: str | Annotated[list[str], Field(max_length=MAX_STOPS)] | None = None
    seed: Annotated[int, Field(ge=0, lt=SEED_LIMIT)] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    logprobs: Annotated[int, Field(ge=0, le=MAX_LOGPROBS)] | None = None
    echo: bool = False
    # charlm's own: as `charlm sample` --top-k, --bias, --greedy and --unknown
    top_k: Annotated[int, Field(ge=1)] | None = None
    bias: Annotated[Real, Field(ge=0)] = 0.0
    greedy: bool = False
    unknown: Literal["error", "skip"] = "error"

    @property
    def prompts(self) -> list[str]:
        return [self.prompt] if isinstance(self.prompt, str) else self.prompt

    @property
    def stops(self) -> tuple[str, ...]:
        if self.stop is None:
            return ()
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)


class ScoreRequest(_Request):
    """``POST /v1/score``: a text's bits per character, perplexity and surprisal per token."""

    model: str
    text: str
    unknown: Literal["error", "skip"] = "error"


def error_body(
    message: str, status: int, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    """OpenAI's error object; the type follows the status as OpenAI's own server sets it."""
    kinds = {401: "authentication_error", 404: "not_found_error", 429: "rate_limit_error"}
    kind = kinds.get(status, "invalid_request_error" if status < 500 else "server_error")
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


class Completion:
    """The identity every chunk of one response repeats: id, creation time, model."""

    def __init__(self, model: str) -> None:
        self.id = f"cmpl-{uuid.uuid4().hex[:24]}"
        self.created = int(time.time())
        self.model = model

    def body(self, choices: list[dict[str, Any]], usage: dict[str, int] | None) -> dict[str, Any]:
        out = {
            "id": self.id,
            "object": "text_completion",
            "created": self.created,
            "model": self.model,
            "choices": choices,
        }
        if usage is not None:
            out["usage"] = usage
        return out


def choice(
    index: int, text: str, logprobs: dict[str, Any] | None, finish_reason: str | None
) -> dict[str, Any]:
    return {"index": index, "text": text, "logprobs": logprobs, "finish_reason": finish_reason}


def logprobs_body(tokens: list[TokenLogprob], offset: int) -> dict[str, Any]:
    """OpenAI's legacy completions log-probabilities; ``offset`` is where the first token's
    text starts in the choice's text."""
    offsets = []
    for t in tokens:
        offsets.append(offset)
        offset += len(t.text)
    return {
        "tokens": [t.text for t in tokens],
        "token_logprobs": [t.logprob for t in tokens],
        "top_logprobs": [None if t.top is None else dict(t.top) for t in tokens],
        "text_offset": offsets,
    }


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }
