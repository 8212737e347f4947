"""`agentwrap doctor` and a real session agree on where each agent's requests go, for every
kind of login of every agent: doctor's profile row names an upstream, and a session (a
stand-in agent making one request through agentwrap) reaches exactly that host and path,
observed on the wire through an HTTPS_PROXY CONNECT proxy (tests have no network)."""

from __future__ import annotations

import base64
import json
import re
import ssl
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import trustme

from agentwrap.doctor import Context, DoctorOptions, run_checks
from tests.conftest import TEXT_SCRIPT
from tests.session.test_launcher import standin  # noqa: F401  (fixture)
from tests.support.upstream import ConnectProxy, ScriptedUpstream

HOSTS = ["api.anthropic.com", "api.openai.com", "chatgpt.com", "generativelanguage.googleapis.com",
         "cloudcode-pa.googleapis.com", "gw.example.com"]
PROTOCOL = {"claude": "anthropic", "codex": "responses", "gemini": "gemini"}


def _jwt(exp: float) -> str:
    part = base64.urlsafe_b64encode(json.dumps({"exp": exp}).encode()).decode().rstrip("=")
    return f"e30.{part}.sig"


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


# (agent, login kind) -> sets up HOME / env; returns extra environment variables
def _setup(agent: str, kind: str, home: Path) -> dict[str, str]:
    soon = time.time() + 3600
    if kind == "none":
        return {}
    if agent == "claude":
        if kind == "oauth":
            _write(home / ".claude" / ".credentials.json", json.dumps({"claudeAiOauth": {"accessToken": "t", "expiresAt": soon * 1000}}))
            return {}
        if kind == "api key":
            return {"ANTHROPIC_API_KEY": "user-key-claude-1"}
        if kind == "auth token":
            return {"ANTHROPIC_AUTH_TOKEN": "user-token-claude-1"}
        if kind == "gateway in environment":
            return {"ANTHROPIC_BASE_URL": "https://gw.example.com/anthropic", "ANTHROPIC_API_KEY": "user-key-claude-1"}
        if kind == "gateway in settings":
            _write(home / ".claude" / "settings.json", json.dumps(
                {"env": {"ANTHROPIC_BASE_URL": "https://gw.example.com/corp", "ANTHROPIC_AUTH_TOKEN": "user-token-1"}}))
            return {}
    if agent == "codex":
        if kind == "chatgpt":
            _write(home / ".codex" / "auth.json", json.dumps({"auth_mode": "chatgpt", "tokens": {"access_token": _jwt(soon)}}))
            return {}
        if kind == "api-key login":
            _write(home / ".codex" / "auth.json", json.dumps({"auth_mode": "apikey", "OPENAI_API_KEY": "sk-login-key-123456"}))
            return {}
        if kind == "OPENAI_API_KEY":
            return {"OPENAI_API_KEY": "user-key-codex-1"}
        if kind == "CODEX_API_KEY":
            return {"CODEX_API_KEY": "user-key-codex-1"}
        if kind == "provider in config":
            _write(home / ".codex" / "config.toml", 'model_provider = "corp"\n[model_providers.corp]\nname = "c"\n'
                   'base_url = "https://gw.example.com/openai/v1"\nenv_key = "CORP_KEY"\n')
            return {"CORP_KEY": "user-key-corp-1"}
    if agent == "gemini":
        if kind == "google login":
            _write(home / ".gemini" / "oauth_creds.json", json.dumps({"refresh_token": "r", "expiry_date": soon * 1000}))
            return {}
        if kind == "GEMINI_API_KEY":
            return {"GEMINI_API_KEY": "user-key-gemini-1"}
        if kind == "GOOGLE_API_KEY":
            return {"GOOGLE_API_KEY": "user-key-gemini-1"}
        if kind == "gateway in environment":
            return {"GOOGLE_GEMINI_BASE_URL": "https://gw.example.com/google", "GEMINI_API_KEY": "user-key-gemini-1"}
    raise AssertionError((agent, kind))


CASES = [
    ("claude", k) for k in ("none", "oauth", "api key", "auth token", "gateway in environment", "gateway in settings")
] + [
    ("codex", k) for k in ("none", "chatgpt", "api-key login", "OPENAI_API_KEY", "CODEX_API_KEY", "provider in config")
] + [
    ("gemini", k) for k in ("none", "google login", "GEMINI_API_KEY", "GOOGLE_API_KEY", "gateway in environment")
]


@pytest.mark.parametrize(("agent", "kind"), CASES)
def test_doctor_and_session_agree_on_the_upstream(agent, kind, standin, tmp_path, isolated_env, monkeypatch):
    extra = _setup(agent, kind, isolated_env)
    for name, value in extra.items():
        monkeypatch.setenv(name, value)
    work = tmp_path / "work"
    (work / ".git").mkdir(parents=True)
    monkeypatch.chdir(work)

    rows = run_checks(DoctorOptions(agents=(agent,)), Context.current())
    profile = next(r for r in rows if r.name == f"{agent} profile")
    match = re.search(r"native pass-through to (https?://\S+?)[,\s]", profile.detail + " ")
    assert match, profile.detail
    expected = urlsplit(match.group(1))

    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*HOSTS).configure_cert(server_ctx)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    with ScriptedUpstream(TEXT_SCRIPT, ssl_context=server_ctx) as up, ConnectProxy(up.port) as proxy:
        proc = standin.run(
            [agent, "--", "x"],
            **{**extra, "HTTPS_PROXY": proxy.url, "NO_PROXY": "", "SSL_CERT_FILE": str(ca_file), "STANDIN_PROTOCOL": PROTOCOL[agent]},
        )
    assert proc.returncode == 0, proc.stderr
    assert proxy.targets == [f"{expected.hostname}:{expected.port or 443}"], (profile.detail, proxy.targets)
    (req,) = up.requests
    assert req.path.startswith(expected.path.rstrip("/") + "/"), (profile.detail, req.path)
    for value in extra.values():  # a key the user configured went to this upstream, and only here
        if "key" in value or "token" in value:
            assert value in json.dumps(req.headers)
