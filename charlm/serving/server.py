"""Running the app under uvicorn: the listening socket, the logs on stderr, the shutdown.

On SIGTERM or Ctrl-C every open stream ends first, with a final chunk (finish_reason
"abort") and ``data: [DONE]``; then uvicorn stops accepting, lets the responses finish and
exits. A second Ctrl-C quits at once.
"""

from __future__ import annotations

import copy
import socket
from types import FrameType

import uvicorn
from uvicorn.config import LOGGING_CONFIG

from charlm.errors import ConfigError
from charlm.serving.app import create_app
from charlm.serving.catalog import ServedModel
from charlm.serving.engine import Engine
from charlm.serving.settings import ServeConfig

GRACE_SECONDS = 10  # for responses still being written after their streams ended


def listen(settings: ServeConfig) -> socket.socket:
    """The bound, listening socket (port 0: a free one), or ConfigError naming the fix."""
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((settings.host, settings.port))
        sock.listen(2048)
    except (OSError, OverflowError) as e:
        sock.close()
        reason = getattr(e, "strerror", None) or str(e)
        raise ConfigError(
            f"cannot listen on {settings.host}:{settings.port} ({reason}): choose another "
            "--port, or a --host address of this machine"
        ) from None
    return sock


def address(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, engines: list[Engine]) -> None:
        super().__init__(config)
        self.engines = engines

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # Streams first: uvicorn would otherwise wait for them to run to max_tokens.
        for engine in self.engines:
            engine.close(timeout=0)
        super().handle_exit(sig, frame)


def run(catalog: dict[str, ServedModel], settings: ServeConfig, sock: socket.socket) -> None:
    """Serve until SIGTERM or Ctrl-C (which comes back as KeyboardInterrupt)."""
    engines = [m.engine for m in catalog.values()]
    config = uvicorn.Config(
        create_app(catalog, settings),
        log_config=_stderr_logging(),
        access_log=settings.access_log,
        timeout_graceful_shutdown=GRACE_SECONDS,
        lifespan="off",
    )
    for engine in engines:
        engine.start()
    try:
        _Server(config, engines).run(sockets=[sock])
    finally:
        for engine in engines:
            engine.close()


def _stderr_logging() -> dict:
    """uvicorn's logging, every line on stderr (its access log goes to stdout by default,
    and stdout carries data only), without colours; charlm's own lines beside them."""
    cfg = copy.deepcopy(LOGGING_CONFIG)
    for handler in cfg["handlers"].values():
        handler["stream"] = "ext://sys.stderr"
    for formatter in cfg["formatters"].values():
        formatter["use_colors"] = False
    cfg["loggers"]["charlm.serve"] = {"handlers": ["default"], "level": "INFO"}
    return cfg
