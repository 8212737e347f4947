"""Upstream credentials: which header carries which key. No I/O, no asyncio:
the session resolves credentials before the agent starts, on the start-up path."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["UpstreamAuth", "auth_header"]


@dataclass(frozen=True, slots=True)
class UpstreamAuth:
    """The credential agentwrap puts on upstream requests for one backend.

    `header` is None when the agent's own auth passes through (or no auth is needed).
    """

    header: tuple[bytes, bytes] | None
    strip_agent_auth: bool


def auth_header(protocol: str, scheme: str, key: str) -> tuple[bytes, bytes]:
    """The header a backend of `protocol` expects for `key`; `scheme` is the key's own kind."""
    if protocol == "anthropic_messages":
        if scheme == "bearer":
            return (b"authorization", b"Bearer " + key.encode())
        return (b"x-api-key", key.encode())
    if protocol == "gemini":
        return (b"x-goog-api-key", key.encode())
    return (b"authorization", b"Bearer " + key.encode())
