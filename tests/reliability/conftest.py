"""Fixtures of the reliability suite: a fault upstream per test, and the proxy of each
route kind (pass-through: the backend speaks the agent's protocol; translated: it
speaks another one) pointed at it."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO, write_profile
from tests.reliability.faults import FAULT_SERVER_THREAD, FaultServer

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


def profile_for(tmp_path: Path, backend: str, url: str, *, timeout_s: float | None = None, name: str = "up",
                extra: str = "", route_extra: str = "") -> Path:
    """A one-backend profile; `extra`, `route_extra`: more `key = value` lines for the backend's
    table and for its route."""
    base = url + ("/v1" if backend.startswith("openai") else "")
    timeout = f"timeout_s = {timeout_s}\n" if timeout_s else ""
    return write_profile(
        tmp_path / f"{name}.toml",
        f'[backends.{name}]\nprotocol = "{backend}"\nbase_url = "{base}"\napi_key_env = "UP_KEY"\n{timeout}{extra}'
        f'\n[[routes]]\nbackend = "{name}"\n{route_extra}',
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

    def make(protocol: str, route: str, url: str, timeout_s: float | None = None, extra: str = "", route_extra: str = ""):
        backend = backend_protocol(protocol, route)
        profile = profile_for(tmp_path, backend, url, timeout_s=timeout_s, extra=extra, route_extra=route_extra)
        return start_proxy(AGENT_OF[protocol], profile, {**os.environ, "UP_KEY": UP_KEY})

    return make


class ProxyProcess:
    """A proxy in its own process (tests/reliability/proxy_proc.py)."""

    def __init__(self, proc: subprocess.Popen, info: dict, stderr_path: Path) -> None:
        self.proc, self.port, self.secret, self.pid = proc, info["port"], info["secret"], info["pid"]
        self.base_url = f"http://127.0.0.1:{self.port}/{self.secret}"
        self._stderr_path = stderr_path

    def stop(self) -> str:
        """Stop the proxy; return everything it printed on stderr."""
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self._stderr_path.read_text(errors="replace")


@pytest.fixture
def proxy_process(tmp_path: Path) -> Iterator:
    """proxy_process(protocol, route, upstream_url, nofile=None) -> a ProxyProcess, stopped at teardown."""
    started: list[ProxyProcess] = []

    def start(protocol: str, route: str, url: str, nofile: int | None = None) -> ProxyProcess:
        profile = profile_for(tmp_path, backend_protocol(protocol, route), url, name=f"p{len(started)}")
        stderr_path = tmp_path / f"proxy{len(started)}.stderr"
        argv = [sys.executable, "-m", "tests.reliability.proxy_proc", AGENT_OF[protocol], str(profile)]
        if nofile is not None:
            argv.append(str(nofile))
        with open(stderr_path, "wb") as err:
            proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                                    env={**os.environ, "UP_KEY": UP_KEY, "PYTHONPATH": str(REPO)}, cwd=str(REPO))
        line = proc.stdout.readline()
        proc.stdout.close()
        if not line:
            proc.wait(5)
            raise AssertionError(f"the proxy process did not start: {stderr_path.read_text()}")
        pp = ProxyProcess(proc, json.loads(line), stderr_path)
        started.append(pp)
        return pp

    yield start
    for pp in started:
        pp.stop()


@pytest.fixture
def printed(capfd, caplog):
    """printed() -> what agentwrap would have put on the agent's terminal since the last call:
    its stderr, plus the log records (asyncio's among them) that Python's last-resort handler
    prints in a real run; under pytest the logging plugin diverts those from stderr. Records
    of the fault server's own thread are not agentwrap's."""
    caplog.set_level(logging.WARNING)

    def read() -> str:
        _, err = capfd.readouterr()
        records = [r for r in caplog.records if r.levelno >= logging.WARNING and r.threadName != FAULT_SERVER_THREAD]
        caplog.clear()
        return err + "".join(f"{r.name}: {r.getMessage()}\n" for r in records)

    return read
