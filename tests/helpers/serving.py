"""A `charlm serve` process on a free port, as a user starts it, for the serving tests."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

STARTUP_SECONDS = 180  # importing torch and loading on a busy machine; not a measurement
ADDRESS = re.compile(r" at (http://\S+)/ ")


@dataclass
class Server:
    url: str
    proc: subprocess.Popen
    log: list[str] = field(default_factory=list)  # its stderr lines so far

    @property
    def api(self) -> str:
        return self.url + "/v1"


@contextmanager
def running_server(run: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[Server]:
    """`charlm serve RUN --port 0 --threads 1 ARGS`, until the block ends (then SIGTERM)."""
    cmd = [sys.executable, "-m", "charlm", "serve", str(run), "--port", "0", "--threads", "1"]
    proc = subprocess.Popen(
        [*cmd, *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    log: list[str] = []
    found = threading.Event()

    def drain() -> None:  # the pipe must never fill, or the server would block on its log
        for line in proc.stderr:
            log.append(line)
            if ADDRESS.search(line):
                found.set()

    threading.Thread(target=drain, daemon=True).start()
    try:
        if not found.wait(STARTUP_SECONDS):
            raise AssertionError("charlm serve did not start:\n" + "".join(log))
        url = next(m.group(1) for line in log if (m := ADDRESS.search(line)))
        yield Server(url, proc, log)
    finally:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
