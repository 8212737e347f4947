"""`agentwrap doctor --online`: one real HTTP request per backend, against loopback
upstreams that accept or reject the key."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

from agentwrap.doctor import FAIL, OK, SKIP, WARN, Check, Context, DoctorOptions, doctor_document, run_checks
from tests.conftest import TEXT_SCRIPT, write_profile

KEY = "sk-online-secret-key-5e6f"  # last four: 5e6f


@pytest.fixture
def work(work: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The doctor tests' working directory (conftest.py), with the backend key set."""
    monkeypatch.setenv("UP_KEY", KEY)
    return work


def online(agent: str | tuple[str, ...], work: Path, profile: Path | str | None, timeout_s: float = 5.0) -> list[Check]:
    agents = (agent,) if isinstance(agent, str) else agent
    ctx = Context(env=dict(os.environ), cwd=work, claude_managed_settings=())
    opts = DoctorOptions(agents=agents, profile=str(profile) if profile else None, online=True, timeout_s=timeout_s, agents_named=True)
    rows = run_checks(opts, ctx)
    assert KEY not in json.dumps(doctor_document(rows))
    return rows


def online_rows(rows: list[Check]) -> list[Check]:
    return [r for r in rows if r.name.startswith("online")]


def one(rows: list[Check], name: str) -> Check:
    found = [r for r in rows if r.name == name]
    assert len(found) == 1, (name, [r.name for r in rows])
    return found[0]


def backend_profile(path: Path, protocol: str, base_url: str, *, name: str = "up", extra: str = "", model: str | None = None) -> Path:
    route = f'[[routes]]\nbackend = "{name}"\n' + (f'model = "{model}"\n' if model else "")
    return write_profile(
        path,
        f'[backends.{name}]\nprotocol = "{protocol}"\nbase_url = "{base_url}"\napi_key_env = "UP_KEY"\n{extra}\n{route}',
    )


def test_anthropic_backend_accepts_the_key(work, upstream_factory):
    up = upstream_factory(TEXT_SCRIPT)
    profile = backend_profile(work / "p.toml", "anthropic_messages", up.url)
    r = one(online("claude", work, profile), "online up")
    assert r.status == OK and "200" in r.detail and "1 model" in r.detail and "UP_KEY" in r.detail
    assert len(up.requests) == 1
    req = up.requests[0]
    assert req.method == "GET" and req.path.split("?")[0] == "/v1/models"
    assert req.headers["x-api-key"] == KEY and req.headers["anthropic-version"] == "2023-06-01"


def test_anthropic_bearer_scheme_and_extra_headers(work, upstream_factory):
    up = upstream_factory(TEXT_SCRIPT, prefix="/api")
    profile = backend_profile(work / "p.toml", "anthropic_messages", up.url,
                              extra='auth_scheme = "bearer"\nheaders = { "X-Team" = "blue" }\n')
    assert one(online("claude", work, profile), "online up").status == OK
    req = up.requests[0]
    assert req.path.split("?")[0] == "/api/v1/models"
    assert req.headers["authorization"] == f"Bearer {KEY}" and "x-api-key" not in req.headers
    assert req.headers["x-team"] == "blue"


