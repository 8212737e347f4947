"""Shared fixtures: an isolated HOME and environment per test, a scripted upstream,
and a running proxy built from the same pieces a session uses."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

# CI runs the property tests with a fixed seed sequence, so a landing is decided by
# the code, not by which random examples a run drew; local runs keep exploring.
settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

from agentwrap.agents import AGENTS
from agentwrap.session import BoundProxy, bind_proxy, resolve_plan
from tests.support.upstream import ScriptedUpstream

REPO = Path(__file__).resolve().parent.parent
AGENTS_BIN = REPO / ".agents" / "node_modules" / ".bin"

PROVIDER_VARS = (
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
    "ANTHROPIC_BASE_URL",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "CODEX_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "GOOGLE_GEMINI_BASE_URL",
    "GEMINI_CLI_SYSTEM_SETTINGS_PATH",
    "CODE_ASSIST_ENDPOINT",
    "AGENTWRAP_PROFILE",
    "AGENTWRAP_DEBUG",
    "HTTPS_PROXY",
    "HTTP_PROXY",
    "ALL_PROXY",
    "https_proxy",
    "http_proxy",
    "all_proxy",
)


# Official SDK clients a test makes are closed when it ends. Left open, a client is freed
# later by the cycle collector, whose finalizers may run the socket's before the client's
# own close: an "unclosed socket" ResourceWarning then lands in whichever test runs then.
_SDK_CLIENTS = (("anthropic", "Anthropic"), ("openai", "OpenAI"), ("google.genai", "Client"))
_made_clients: list = []


@pytest.fixture(scope="session", autouse=True)
def _sdk_clients_recorded() -> Iterator[None]:
    import weakref

    patched = []
    for module_name, name in _SDK_CLIENTS:
        module = sys.modules.get(module_name)  # the test modules that use one have imported it
        cls = getattr(module, name, None)
        if cls is None:
            continue
        original = cls.__init__

        def init(self, *args, __original=original, **kwargs) -> None:
            __original(self, *args, **kwargs)
            _made_clients.append(weakref.ref(self))

        cls.__init__ = init
        patched.append((cls, original))
    yield
    for cls, original in patched:
        cls.__init__ = original


@pytest.fixture(autouse=True)
def _sdk_clients_closed(_sdk_clients_recorded: None) -> Iterator[None]:
    yield
    while _made_clients:
        client = _made_clients.pop()()
        if client is not None:
            try:
                client.close()
            except Exception:  # a client whose transport a test replaced or already closed
                pass


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own HOME and config dirs and starts with no provider keys."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / ".local" / "state"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    for var in PROVIDER_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "*")
    if AGENTS_BIN.is_dir():
        monkeypatch.setenv("PATH", f"{AGENTS_BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    return home


def write_profile(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def http_profile(tmp_path: Path, protocol: str, base_url: str, *, api_key_env: str | None = None, name: str = "up") -> Path:
    key = f'api_key_env = "{api_key_env}"\n' if api_key_env else ""
    return write_profile(
        tmp_path / f"{name}.toml",
        f'[backends.{name}]\nprotocol = "{protocol}"\nbase_url = "{base_url}"\n{key}\n[[routes]]\nbackend = "{name}"\n',
    )


class RunningProxy:
    def __init__(self, bound: BoundProxy) -> None:
        self.bound = bound
        self.server = bound.server
        self.dispatcher = bound.dispatcher
        self.stats = bound.stats
        self.secret = bound.secret
        self.base_url = bound.base_url
        self.port = bound.server.port


@pytest.fixture
def start_proxy() -> Iterator:
    """start_proxy(agent, profile_path, env=None) -> RunningProxy; stopped at teardown."""
    started: list[RunningProxy] = []

    def start(agent: str, profile: str | Path | None, env: dict[str, str] | None = None) -> RunningProxy:
        env = dict(os.environ if env is None else env)
        spec = AGENTS[agent]
        plan = resolve_plan(spec, str(profile) if profile else None, env)
        bound = bind_proxy(spec, plan, env)
        bound.server.start()
        rp = RunningProxy(bound)
        started.append(rp)
        return rp

    yield start
    for rp in started:
        rp.server.stop(grace_s=0.5)


@pytest.fixture
def upstream_factory() -> Iterator:
    ups: list[ScriptedUpstream] = []

    def make(script: str, **kw) -> ScriptedUpstream:
        up = ScriptedUpstream(script, **kw).__enter__()
        ups.append(up)
        return up

    yield make
    for up in ups:
        up.__exit__(None, None, None)


TEXT_SCRIPT = '[[turns]]\ntext = "Hello from the scripted upstream."\n'

PYTHON = sys.executable
