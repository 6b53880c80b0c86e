"""The safe defaults, each on its own server process: SIGTERM ends open streams with a final
event and [DONE], then the process; the access log and every other line go to stderr, none to
stdout; an API key, when set, is asked for; CORS only for the origin named; listening on every
network is said."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from tests.helpers.serving import Server, running_server

httpx = pytest.importorskip("httpx", reason="the test extra brings httpx: make install")
EXIT_SECONDS = 60  # a timeout for a loaded machine, not a measurement


def test_sigterm_ends_open_streams_then_the_process(served_run: Path) -> None:
    with running_server(served_run, "--max-tokens", "100000000") as server:
        body = {"model": "verse", "prompt": "All", "max_tokens": 100_000_000, "stream": True}
        with httpx.stream("POST", f"{server.api}/completions", json=body, timeout=60) as r:
            lines = r.iter_lines()
            assert next(lines).startswith("data: ")
            server.proc.send_signal(signal.SIGTERM)
            events = [line for line in lines if line]
        assert events[-1] == "data: [DONE]"
        last = json.loads(events[-2][len("data: ") :])
        assert last["choices"][0]["finish_reason"] == "abort"
        assert server.proc.wait(EXIT_SECONDS) in (0, -signal.SIGTERM)
        assert server.proc.stdout.read() == ""  # the access log went to stderr
        assert any('"POST /v1/completions HTTP/1.1" 200' in line for line in server.log)


def test_an_api_key_and_cors_only_when_asked(served_run: Path, server: Server) -> None:
    preflight = {"Origin": "https://example.org", "Access-Control-Request-Method": "POST"}
    plain = httpx.options(f"{server.api}/completions", headers=preflight, timeout=60)
    assert "access-control-allow-origin" not in plain.headers  # no --cors-origin: no CORS
    assert httpx.get(f"{server.api}/models", timeout=60).status_code == 200  # no key needed
    key, origin = {"CHARLM_API_KEY": "s3cret"}, ("--cors-origin", "https://example.org")
    with running_server(served_run, *origin, env=key) as server:
        allowed = httpx.options(f"{server.api}/completions", headers=preflight, timeout=60)
        assert allowed.headers["access-control-allow-origin"] == "https://example.org"
        other = {**preflight, "Origin": "https://elsewhere.example"}
        refused = httpx.options(f"{server.api}/completions", headers=other, timeout=60)
        assert "access-control-allow-origin" not in refused.headers
        health = httpx.get(f"{server.url}/healthz", timeout=60)
        assert health.status_code == 200  # a load balancer checks health without the key
        denied = httpx.get(f"{server.api}/models", timeout=60)
        assert denied.status_code == 401
        assert denied.json()["error"]["type"] == "authentication_error"
        wrong = httpx.get(f"{server.api}/models", headers={"Authorization": "Bearer x"})
        assert wrong.status_code == 401
        ok = httpx.get(f"{server.api}/models", headers={"Authorization": "Bearer s3cret"})
        assert ok.json()["data"][0]["id"] == "verse"


def test_listening_on_every_network_is_said(served_run: Path) -> None:
    with running_server(served_run, "--host", "0.0.0.0") as server:
        assert any("reachable from the network" in line for line in server.log)
        assert any("--api-key" in line for line in server.log)