def test_rejected_key_fails(work, upstream_factory):
    up = upstream_factory(TEXT_SCRIPT)
    up.fail_next(401, {"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}})
    profile = backend_profile(work / "p.toml", "anthropic_messages", up.url)
    r = one(online("claude", work, profile), "online up")
    assert r.status == FAIL and "key rejected" in r.detail and "401" in r.detail and "UP_KEY" in r.fix
    assert len(up.requests) == 1


def test_forbidden_is_a_rejection_too(work, upstream_factory):
    up = upstream_factory(TEXT_SCRIPT, default_protocol="openai_responses")
    up.fail_next(403, {"error": {"message": "no access"}})
    profile = backend_profile(work / "p.toml", "openai_responses", up.url + "/v1")
    r = one(online("codex", work, profile), "online up")
    assert r.status == FAIL and "key rejected" in r.detail


def test_openai_backend_uses_bearer_on_models(work, upstream_factory):
    up = upstream_factory(TEXT_SCRIPT, default_protocol="openai_responses")
    profile = backend_profile(work / "p.toml", "openai_responses", up.url + "/v1")
    assert one(online("codex", work, profile), "online up").status == OK
    req = up.requests[0]
    assert req.path == "/v1/models" and req.headers["authorization"] == f"Bearer {KEY}"


def test_gemini_backend_uses_the_goog_key_header(work, upstream_factory):
    up = upstream_factory(TEXT_SCRIPT, default_protocol="gemini")
    profile = backend_profile(work / "p.toml", "gemini", up.url)
    assert one(online("gemini", work, profile), "online up").status == OK
    req = up.requests[0]
    assert req.path.split("?")[0] == "/v1beta/models" and req.headers["x-goog-api-key"] == KEY
    assert "authorization" not in req.headers


def test_route_model_known_or_not(work, upstream_factory):
    up = upstream_factory(TEXT_SCRIPT)
    known = backend_profile(work / "known.toml", "anthropic_messages", up.url, model="scripted")
    r = one(online("claude", work, known), "online up")
    assert r.status == OK and "'scripted' listed" in r.detail
    unknown = backend_profile(work / "unknown.toml", "anthropic_messages", up.url, model="claude-nonexistent-9")
    r = one(online("claude", work, unknown), "online up")
    assert r.status == WARN and "'claude-nonexistent-9' not in the list" in r.detail and r.fix


def test_other_status_is_a_warning(work, upstream_factory):
    up = upstream_factory(TEXT_SCRIPT)
    up.fail_next(404, {"error": "not found"})
    profile = backend_profile(work / "p.toml", "anthropic_messages", up.url)
    r = one(online("claude", work, profile), "online up")
    assert r.status == WARN and "HTTP 404" in r.detail and "/v1" in r.detail


def test_connection_refused_is_unreachable(work):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    profile = backend_profile(work / "p.toml", "anthropic_messages", f"http://127.0.0.1:{port}")
    r = one(online("claude", work, profile), "online up")
    assert r.status == FAIL and r.detail.startswith("unreachable") and "base_url" in r.fix


def test_silent_server_times_out(work):
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts into the backlog, never answers
        profile = backend_profile(work / "p.toml", "anthropic_messages", f"http://127.0.0.1:{silent.getsockname()[1]}")
        r = one(online("claude", work, profile, timeout_s=0.5), "online up")
    assert r.status == FAIL and "unreachable" in r.detail and "timed out after 0.5 s" in r.detail and "--timeout" in r.fix


def test_never_more_than_one_request_per_backend(work, upstream_factory):
    ant = upstream_factory(TEXT_SCRIPT)
    oai = upstream_factory(TEXT_SCRIPT, default_protocol="openai_responses")
    gem = upstream_factory(TEXT_SCRIPT, default_protocol="gemini")
    profile = write_profile(work / "all.toml", f"""
[backends.ant]
protocol = "anthropic_messages"
base_url = "{ant.url}"
api_key_env = "UP_KEY"
[backends.oai]
protocol = "openai_responses"
base_url = "{oai.url}/v1"
api_key_env = "UP_KEY"
[backends.gem]
protocol = "gemini"
base_url = "{gem.url}"
api_key_env = "UP_KEY"

[[routes]]
when = {{ agent = "claude" }}
backend = "ant"
fallbacks = ["oai"]
[[routes]]
when = {{ agent = "codex" }}
backend = "oai"
[[routes]]
backend = "gem"
""")
    rows = online(("claude", "codex", "gemini"), work, profile)
    assert [r.status for r in online_rows(rows)] == [OK, OK, OK]
    assert len(ant.requests) == len(oai.requests) == len(gem.requests) == 1
    assert "used by claude, codex, gemini" in one(rows, "online gem").detail


def test_missing_key_and_login_pass_through_are_skipped(work, upstream_factory, monkeypatch):
    up = upstream_factory(TEXT_SCRIPT)
    monkeypatch.delenv("UP_KEY")
    profile = backend_profile(work / "p.toml", "anthropic_messages", up.url)
    assert one(online("claude", work, profile), "online up").status == SKIP
    assert up.requests == []
    native = one(online("claude", work, None), "online native (claude)")  # no key: Claude Code's own login
    assert native.status == SKIP and "login" in native.detail


def test_scripted_backends_need_no_request(work):
    rows = online("claude", work, "offline")
    assert online_rows(rows) == []


def test_offline_by_default(work, upstream_factory):
    up = upstream_factory(TEXT_SCRIPT)
    profile = backend_profile(work / "p.toml", "anthropic_messages", up.url)
    ctx = Context(env=dict(os.environ), cwd=work, claude_managed_settings=())
    rows = run_checks(DoctorOptions(agents=("claude",), profile=str(profile)), ctx)
    assert online_rows(rows) == [] and up.requests == []


def test_keyless_backend_that_wants_a_key(work, upstream_factory, monkeypatch):
    from agentwrap.config import builtin_profiles_dir

    up = upstream_factory(TEXT_SCRIPT)
    up.fail_next(401, {"error": "missing key"})
    script = builtin_profiles_dir() / "scripts" / "offline.toml"
    profile = write_profile(work / "p.toml", f"""
[backends.up]
protocol = "anthropic_messages"
base_url = "{up.url}"
[backends.local]
type = "scripted"
script = "{script}"
[[routes]]
backend = "up"
fallbacks = ["local"]
""")
    r = one(online("claude", work, profile), "online up")
    assert r.status == FAIL and "without a key" in r.detail and "api_key_env" in r.fix
    assert "x-api-key" not in up.requests[0].headers and "authorization" not in up.requests[0].headers
