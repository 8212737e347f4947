"""A backend's `max_output_tokens` through the real proxy: official SDK clients in front,
real scripted upstreams behind, recording the body each one got."""

from __future__ import annotations

import os

import anthropic
import httpx
import openai
import pytest
from google import genai
from google.genai import types as gtypes

from agentwrap.capture.reader import read_bundle
from agentwrap.capture.recorder import Capture, Recorder
from tests.conftest import write_profile

TEXT = "Hello from the scripted upstream."
SCRIPT = f'[[turns]]\ntext = "{TEXT}"\n'
ENV = {**os.environ, "UP_KEY": "k" * 12}
BASE = {"anthropic_messages": "", "openai_chat": "/v1", "openai_responses": "/v1", "gemini": ""}


def _profile(tmp_path, protocol: str, url: str, cap: int | None, *, name: str = "up", route_model: str | None = None):
    limit = f"max_output_tokens = {cap}\n" if cap is not None else ""
    model = f'model = "{route_model}"\n' if route_model else ""
    return write_profile(
        tmp_path / f"{name}.toml",
        f'[backends.{name}]\nprotocol = "{protocol}"\nbase_url = "{url}{BASE[protocol]}"\napi_key_env = "UP_KEY"\n{limit}\n'
        f'[[routes]]\nbackend = "{name}"\n{model}',
    )


def _claude(proxy) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=proxy.base_url, auth_token=proxy.secret, max_retries=0)


def _codex(proxy) -> openai.OpenAI:
    return openai.OpenAI(base_url=proxy.base_url + "/v1", api_key=proxy.secret, max_retries=0)


def _ask(client: anthropic.Anthropic, max_tokens: int, *, stream: bool = True, **kw) -> str:
    messages = [{"role": "user", "content": "hi"}]
    if not stream:
        return client.messages.create(model="claude-sonnet-x", max_tokens=max_tokens, messages=messages, timeout=30, **kw).content[0].text
    with client.messages.stream(model="claude-sonnet-x", max_tokens=max_tokens, messages=messages, **kw) as s:
        return "".join(s.text_stream)


def _claude_on_chat(start_proxy, upstream_factory, tmp_path, cap: int | None):
    up = upstream_factory(SCRIPT, default_protocol="openai_chat")
    proxy = start_proxy("claude", _profile(tmp_path, "openai_chat", up.url, cap), ENV)
    return up, proxy, _claude(proxy)


# -- translated: Claude Code (Anthropic Messages) to an OpenAI Chat backend -------------------


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "whole"])
def test_translated_request_above_the_cap_is_lowered(start_proxy, upstream_factory, tmp_path, stream):
    up, _, client = _claude_on_chat(start_proxy, upstream_factory, tmp_path, 8192)
    assert _ask(client, 128000, stream=stream) == TEXT
    (req,) = up.model_requests()
    assert req.path == "/v1/chat/completions"
    assert req.json["max_tokens"] == 8192


def test_translated_request_within_the_cap_is_unchanged(start_proxy, upstream_factory, tmp_path):
    up, _, client = _claude_on_chat(start_proxy, upstream_factory, tmp_path, 8192)
    assert _ask(client, 1000) == TEXT
    assert _ask(client, 8192) == TEXT
    assert [r.json["max_tokens"] for r in up.model_requests()] == [1000, 8192]


def test_without_the_setting_the_request_keeps_its_limit(start_proxy, upstream_factory, tmp_path):
    up, _, client = _claude_on_chat(start_proxy, upstream_factory, tmp_path, None)
    assert _ask(client, 128000) == TEXT
    assert up.model_requests()[0].json["max_tokens"] == 128000


def test_translated_request_without_a_limit_gets_the_cap(start_proxy, upstream_factory, tmp_path):
    """Codex sends no max_output_tokens; on a capped Chat backend the cap is set."""
    up = upstream_factory(SCRIPT, default_protocol="openai_chat")
    proxy = start_proxy("codex", _profile(tmp_path, "openai_chat", up.url, 4096), ENV)
    client = _codex(proxy)
    assert client.responses.create(model="gpt-test", input="hi").output_text == TEXT
    assert up.model_requests()[0].json["max_tokens"] == 4096


# -- pass-through: the backend speaks the agent's protocol ------------------------------------


@pytest.mark.parametrize("cap", [None, 8192], ids=["no-setting", "within-cap"])
def test_pass_through_body_is_sent_byte_for_byte(start_proxy, upstream_factory, tmp_path, cap):
    """No setting, or a limit within it: the agent's bytes go upstream as sent (no re-serialisation)."""
    up = upstream_factory(SCRIPT)
    proxy = start_proxy("claude", _profile(tmp_path, "anthropic_messages", up.url, cap), ENV)
    body = b'{ "model" : "m",  "max_tokens": 1000, "messages": [{"role": "user", "content": "caf\\u00e9"}] }'
    headers = {"content-type": "application/json", "anthropic-version": "2023-06-01"}
    r = httpx.post(proxy.base_url + "/v1/messages", content=body, headers=headers)
    assert r.status_code == 200, r.text
    (req,) = up.model_requests()
    assert req.body == body


