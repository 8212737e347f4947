"""Routing, failover and in-chat commands through the real proxy, with the Anthropic SDK
as the client and real scripted upstreams behind it."""

from __future__ import annotations

import os
import socket
import time

import anthropic
import pytest

from tests.conftest import write_profile

A_TEXT = "Answer from upstream A."
B_TEXT = "Answer from upstream B."


def _two(upstream_factory):
    a = upstream_factory(f'[[turns]]\ntext = "{A_TEXT}"\n')
    b = upstream_factory(f'[[turns]]\ntext = "{B_TEXT}"\n')
    return a, b


def _profile(tmp_path, a_url: str, b_url: str, routes: str):
    return write_profile(
        tmp_path / "routes.toml",
        f"""
[backends.a]
protocol = "anthropic_messages"
base_url = "{a_url}"
api_key_env = "UP_KEY"

[backends.b]
protocol = "anthropic_messages"
base_url = "{b_url}"
api_key_env = "UP_KEY"
{routes}
""",
    )


def _client(proxy) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=proxy.base_url, auth_token=proxy.secret, max_retries=0)


def _ask(client, text: str = "hi", model: str = "claude-sonnet-x", **kw) -> str:
    with client.messages.stream(model=model, max_tokens=64, messages=[{"role": "user", "content": text}], **kw) as s:
        return "".join(s.text_stream)


ENV = {**os.environ, "UP_KEY": "k" * 12}


def test_split_by_model_glob(start_proxy, upstream_factory, tmp_path):
    a, b = _two(upstream_factory)
    routes = '[[routes]]\nwhen = { model = "*haiku*" }\nbackend = "a"\n\n[[routes]]\nbackend = "b"\n'
    client = _client(start_proxy("claude", _profile(tmp_path, a.url, b.url, routes), ENV))
    assert _ask(client, model="claude-haiku-4") == A_TEXT
    assert _ask(client, model="claude-sonnet-4") == B_TEXT
    assert [r.json["model"] for r in a.requests] == ["claude-haiku-4"]
    assert [r.json["model"] for r in b.requests] == ["claude-sonnet-4"]


def test_split_background_subagent_and_size(start_proxy, upstream_factory, tmp_path):
    a, b = _two(upstream_factory)
    c = upstream_factory('[[turns]]\ntext = "Answer from upstream C."\n')
    routes = f"""
[backends.c]
protocol = "anthropic_messages"
base_url = "{c.url}"
api_key_env = "UP_KEY"

[[routes]]
when = {{ background = true }}
backend = "a"

[[routes]]
when = {{ subagent = true }}
backend = "c"

[[routes]]
when = {{ min_input_tokens = 2000 }}
backend = "c"
model = "long-context-model"

[[routes]]
backend = "b"
"""
    proxy = start_proxy("claude", _profile(tmp_path, a.url, b.url, routes), ENV)
    client = _client(proxy)
    assert _ask(client, model="claude-3-5-haiku-latest") == A_TEXT  # background: the small/fast model
    assert _ask(client, extra_headers={"x-claude-code-agent-id": "explorer-1"}) == "Answer from upstream C."
    assert _ask(client, text="x " * 6000) == "Answer from upstream C."  # ~12 kB: over 2000 estimated tokens
    assert _ask(client) == B_TEXT
    assert len(a.requests) == 1 and len(b.requests) == 1 and len(c.requests) == 2
    assert c.requests[1].json["model"] == "long-context-model"


def _dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


@pytest.mark.parametrize("failure", ["refused", "529", "500"])
def test_failing_backend_fails_over_once(start_proxy, upstream_factory, tmp_path, failure):
    a, b = _two(upstream_factory)
    a_url = _dead_url() if failure == "refused" else a.url
    if failure != "refused":
        a.fail_next(int(failure), {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}})
    routes = '[[routes]]\nbackend = "a"\nfallbacks = ["b"]\n'
    proxy = start_proxy("claude", _profile(tmp_path, a_url, b.url, routes), ENV)
    # the stream the agent gets is B's, whole and once
    client = _client(proxy)
    with client.messages.stream(model="m", max_tokens=8, messages=[{"role": "user", "content": "hi"}]) as s:
        events = [e.type for e in s]
    assert events.count("message_start") == 1 and events.count("message_stop") == 1
    assert len(b.requests) == 1
    assert proxy.stats.failovers == 1


def test_retry_after_is_honoured_on_the_same_backend(start_proxy, upstream_factory, tmp_path):
    a, b = _two(upstream_factory)
    a.fail_next(429, {"type": "error", "error": {"type": "rate_limit_error", "message": "wait"}}, {"retry-after": "1"})
    routes = '[[routes]]\nbackend = "a"\nfallbacks = ["b"]\n'
    client = _client(start_proxy("claude", _profile(tmp_path, a.url, b.url, routes), ENV))
    t0 = time.monotonic()
    assert _ask(client) == A_TEXT
    assert time.monotonic() - t0 >= 0.9
    assert len(a.requests) == 2 and b.requests == []


def test_every_option_failing_gives_the_last_upstream_error_verbatim(start_proxy, upstream_factory, tmp_path):
    a, b = _two(upstream_factory)
    a.fail_next(503, {"type": "error", "error": {"type": "api_error", "message": "a down"}})
    last = {"type": "error", "error": {"type": "overloaded_error", "message": "b down too"}}
    b.fail_next(529, last)
    routes = '[[routes]]\nbackend = "a"\nfallbacks = ["b"]\n'
    client = _client(start_proxy("claude", _profile(tmp_path, a.url, b.url, routes), ENV))
    with pytest.raises(anthropic.APIStatusError) as info:
        client.messages.create(model="m", max_tokens=8, messages=[{"role": "user", "content": "hi"}])
    assert info.value.status_code == 529 and info.value.body == last


def test_in_chat_model_command_changes_the_next_request(start_proxy, upstream_factory, tmp_path):
    a, b = _two(upstream_factory)
    proxy = start_proxy("claude", _profile(tmp_path, a.url, b.url, '[[routes]]\nbackend = "a"\n'), ENV)
    client = _client(proxy)
    reply = _ask(client, text="!/model(claude-special-9)")
    assert "claude-special-9" in reply
    assert a.requests == [], "a command never reaches a backend"
    assert _ask(client) == A_TEXT
    assert a.requests[0].json["model"] == "claude-special-9"
    status = client.messages.create(model="m", max_tokens=8, messages=[{"role": "user", "content": "!/status"}])
    assert "claude-special-9" in status.content[0].text and "agentwrap status" in status.content[0].text
    assert "Known commands" in _ask(client, text="!/frobnicate")
    assert "overrides cleared" in _ask(client, text="!/reset")
    _ask(client)
    assert a.requests[-1].json["model"] == "claude-sonnet-x"


def test_in_chat_backend_command_and_history_does_not_retrigger(start_proxy, upstream_factory, tmp_path):
    a, b = _two(upstream_factory)
    proxy = start_proxy("claude", _profile(tmp_path, a.url, b.url, '[[routes]]\nbackend = "a"\n'), ENV)
    client = _client(proxy)
    assert "backend b" in _ask(client, text="!/backend(b)")
    history = [
        {"role": "user", "content": "!/backend(a)"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "now a normal question"},
    ]
    with client.messages.stream(model="m", max_tokens=8, messages=history) as s:
        assert "".join(s.text_stream) == B_TEXT  # the old command in history changed nothing
    assert "unknown backend" in _ask(client, text="!/backend(nope)")
