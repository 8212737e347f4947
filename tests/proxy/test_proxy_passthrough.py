"""The proxy with the official SDKs as clients and a real scripted upstream behind it."""

from __future__ import annotations

import json
import os
import socket
import threading
import time

import anthropic
import httpx
import openai
import pytest
from google import genai
from google.genai import types as gtypes

from tests.conftest import TEXT_SCRIPT, http_profile, write_profile

UP_KEY = "upstream-key-0123456789"


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, **extra}


def _assert_no_secret(up, secret: str) -> None:
    for r in up.requests:
        assert secret not in r.path
        assert all(secret not in v for v in r.headers.values()), r.headers
        assert secret.encode() not in r.body


def test_anthropic_sdk_streams_through_proxy_with_injected_key(start_proxy, upstream_factory, tmp_path):
    up = upstream_factory(TEXT_SCRIPT)
    profile = http_profile(tmp_path, "anthropic_messages", up.url, api_key_env="UP_KEY")
    proxy = start_proxy("claude", profile, _env(UP_KEY=UP_KEY))
    client = anthropic.Anthropic(base_url=proxy.base_url, auth_token=proxy.secret, max_retries=0)
    with client.messages.stream(
        model="claude-test", max_tokens=64, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Hello from the scripted upstream."
    assert final.stop_reason == "end_turn"
    (req,) = up.model_requests()
    assert req.path == "/v1/messages"
    assert req.headers["x-api-key"] == UP_KEY
    assert "authorization" not in req.headers
    assert req.json["model"] == "claude-test"
    _assert_no_secret(up, proxy.secret)
    assert proxy.stats.requests == 1


def test_anthropic_non_streaming_and_keep_alive_upstream(start_proxy, upstream_factory, tmp_path):
    up = upstream_factory(TEXT_SCRIPT)
    profile = http_profile(tmp_path, "anthropic_messages", up.url, api_key_env="UP_KEY")
    proxy = start_proxy("claude", profile, _env(UP_KEY=UP_KEY))
    client = anthropic.Anthropic(base_url=proxy.base_url, auth_token=proxy.secret, max_retries=0)
    for _ in range(3):
        msg = client.messages.create(model="m", max_tokens=16, messages=[{"role": "user", "content": "hi"}])
        assert msg.content[0].text == "Hello from the scripted upstream."
    conns = {r.connection_id for r in up.requests}
    assert len(up.requests) == 3 and len(conns) == 1, "upstream connection should be reused"


def test_openai_responses_and_chat_routed_by_model(start_proxy, upstream_factory, tmp_path):
    up = upstream_factory(TEXT_SCRIPT)
    profile = write_profile(
        tmp_path / "p.toml",
        f"""
[backends.resp]
protocol = "openai_responses"
base_url = "{up.url}/v1"
api_key_env = "UP_KEY"

[backends.chat]
protocol = "openai_chat"
base_url = "{up.url}/v1/"
api_key_env = "UP_KEY"

[[routes]]
when = {{ model = "chat-*" }}
backend = "chat"

[[routes]]
backend = "resp"
""",
    )
    proxy = start_proxy("codex", profile, _env(UP_KEY=UP_KEY))
    client = openai.OpenAI(base_url=proxy.base_url + "/v1", api_key=proxy.secret, max_retries=0)

    deltas = []
    with client.responses.stream(model="gpt-test", input="hi") as stream:
        for event in stream:
            if event.type == "response.output_text.delta":
                deltas.append(event.delta)
        final = stream.get_final_response()
    assert "".join(deltas) == "Hello from the scripted upstream."
    assert final.output_text == "Hello from the scripted upstream."

    chunks = client.chat.completions.create(
        model="chat-small", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello from the scripted upstream."

    paths = [r.path for r in up.model_requests()]
    assert paths == ["/v1/responses", "/v1/chat/completions"]
    assert all(r.headers["authorization"] == f"Bearer {UP_KEY}" for r in up.model_requests())
    _assert_no_secret(up, proxy.secret)


def test_gemini_sdk_streams_through_proxy(start_proxy, upstream_factory, tmp_path):
    up = upstream_factory(TEXT_SCRIPT)
    profile = http_profile(tmp_path, "gemini", up.url, api_key_env="UP_KEY")
    proxy = start_proxy("gemini", profile, _env(UP_KEY=UP_KEY))
    client = genai.Client(api_key=proxy.secret, http_options=gtypes.HttpOptions(base_url=proxy.base_url))
    text = "".join(c.text or "" for c in client.models.generate_content_stream(model="gemini-test", contents="hi"))
    assert text == "Hello from the scripted upstream."
    whole = client.models.generate_content(model="gemini-test", contents="hi")
    assert whole.text == "Hello from the scripted upstream."
    reqs = up.model_requests()
    # the SDK picks the version path itself; the proxy keeps it as sent
    assert reqs[0].path.split("/models/")[1].startswith("gemini-test:streamGenerateContent")
    assert reqs[1].path.split("/models/")[1].startswith("gemini-test:generateContent")
    assert all(r.headers["x-goog-api-key"] == UP_KEY for r in reqs)
    _assert_no_secret(up, proxy.secret)


def test_own_login_passes_through_unchanged(start_proxy, upstream_factory, tmp_path):
    """No key anywhere: the agent's own credentials (an OAuth bearer) reach its own endpoint
    (here the ANTHROPIC_BASE_URL the user configured) as sent."""
    up = upstream_factory(TEXT_SCRIPT)
    proxy = start_proxy("claude", None, _env(ANTHROPIC_BASE_URL=up.url))
    client = anthropic.Anthropic(base_url=proxy.base_url, auth_token="oauth-token-of-the-user", max_retries=0)
    msg = client.messages.create(
        model="m", max_tokens=16, messages=[{"role": "user", "content": "hi"}],
        extra_headers={"anthropic-beta": "oauth-2025-04-20", "x-claude-code-session-id": "s1"},
    )
    assert msg.content[0].text.startswith("Hello")
    (req,) = up.requests
    assert req.headers["authorization"] == "Bearer oauth-token-of-the-user"
    assert req.headers["anthropic-beta"] == "oauth-2025-04-20"
    assert req.headers["x-claude-code-session-id"] == "s1"
    assert req.headers["accept-encoding"] == "identity"


def test_native_key_variable_is_used_for_the_upstream(start_proxy, upstream_factory, tmp_path):
    """Zero config with a gateway and a key in the environment: the key goes to that gateway."""
    up = upstream_factory(TEXT_SCRIPT)
    proxy = start_proxy("claude", None, _env(ANTHROPIC_API_KEY="user-native-key", ANTHROPIC_BASE_URL=up.url))
    client = anthropic.Anthropic(base_url=proxy.base_url, auth_token=proxy.secret, max_retries=0)
    client.messages.create(model="m", max_tokens=16, messages=[{"role": "user", "content": "hi"}])
    (req,) = up.requests
    assert req.headers["x-api-key"] == "user-native-key"
    assert "authorization" not in req.headers


def test_native_key_never_goes_to_another_host(start_proxy, upstream_factory, tmp_path):
    """A profile backend on another host than the one the key was configured for gets no key,
    and the agent's own credentials are stripped; `credentials = "agent"` hands them over."""
    up = upstream_factory(TEXT_SCRIPT)
    env = _env(ANTHROPIC_API_KEY="user-native-key")  # configured for api.anthropic.com
    proxy = start_proxy("claude", http_profile(tmp_path, "anthropic_messages", up.url), env)
    client = anthropic.Anthropic(base_url=proxy.base_url, auth_token=proxy.secret, max_retries=0)
    client.messages.create(model="m", max_tokens=16, messages=[{"role": "user", "content": "hi"}])
    (req,) = up.requests
    assert "x-api-key" not in req.headers and "authorization" not in req.headers
    assert "user-native-key" not in json.dumps(req.headers)
    handed = tmp_path / "handed.toml"
    handed.write_text(f'[backends.up]\nprotocol = "anthropic_messages"\nbase_url = "{up.url}"\ncredentials = "agent"\n')
    proxy = start_proxy("claude", handed, env)
    client = anthropic.Anthropic(base_url=proxy.base_url, auth_token=proxy.secret, max_retries=0)
    client.messages.create(model="m", max_tokens=16, messages=[{"role": "user", "content": "hi"}])
    assert up.requests[-1].headers["x-api-key"] == "user-native-key"


# -- the session secret -------------------------------------------------------

@pytest.mark.parametrize(
    ("agent", "protocol", "path", "check"),
    [
        ("claude", "anthropic_messages", "/v1/messages", lambda b: b["error"]["type"] == "authentication_error"),
        ("codex", "openai_responses", "/v1/responses", lambda b: "message" in b["error"]),
        ("gemini", "gemini", "/v1beta/models/g:generateContent", lambda b: b["error"]["status"] == "UNAUTHENTICATED"),
    ],
)
def test_request_without_secret_gets_401_in_protocol_shape(start_proxy, upstream_factory, tmp_path, agent, protocol, path, check):
    up = upstream_factory(TEXT_SCRIPT)
    base = up.url + ("/v1" if protocol.startswith("openai") else "")
    proxy = start_proxy(agent, http_profile(tmp_path, protocol, base, api_key_env="UP_KEY"), _env(UP_KEY=UP_KEY))
    root = f"http://127.0.0.1:{proxy.port}"
    wrong = proxy.secret[:-1] + ("A" if proxy.secret[-1] != "A" else "B")
    for url in (root + path, f"{root}/{wrong}{path}", f"{root}/{proxy.secret}x{path}"):
        r = httpx.post(url, json={"model": "m", "messages": []}, headers={"authorization": f"Bearer {proxy.secret}"})
        assert r.status_code == 401, url
        assert check(r.json())
    assert up.requests == [], "nothing may reach the upstream without the secret"
    assert proxy.stats.unauthorized == 3


def test_anthropic_sdk_without_secret_raises_authentication_error(start_proxy, upstream_factory, tmp_path):
    up = upstream_factory(TEXT_SCRIPT)
    proxy = start_proxy("claude", http_profile(tmp_path, "anthropic_messages", up.url, api_key_env="UP_KEY"), _env(UP_KEY=UP_KEY))
    client = anthropic.Anthropic(base_url=f"http://127.0.0.1:{proxy.port}", api_key="guess", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError):
        client.messages.create(model="m", max_tokens=8, messages=[{"role": "user", "content": "hi"}])


# -- bad input and broken upstreams --------------------------------------------

def test_malformed_json_gets_400_and_proxy_keeps_serving(start_proxy, upstream_factory, tmp_path):
    up = upstream_factory(TEXT_SCRIPT)
    proxy = start_proxy("claude", http_profile(tmp_path, "anthropic_messages", up.url, api_key_env="UP_KEY"), _env(UP_KEY=UP_KEY))
    with httpx.Client(base_url=proxy.base_url) as c:
        r = c.post("/v1/messages", content=b'{"model": "m", "messages": [', headers={"content-type": "application/json"})
        assert r.status_code == 400
        body = r.json()
        assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
        assert "not valid JSON" in body["error"]["message"]
        r = c.post("/v1/messages", content=b"[1, 2]")
        assert r.status_code == 400
        r = c.post("/v1/messages", json={"model": "m", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]})
        assert r.status_code == 200
    assert len(up.requests) == 1


def test_malformed_http_gets_400_and_proxy_keeps_serving(start_proxy, upstream_factory, tmp_path):
    up = upstream_factory(TEXT_SCRIPT)
    proxy = start_proxy("claude", http_profile(tmp_path, "anthropic_messages", up.url, api_key_env="UP_KEY"), _env(UP_KEY=UP_KEY))
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as s:
        s.sendall(b"THIS IS NOT HTTP\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):  # the proxy closes after the 400
            data += chunk
    assert data.startswith(b"HTTP/1.1 400")
    assert b"invalid_request_error" in data
    r = httpx.post(proxy.base_url + "/v1/messages", json={"model": "m", "max_tokens": 8, "messages": [{"role": "user", "content": "x"}]})
    assert r.status_code == 200


def test_unreachable_upstream_gets_protocol_shaped_502(start_proxy, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    proxy = start_proxy("claude", http_profile(tmp_path, "anthropic_messages", f"http://127.0.0.1:{dead_port}", api_key_env="UP_KEY"), _env(UP_KEY=UP_KEY))
    client = anthropic.Anthropic(base_url=proxy.base_url, auth_token=proxy.secret, max_retries=0)
    with pytest.raises(anthropic.APIStatusError) as info:
        client.messages.create(model="m", max_tokens=8, messages=[{"role": "user", "content": "hi"}])
    assert info.value.status_code == 502
    assert "cannot connect" in info.value.message or "failed" in info.value.message
    # the second failure in a row is not retryable: it names the backend and where to fix it
    r = httpx.post(proxy.base_url + "/v1/messages", json={"model": "m"})
    assert r.status_code == 400 and r.json()["type"] == "error"
    assert "unreachable" in r.json()["error"]["message"] and str(dead_port) in r.json()["error"]["message"]


def test_upstream_errors_reach_the_agent_verbatim(start_proxy, upstream_factory, tmp_path):
    up = upstream_factory(TEXT_SCRIPT)
    proxy = start_proxy("claude", http_profile(tmp_path, "anthropic_messages", up.url, api_key_env="UP_KEY"), _env(UP_KEY=UP_KEY))
    body = {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down, from upstream"}}
    # a Retry-After beyond agentwrap's bounded wait, and no fallback: the agent decides
    up.fail_next(429, body, {"retry-after": "70", "anthropic-ratelimit-requests-remaining": "0"})
    client = anthropic.Anthropic(base_url=proxy.base_url, auth_token=proxy.secret, max_retries=0)
    with pytest.raises(anthropic.RateLimitError) as info:
        client.messages.create(model="m", max_tokens=8, messages=[{"role": "user", "content": "hi"}])
    assert info.value.response.headers["retry-after"] == "70"
    assert info.value.response.headers["anthropic-ratelimit-requests-remaining"] == "0"
    assert info.value.body == body
    up.fail_next(529, b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}')
    r = httpx.post(proxy.base_url + "/v1/messages", json={"model": "m"})
    assert r.status_code == 529 and r.content == b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}'


def test_stream_cut_mid_way_ends_with_protocol_error_event(start_proxy, upstream_factory, tmp_path):
    up = upstream_factory(TEXT_SCRIPT)
    up.cut_after_chunks = 3
    proxy = start_proxy("claude", http_profile(tmp_path, "anthropic_messages", up.url, api_key_env="UP_KEY"), _env(UP_KEY=UP_KEY))
    body = {"model": "m", "max_tokens": 8, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    with httpx.Client(timeout=10) as c:
        r = c.post(proxy.base_url + "/v1/messages", json=body)
    assert r.status_code == 200
    events = [block for block in r.text.split("\n\n") if block.strip()]
    assert events[0].startswith("event: message_start")
    assert events[-1].startswith("event: error")
    err = json.loads(events[-1].split("data: ", 1)[1])
    assert err["type"] == "error" and "upstream stream failed" in err["error"]["message"]
    assert proxy.stats.errors >= 1
    # and the proxy keeps serving
    up.cut_after_chunks = None
    assert httpx.post(proxy.base_url + "/v1/messages", json=body).status_code == 200


def test_stream_is_forwarded_as_it_arrives(start_proxy, upstream_factory, tmp_path):
    """The first SSE event reaches the client while the upstream still holds back the rest."""
    up = upstream_factory(TEXT_SCRIPT)
    up.gate = threading.Event()
    proxy = start_proxy("claude", http_profile(tmp_path, "anthropic_messages", up.url, api_key_env="UP_KEY"), _env(UP_KEY=UP_KEY))
    body = {"model": "m", "max_tokens": 8, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    with httpx.Client(timeout=10) as c, c.stream("POST", proxy.base_url + "/v1/messages", json=body) as r:
        it = r.iter_raw()
        t0 = time.monotonic()
        first = next(it)
        waited = time.monotonic() - t0
        assert b"message_start" in first
        assert not up.gate.is_set()
        up.gate.set()
        rest = b"".join(it)
    assert waited < 5
    assert b"message_stop" in rest