def test_pass_through_lowers_max_tokens_and_the_thinking_budget(start_proxy, upstream_factory, tmp_path):
    up = upstream_factory(SCRIPT)
    profile = _profile(tmp_path, "anthropic_messages", up.url, 8192, route_model="local-model")
    client = _claude(start_proxy("claude", profile, ENV))
    assert _ask(client, 32000, thinking={"type": "enabled", "budget_tokens": 31999}) == TEXT
    assert _ask(client, 32000, thinking={"type": "enabled", "budget_tokens": 4000}) == TEXT
    first, second = (r.json for r in up.model_requests())
    assert first["max_tokens"] == 8192
    assert first["thinking"] == {"type": "enabled", "budget_tokens": 8192 - 1024}
    assert first["model"] == "local-model", "the route's model rewrite still applies"
    assert second["max_tokens"] == 8192 and second["thinking"]["budget_tokens"] == 4000, "a budget that fits stays"


def test_pass_through_lowers_the_responses_limit(start_proxy, upstream_factory, tmp_path):
    up = upstream_factory(SCRIPT, default_protocol="openai_responses")
    proxy = start_proxy("codex", _profile(tmp_path, "openai_responses", up.url, 16384), ENV)
    client = _codex(proxy)
    assert client.responses.create(model="gpt-test", input="hi", max_output_tokens=100000).output_text == TEXT
    assert client.responses.create(model="gpt-test", input="hi").output_text == TEXT
    first, second = (r.json for r in up.model_requests())
    assert first["max_output_tokens"] == 16384
    assert "max_output_tokens" not in second, "a request that sets no limit passes through without one"


def test_pass_through_lowers_the_gemini_limit(start_proxy, upstream_factory, tmp_path):
    up = upstream_factory(SCRIPT, default_protocol="gemini")
    proxy = start_proxy("gemini", _profile(tmp_path, "gemini", up.url, 8192), ENV)
    client = genai.Client(api_key=proxy.secret, http_options=gtypes.HttpOptions(base_url=proxy.base_url))
    config = gtypes.GenerateContentConfig(max_output_tokens=65536, temperature=0.5)
    text = "".join(c.text or "" for c in client.models.generate_content_stream(model="g", contents="hi", config=config))
    assert text == TEXT
    (req,) = up.model_requests()
    assert req.json["generationConfig"] == {"maxOutputTokens": 8192, "temperature": 0.5}


def test_the_cap_belongs_to_its_backend_on_failover(start_proxy, upstream_factory, tmp_path):
    a = upstream_factory(SCRIPT)
    b = upstream_factory(SCRIPT)
    a.fail_next(500, {"type": "error", "error": {"type": "api_error", "message": "down"}})
    profile = write_profile(
        tmp_path / "p.toml",
        f'[backends.a]\nprotocol = "anthropic_messages"\nbase_url = "{a.url}"\napi_key_env = "UP_KEY"\nmax_output_tokens = 8192\n'
        f'[backends.b]\nprotocol = "anthropic_messages"\nbase_url = "{b.url}"\napi_key_env = "UP_KEY"\n'
        '[[routes]]\nbackend = "a"\nfallbacks = ["b"]\n',
    )
    assert _ask(_claude(start_proxy("claude", profile, ENV)), 32000) == TEXT
    assert [r.json["max_tokens"] for r in a.model_requests()] == [8192]
    assert [r.json["max_tokens"] for r in b.model_requests()] == [32000]


# -- capture ----------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["openai_chat", "anthropic_messages"], ids=["translated", "pass-through"])
def test_capture_records_the_cap(start_proxy, upstream_factory, tmp_path, protocol):
    up = upstream_factory(SCRIPT, default_protocol=protocol)
    proxy = start_proxy("claude", _profile(tmp_path, protocol, up.url, 8192, name="local"), ENV)
    path = tmp_path / "run.cbor"
    rec = Recorder(str(path), {"agent": "claude"}, [])
    proxy.dispatcher.addons.add(Capture(rec))
    client = _claude(proxy)
    assert _ask(client, 32000) == TEXT
    assert _ask(client, 100) == TEXT
    rec.close({})
    first, second = read_bundle(path).exchanges
    notes = [g for g in first.guards if g.get("guard") == "max_output_tokens"]
    assert notes == [{"guard": "max_output_tokens", "backend": "local", "cap": 8192, "lowered": {"max_tokens": 32000}}]
    assert first.upstream_request.body.json["max_tokens"] == 8192
    assert not [g for g in second.guards if g.get("guard") == "max_output_tokens"], "nothing lowered, nothing recorded"
