"""What `charlm serve` is told: where to listen, what it lets one client ask for."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from charlm.errors import ConfigError

LOOPBACK = "127.0.0.1"
API_KEY_ENV = "CHARLM_API_KEY"  # the key, when --api-key is not given


@dataclass(frozen=True)
class ServeConfig:
    host: str = LOOPBACK  # loopback only: another machine reaches it only when asked
    port: int = 8000  # 0 picks a free port
    max_streams: int = 32  # streams generated at once, over all clients; more wait with 429
    max_tokens: int = 4096  # the largest max_tokens a request may ask for
    max_prompt_chars: int = 100_000  # the longest prompt or text to score
    max_body_bytes: int = 1_000_000  # a larger request body is refused with 413
    api_key: str | None = None  # when set, /v1/ needs "Authorization: Bearer KEY"
    cors_origins: tuple[str, ...] = ()  # origins whose pages may call the API; none by default
    access_log: bool = True  # one line per request on stderr

    def __post_init__(self) -> None:
        if not self.host:
            raise ConfigError("--host needs an address, e.g. 127.0.0.1 or 0.0.0.0")
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"--port must be in 0..65535 (got {self.port}); 0 picks a free one")
        for name in ("max_streams", "max_tokens", "max_prompt_chars", "max_body_bytes"):
            if getattr(self, name) < 1:
                flag = "--" + name.replace("_", "-")
                raise ConfigError(f"{flag} must be at least 1 (got {getattr(self, name)})")
        if self.api_key is not None and not self.api_key.strip():
            raise ConfigError(f"--api-key (or {API_KEY_ENV}) is empty: give a key or leave it out")
        for origin in self.cors_origins:
            if origin != "*" and not origin.startswith(("http://", "https://")):
                raise ConfigError(
                    f"--cors-origin {origin!r} is no origin: give one like https://example.org"
                )

    @property
    def public(self) -> bool:
        """Whether other machines can reach the server (not only this one)."""
        try:
            return not ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return self.host != "localhost"
