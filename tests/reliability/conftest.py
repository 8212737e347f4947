"""Fixtures of the reliability suite: a fault upstream per test, and the proxy of each
route kind (pass-through: the backend speaks the agent's protocol; translated: it
speaks another one) pointed at it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import write_profile
from tests.reliability.faults import FaultServer

# The provider key agentwrap holds for the upstream; it must never reach the agent.
UP_KEY = "sk-upstream-KEY-0d1e2a3d4b5e6e7f"

AGENT_OF = {"anthropic_messages": "claude", "openai_chat": "codex", "openai_responses": "codex", "gemini": "gemini"}
# The backend protocol each front-end protocol is translated to on the translated route.
TRANSLATED_TO = {
    "anthropic_messages": "openai_chat",
    "openai_chat": "anthropic_messages",
    "openai_responses": "gemini",
    "gemini": "openai_responses",
}


def backend_protocol(protocol: str, route: str) -> str:
    return protocol if route == "passthrough" else TRANSLATED_TO[protocol]


def profile_for(tmp_path: Path, backend: str, url: str, *, timeout_s: float | None = None, name: str = "up") -> Path:
    base = url + ("/v1" if backend.startswith("openai") else "")
    timeout = f"timeout_s = {timeout_s}\n" if timeout_s else ""
    return write_profile(
        tmp_path / f"{name}.toml",
        f'[backends.{name}]\nprotocol = "{backend}"\nbase_url = "{base}"\napi_key_env = "UP_KEY"\n{timeout}'
        f'\n[[routes]]\nbackend = "{name}"\n',
    )


@pytest.fixture
def fault_server() -> Iterator:
    """fault_server(handler=serve_good, prefix="") -> a running FaultServer, stopped at teardown."""
    servers: list[FaultServer] = []

    def make(handler=None, prefix: str = "") -> FaultServer:
        server = FaultServer(prefix=prefix) if handler is None else FaultServer(handler, prefix=prefix)
        servers.append(server.__enter__())
        return server

    yield make
    for server in servers:
        server.__exit__(None, None, None)


@pytest.fixture
def route_proxy(start_proxy, tmp_path: Path):
    """route_proxy(protocol, route, upstream_url, timeout_s=None) -> a RunningProxy whose
    one backend is at `upstream_url`, speaking `protocol` (passthrough) or its translation."""

    def make(protocol: str, route: str, url: str, timeout_s: float | None = None):
        backend = backend_protocol(protocol, route)
        profile = profile_for(tmp_path, backend, url, timeout_s=timeout_s)
        return start_proxy(AGENT_OF[protocol], profile, {**os.environ, "UP_KEY": UP_KEY})

    return make
