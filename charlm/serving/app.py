"""The HTTP routes: OpenAI's completions and models, charlm's score, health, the page.

Every error a client can cause comes back as OpenAI's error object with its status; a bug
becomes a 500 with the same object (its traceback goes to the server's log, never to the
client).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from importlib import resources
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware

from charlm.errors import CharlmError, RequestError
from charlm.serving.catalog import ServedModel, find
from charlm.serving.completions import Responder, make_jobs, readable_text, until_disconnected
from charlm.serving.guards import ApiKey, BodyLimit
from charlm.serving.outbox import Outbox
from charlm.serving.protocol import CompletionRequest, ScoreRequest, error_body
from charlm.serving.score import score
from charlm.serving.settings import ServeConfig

log = logging.getLogger("charlm.serve")
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def create_app(catalog: dict[str, ServedModel], settings: ServeConfig) -> FastAPI:
    app = FastAPI(title="charlm", docs_url=None, redoc_url=None)  # their pages load from CDNs
    page = resources.files("charlm.serving").joinpath("page.html").read_text(encoding="utf-8")
    _errors(app)

    @app.get("/", include_in_schema=False)
    async def writing_page() -> HTMLResponse:
        return HTMLResponse(page)

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        streams = {name: m.engine.open_streams for name, m in catalog.items()}
        return {"status": "ok", "models": sorted(catalog), "open_streams": streams}

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [m.describe() for m in catalog.values()]}

    @app.get("/v1/models/{name}")
    async def model(name: str) -> dict[str, object]:
        return find(catalog, name).describe()

    @app.post("/v1/completions")
    async def completions(req: CompletionRequest, request: Request) -> Response:
        served = find(catalog, req.model)
        loop = asyncio.get_running_loop()
        outboxes = [Outbox(req.n, loop) for _ in req.prompts]
        jobs, prompts = make_jobs(req, served, settings, outboxes)
        served.engine.submit(jobs)
        responder = Responder(req, jobs, prompts)
        if req.stream:
            return StreamingResponse(
                _cancelled_on_exit(responder), media_type="text/event-stream", headers=SSE_HEADERS
            )
        return JSONResponse(await _unless_disconnected(responder, request))

    @app.post("/v1/score")
    async def score_text(req: ScoreRequest) -> dict[str, Any]:
        served = find(catalog, req.model)
        text = readable_text(served, req.text, req.unknown, settings, "text")
        return await asyncio.wrap_future(served.engine.call(lambda: score(served, text)))

    return _guarded(app, settings)


async def _cancelled_on_exit(responder: Responder) -> AsyncIterator[str]:
    """The events; a client that leaves mid-stream frees its streams before the next step."""
    try:
        async for event in responder.events():
            yield event
    finally:
        responder.cancel()


async def _unless_disconnected(responder: Responder, request: Request) -> dict[str, Any]:
    whole = asyncio.ensure_future(responder.whole())
    gone = asyncio.ensure_future(until_disconnected(request.receive))
    try:
        await asyncio.wait({whole, gone}, return_when=asyncio.FIRST_COMPLETED)
        if not whole.done():
            responder.cancel()
            whole.cancel()
            raise RequestError("the client closed the connection", 499)
        return whole.result()
    finally:
        gone.cancel()


def _guarded(app: FastAPI, settings: ServeConfig) -> Any:
    """The app inside its body limit, API key and CORS layers (CORS outermost, so that a
    browser's preflight, which carries no key, is answered)."""
    wrapped: Any = BodyLimit(app, settings.max_body_bytes)
    if settings.api_key:
        wrapped = ApiKey(wrapped, settings.api_key)
    if settings.cors_origins:
        wrapped = CORSMiddleware(
            wrapped,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )
    return wrapped


def _errors(app: FastAPI) -> None:
    @app.exception_handler(RequestError)
    async def request_error(_: Request, e: RequestError) -> JSONResponse:
        headers = {"Retry-After": str(e.retry_after)} if e.retry_after is not None else None
        return JSONResponse(error_body(str(e), e.status, e.param), e.status, headers)

    @app.exception_handler(CharlmError)
    async def charlm_error(_: Request, e: CharlmError) -> JSONResponse:
        return JSONResponse(error_body(str(e), 400), 400)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, e: RequestValidationError) -> JSONResponse:
        first = e.errors()[0]
        if first.get("type") == "json_invalid":
            reason = first.get("ctx", {}).get("error", "")
            return JSONResponse(error_body(f"the body is not valid JSON ({reason})", 400), 400)
        # The field the client sent, not where in a union pydantic looked ("prompt.str").
        param = next((str(p) for p in first.get("loc", ()) if p != "body"), None)
        message = f"{param or 'the body'}: {first.get('msg', 'invalid')}"
        return JSONResponse(error_body(message, 400, param), 400)

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, e: HTTPException) -> JSONResponse:
        return JSONResponse(error_body(str(e.detail), e.status_code), e.status_code, e.headers)

    @app.exception_handler(Exception)
    async def bug(_: Request, e: Exception) -> JSONResponse:
        log.error("charlm serve: internal error", exc_info=e)
        return JSONResponse(error_body("internal error (logged by the server)", 500), 500)
