"""`charlm serve` under load: continuous batching against one request at a time.

A 2x256 LSTM (embedding 64, vocabulary 65, random weights written through the checkpoint
writer: speed does not depend on them) served by a real `charlm serve --threads 1` process;
the clients (httpx, asyncio) run in this process. Measured in one run, side by side:

- aggregate generated characters per second with 1, 8, 32 and 64 concurrent streaming
  clients, against the same requests served one after another;
- time to first token, p50 and p95, with 32 clients sending 200-character prompts at once;
- the library's own loop (`sample --num-samples`) with 1 and 32 streams, in this process:
  the ceiling the server works toward;
- a soak at 32 clients (requests of random length, back to back): failed requests and the
  server's resident memory growth after warm-up.

`python -m bench.serve [--quick] [--soak SECONDS]` prints the figures as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import torch

from bench.modes import Mode, mode
from charlm.config.schema import ModelConfig, RunConfig
from charlm.data.tokenizers import CharTokenizer
from charlm.generation.generate import GenerateConfig, generate
from charlm.generation.load import load_model
from charlm.models.lm import RNNLM
from charlm.rundir import checkpoint as ckpt_io

ALPHABET = "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ\n.,;:!?'-&$3"  # 65 characters
CLIENTS = (1, 8, 32, 64)
MODEL = "lstm-2x256"
ADDRESS = re.compile(r" at (http://\S+)/ ")


def _write_run(root: Path) -> Path:
    tok = CharTokenizer(list(ALPHABET))
    torch.manual_seed(0)
    model = ModelConfig(vocab_size=tok.vocab_size, embed_size=64, hidden_size=256, num_layers=2)
    run = root / MODEL
    run.mkdir()
    net = RNNLM(model)
    ck = ckpt_io.Checkpoint(RunConfig(model=model), tok.to_dict(), net.state_dict())
    ckpt_io.save(ck, run / ckpt_io.BEST)
    return run


class _Server:
    """`charlm serve RUN --threads 1` on a free port, until ``stop``."""

    def __init__(self, run: Path) -> None:
        cmd = [sys.executable, "-m", "charlm", "serve", str(run), "--port", "0", "--threads",
               "1", "--max-streams", "64", "--max-tokens", "100000"]  # fmt: skip
        self.proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
        found = threading.Event()
        self.url = ""

        def drain() -> None:
            for line in self.proc.stderr:
                if not self.url and (m := ADDRESS.search(line)):
                    self.url = m.group(1)
                    found.set()

        threading.Thread(target=drain, daemon=True).start()
        if not found.wait(300):
            raise RuntimeError("charlm serve did not start")

    def rss_mb(self) -> float:
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(60)


async def _stream(client: httpx.AsyncClient, url: str, prompt: str, tokens: int) -> dict:
    """One streamed request: characters received, seconds to the first, whole, and if it ended
    with [DONE]."""
    body = {"model": MODEL, "prompt": prompt, "max_tokens": tokens, "stream": True, "seed": 1}
    t0 = time.perf_counter()
    first, chars, done = None, 0, False
    async with client.stream("POST", f"{url}/v1/completions", json=body) as r:
        if r.status_code != 200:
            return {"status": r.status_code, "chars": 0, "first": None, "done": False}
        async for line in r.aiter_lines():
            if line == "data: [DONE]":
                done = True
            elif line.startswith("data: "):
                text = json.loads(line[6:])["choices"]
                got = sum(len(c["text"]) for c in text)
                if got and first is None:
                    first = time.perf_counter() - t0
                chars += got
    return {"status": 200, "chars": chars, "first": first, "done": done}


def _client(n: int) -> httpx.AsyncClient:
    return httpx.AsyncClient(limits=httpx.Limits(max_connections=n + 4), timeout=600)


async def _concurrent(url: str, clients: int, tokens: int) -> float:
    async with _client(clients) as c:
        t0 = time.perf_counter()
        out = await asyncio.gather(*(_stream(c, url, "The ", tokens) for _ in range(clients)))
        return sum(r["chars"] for r in out) / (time.perf_counter() - t0)


async def _one_by_one(url: str, requests: int, tokens: int) -> float:
    async with _client(1) as c:
        t0 = time.perf_counter()
        chars = 0
        for _ in range(requests):
            chars += (await _stream(c, url, "The ", tokens))["chars"]
        return chars / (time.perf_counter() - t0)


async def _first_tokens(url: str, clients: int, rounds: int) -> list[float]:
    rng = random.Random(0)
    waits: list[float] = []
    async with _client(clients) as c:
        for _ in range(rounds):
            prompts = [
                "".join(rng.choice(ALPHABET[:53]) for _ in range(200)) for _ in range(clients)
            ]
            out = await asyncio.gather(*(_stream(c, url, p, 20) for p in prompts))
            waits += [r["first"] for r in out]
    return waits


async def _soak(server: _Server, clients: int, seconds: float) -> dict[str, Any]:
    rng = random.Random(1)
    counts = {"ok": 0, "failed": 0}
    end = time.monotonic() + seconds
    warm = time.monotonic() + min(30.0, seconds / 5)
    rss: dict[str, float] = {}

    async def loop(c: httpx.AsyncClient) -> None:
        while time.monotonic() < end:
            try:
                r = await _stream(c, server.url, "The ", rng.randint(20, 600))
                counts["ok" if r["done"] else "failed"] += 1
            except httpx.HTTPError:
                counts["failed"] += 1
            if "start" not in rss and time.monotonic() >= warm:
                rss["start"] = server.rss_mb()

    async with _client(clients) as c:
        await asyncio.gather(*(loop(c) for _ in range(clients)))
    rss.setdefault("start", server.rss_mb())
    after = server.rss_mb()
    return {
        "clients": clients,
        "seconds": seconds,
        "requests": counts["ok"] + counts["failed"],
        "failed": counts["failed"],
        "rss_after_warmup_mb": round(rss["start"], 1),
        "rss_end_mb": round(after, 1),
        "rss_growth_mb": round(after - rss["start"], 1),
    }


def _library_rate(run: Path, streams: int, tokens: int) -> float:
    """`sample --num-samples STREAMS`'s loop in this process, at one thread: the ceiling the
    server's batching works toward, measured beside it (the host's load hits both)."""
    lm = load_model(run)
    torch.set_num_threads(1)
    cfg = GenerateConfig(length=tokens, num_samples=streams, seed=0)
    t0 = time.perf_counter()
    for _ in generate(lm.model, lm.tokenizer, [0], cfg):
        pass
    return streams * tokens / (time.perf_counter() - t0)


# Characters a request, requests one after another, rounds of first tokens, soak seconds.
SIZES: dict[Mode, tuple[int, int, int, float]] = {
    "full": (2000, 8, 5, 600.0),  # the soak's figure is the 10-minute run
    "quick": (500, 4, 2, 5.0),
    "smoke": (20, 1, 1, 0.5),
}


def run(quick: bool = False, smoke: bool = False, soak: float | None = None) -> dict[str, Any]:
    tokens, one_by_one_requests, rounds, soak_seconds = SIZES[mode(quick, smoke)]
    soak_seconds = soak if soak is not None else soak_seconds
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = _write_run(Path(tmp))
        library = {n: _library_rate(run_dir, n, tokens) for n in (1, 32)}
        server = _Server(run_dir)
        try:
            url = server.url
            asyncio.run(_concurrent(url, 8, 200))  # warm-up: imports, allocations, caches
            one_by_one = asyncio.run(_one_by_one(url, one_by_one_requests, tokens))
            rates = {n: asyncio.run(_concurrent(url, n, tokens)) for n in CLIENTS}
            waits = np.array(asyncio.run(_first_tokens(url, 32, rounds))) * 1000
            soaked = asyncio.run(_soak(server, 32, soak_seconds))
        finally:
            server.stop()
    return {
        "model": "LSTM 2x256, embedding 64, vocabulary 65; charlm serve --threads 1",
        "chars_per_request": tokens,
        "one_after_another_chars_per_s": round(one_by_one),
        "concurrent_chars_per_s": {str(n): round(r) for n, r in rates.items()},
        "speedup_over_one_after_another": {
            str(n): round(r / one_by_one, 2) for n, r in rates.items()
        },
        "library_chars_per_s": {str(n): round(r) for n, r in library.items()},
        "first_token_ms_32_clients_200_char_prompts": {
            "p50": round(float(np.percentile(waits, 50)), 1),
            "p95": round(float(np.percentile(waits, 95)), 1),
            "samples": len(waits),
        },
        "soak": soaked,
    }


if __name__ == "__main__":
    p = argparse.ArgumentParser(prog="python -m bench.serve", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--soak", type=float, default=None, metavar="SECONDS", help="soak length")
    args = p.parse_args()
    print(json.dumps(run(args.quick, soak=args.soak), indent=2))
