"""What a client can send wrong, and what it gets: OpenAI's error object with the right
status, never a 500 or a traceback; clients that leave or crowd in do not hurt the others."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from urllib.parse import urlsplit

import pytest

from tests.helpers.serving import Server

httpx = pytest.importorskip("httpx", reason="the test extra brings httpx: make install")
MODEL = "verse"
SETTLE_SECONDS = 60  # how long a freed stream may take to show on a loaded machine (a timeout)


def post(server: Server, body: object, path: str = "completions") -> httpx.Response:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(
        f"{server.api}/{path}",
        content=raw,
        headers={"Content-Type": "application/json"},
        timeout=60,
    )


def refused(response: httpx.Response, status: int, *words: str) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    for word in words:
        assert word in error["message"]
    assert "Traceback" not in response.text
    return error


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (b'{"model": "verse", "prompt": ', None),  # cut short
        (b"\xff\xfe not even text", None),
        ({"model": "verse", "prompt": 5}, "prompt"),
        ({"model": "verse", "max_tokens": "10"}, "max_tokens"),
        ({"model": "verse", "n": 1.5}, "n"),
        ({"model": "verse", "stream": "yes"}, "stream"),
        ({"model": "verse", "stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"prompt": "All"}, "model"),
        ([1, 2, 3], None),
    ],
)
def test_malformed_requests_are_400_naming_the_field(server: Server, body, param) -> None:
    error = refused(post(server, body), 400)
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param


@pytest.mark.parametrize(
    ("field", "value"),
    [("temperature", b"NaN"), ("temperature", b"-0.5"), ("temperature", b"Infinity"),
     ("top_p", b"0"), ("top_p", b"1.5"), ("seed", b"-1"), ("logprobs", b"99"), ("top_k", b"0")],
)  # fmt: skip
def test_impossible_numbers_are_400(server: Server, field: str, value: bytes) -> None:
    body = b'{"model": "verse", "prompt": "All", "%s": %s}' % (field.encode(), value)
    assert refused(post(server, body), 400, field)["param"] == field


def test_limits_name_the_server_option(server: Server) -> None:
    refused(post(server, {"model": MODEL, "max_tokens": 10**9}), 400, "--max-tokens")
    refused(post(server, {"model": MODEL, "n": 10**6}), 400, "--max-streams")
    refused(post(server, {"model": MODEL, "prompt": []}), 400, "prompt")


def test_unknown_model_is_404_listing_the_served(server: Server) -> None:
    error = refused(post(server, {"model": "../verse", "prompt": "All"}), 404, MODEL)
    assert error["param"] == "model"
    refused(post(server, {"model": "nosuch", "text": "All"}, "score"), 404)


def test_unknown_characters_are_named_or_skipped(server: Server) -> None:
    error = refused(post(server, {"model": MODEL, "prompt": "All\u00e9\u4e2d"}), 400)
    assert "'\u00e9' at 3" in error["message"] and "skip" in error["message"]
    ok = post(server, {"model": MODEL, "prompt": "All\u00e9", "unknown": "skip", "echo": True})
    assert ok.status_code == 200 and ok.json()["choices"][0]["text"].startswith("All")
    refused(post(server, {"model": MODEL, "text": "All\u00e9"}, "score"), 400, "'\u00e9'")


def test_a_100_mb_body_is_refused_unread(server: Server) -> None:
    url = urlsplit(server.url)
    with socket.create_connection((url.hostname, url.port), timeout=60) as sock:
        sock.sendall(
            b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100000000\r\n\r\n" + b"{" + b" " * 65535
        )
        reply = b""
        while not reply.endswith(b"}}") and (part := sock.recv(65536)):  # headers, then body
            reply += part
        reply = reply.decode()
    assert reply.startswith("HTTP/1.1 413")
    assert '"type":"invalid_request_error"' in reply.replace(" ", "")
    # Sent whole, as a client that does not look at replies sends it, too.
    try:
        status = post(server, b"{" + b" " * 100_000_000).status_code
    except httpx.TransportError:  # the server closed the connection on the unread body
        status = 413
    assert status == 413
    assert httpx.get(f"{server.url}/healthz", timeout=60).json()["status"] == "ok"


def test_score_reports_bits_per_character_and_each_token(server: Server) -> None:
    doc = post(server, {"model": MODEL, "text": "All:\nSpeak, speak."}, "score").json()
    bits = [t["bits"] for t in doc["surprisal"]]
    assert "".join(t["token"] for t in doc["surprisal"]) == "All:\nSpeak, speak."
    assert bits[0] is None and all(b > 0 for b in bits[1:])
    assert doc["bits_per_char"] == pytest.approx(sum(bits[1:]) / doc["scored_chars"])
    assert doc["perplexity"] == pytest.approx(2 ** (sum(bits[1:]) / len(bits[1:])))


def open_streams(server: Server) -> int:
    return httpx.get(f"{server.url}/healthz", timeout=60).json()["open_streams"][MODEL]


def wait_for_streams(server: Server, count: int) -> int:
    deadline = time.monotonic() + SETTLE_SECONDS
    while (n := open_streams(server)) != count and time.monotonic() < deadline:
        time.sleep(0.05)
    return n


def test_a_client_that_leaves_mid_stream_frees_its_streams(server: Server) -> None:
    assert wait_for_streams(server, 0) == 0
    body = {"model": MODEL, "prompt": "All", "max_tokens": 4096, "n": 4, "stream": True}
    with httpx.stream("POST", f"{server.api}/completions", json=body, timeout=60) as r:
        assert r.status_code == 200
        first = next(r.iter_lines())
        assert first.startswith("data: ")
        # a slow reader: the others go on (a short request is served meanwhile)
        other = post(server, {"model": MODEL, "prompt": "All", "max_tokens": 8})
        assert other.status_code == 200
    assert wait_for_streams(server, 0) == 0


def test_200_clients_at_once_get_their_text_or_429(server: Server) -> None:
    body = {"model": MODEL, "prompt": "All", "max_tokens": 400, "stream": True}

    async def one(client: httpx.AsyncClient) -> tuple[int, str, str | None]:
        async with client.stream("POST", f"{server.api}/completions", json=body) as r:
            text = (await r.aread()).decode()
            return r.status_code, text, r.headers.get("retry-after")

    async def crowd() -> list[tuple[int, str, str | None]]:
        limits = httpx.Limits(max_connections=200)
        async with httpx.AsyncClient(limits=limits, timeout=120) as client:
            return await asyncio.gather(*(one(client) for _ in range(200)))

    results = asyncio.run(crowd())
    served = [text for status, text, _ in results if status == 200]
    busy = [(text, after) for status, text, after in results if status == 429]
    assert len(served) + len(busy) == 200
    assert len(served) >= 32 and busy
    for text in served:
        assert text.endswith("data: [DONE]\n\n")
    for text, after in busy:
        assert after == "1" and json.loads(text)["error"]["type"] == "rate_limit_error"
    assert wait_for_streams(server, 0) == 0
