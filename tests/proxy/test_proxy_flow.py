"""The proxy's middle: the addon chain on each flow, the one Backend seam for http,
scripted and replay backends, and the session secret in a header.

Real loopback upstreams, the official SDKs (and httpx) as clients, and the proxy
as a session builds it (`bind_proxy`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import anthropic
import httpx
import openai
import pytest
from google import genai
from google.genai import types as gtypes

from agentwrap.agents import AGENTS
from agentwrap.backends.replay import RecordedExchange, ReplayBackend
from agentwrap.capture.reader import read_bundle
from agentwrap.capture.recorder import Capture, Recorder
from agentwrap.session import SessionOptions, bind_proxy, replay_plan
from tests.conftest import TEXT_SCRIPT, http_profile, write_profile

UP_KEY = "upstream-key-0123456789"
TEXT = "Hello from the scripted upstream."


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, **extra}


def _capture(proxy, tmp_path: Path, secrets: list[str] = ()) -> tuple[Recorder, Path]:
    path = tmp_path / f"run{len(list(tmp_path.glob('run*.cbor')))}.cbor"
    rec = Recorder(str(path), {"agent": "test"}, list(secrets))
    proxy.dispatcher.addons.add(Capture(rec))
    return rec, path


def _ask_claude(proxy, *, stream: bool = True) -> str:
    messages = [{"role": "user", "content": "hi"}]
    with anthropic.Anthropic(base_url=proxy.base_url, api_key=proxy.secret, max_retries=0) as client:
        if not stream:
            return client.messages.create(model="claude-test", max_tokens=64, messages=messages).content[0].text
        with client.messages.stream(model="claude-test", max_tokens=64, messages=messages) as s:
            return s.get_final_text()


# -- the addon chain --------------------------------------------------------------------


class Log:
    """An addon that writes down every hook it sees."""

    def __init__(self, name: str, calls: list) -> None:
        self.name, self.calls = name, calls

    def request(self, flow):
        self.calls.append((self.name, "request"))

    def route(self, flow):
        self.calls.append((self.name, "route"))

    def upstream_request(self, flow, leg):
        self.calls.append((self.name, "upstream_request"))

    def upstream_response(self, flow, status, headers):
        self.calls.append((self.name, "upstream_response"))

    def stream(self, flow):
        self.calls.append((self.name, "stream"))
        return []

    def chunk(self, flow, data):
        self.calls.append((self.name, "chunk"))

    def done(self, flow):
        self.calls.append((self.name, "done"))


def test_hooks_run_in_flow_order_and_chain_order(start_proxy, upstream_factory, tmp_path):
    up = upstream_factory(TEXT_SCRIPT)
    proxy = start_proxy("claude", http_profile(tmp_path, "anthropic_messages", up.url, api_key_env="UP_KEY"), _env(UP_KEY=UP_KEY))
    calls: list = []
    proxy.dispatcher.addons.add(Log("a", calls))
    proxy.dispatcher.addons.add(Log("b", calls))
    assert _ask_claude(proxy) == TEXT
    hooks = []
    for i in range(0, len(calls), 2):  # each hook: addon a, then addon b
        assert [c[0] for c in calls[i : i + 2]] == ["a", "b"] and calls[i][1] == calls[i + 1][1], calls
        if not hooks or hooks[-1] != calls[i][1] or calls[i][1] != "chunk":
            hooks.append(calls[i][1])
    # route twice: the decision, then the attempt's verdict
    assert hooks == ["request", "route", "upstream_request", "upstream_response", "stream", "route", "chunk", "done"]


class Broken:
    """An addon with bugs in two hooks."""

    def request(self, flow):
        raise KeyError("request hook bug")

    def chunk(self, flow, data):
        raise ValueError("chunk hook bug")


def test_an_addon_that_raises_is_isolated_and_recorded(start_proxy, upstream_factory, tmp_path):
    up = upstream_factory(TEXT_SCRIPT)
    proxy = start_proxy("claude", http_profile(tmp_path, "anthropic_messages", up.url, api_key_env="UP_KEY"), _env(UP_KEY=UP_KEY))
    rec, path = _capture(proxy, tmp_path)
    proxy.dispatcher.addons.add(Broken())
    assert _ask_claude(proxy) == TEXT
    assert _ask_claude(proxy, stream=False) == TEXT
    rec.close({})
    first, second = read_bundle(path).exchanges
    for ex in (first, second):
        # once per flow and hook, however many pieces the stream had
        assert sorted((e.kind, e.message.split(" raised ")[0]) for e in ex.errors) == [
            ("addon", "addon Broken.chunk"), ("addon", "addon Broken.request")]
        assert ex.complete and ex.status == 200 and b"end_turn" in b"".join(ex.agent_stream())
    assert "KeyError: 'request hook bug'" in first.errors[0].message + first.errors[1].message


# -- the Backend seam: scripted and replay take the path http takes ---------------------------


def test_a_scripted_backend_behind_gemini_is_recorded_with_both_legs(start_proxy, tmp_path):
    script = tmp_path / "turns.toml"
    script.write_text(TEXT_SCRIPT)
    profile = write_profile(tmp_path / "s.toml", f'[backends.s]\ntype = "scripted"\nscript = "{script}"\n[[routes]]\nbackend = "s"\n')
    proxy = start_proxy("gemini", profile)
    rec, path = _capture(proxy, tmp_path, [proxy.secret])
    with genai.Client(api_key=proxy.secret, http_options=gtypes.HttpOptions(base_url=proxy.base_url)) as client:
        streamed = "".join(c.text or "" for c in client.models.generate_content_stream(model="gemini-test", contents="hi"))
        whole = client.models.generate_content(model="gemini-test", contents="hi").text
    assert streamed == whole == TEXT
    rec.close({})
    stream_ex, whole_ex = read_bundle(path).exchanges
    for ex, method in ((stream_ex, "streamGenerateContent"), (whole_ex, "generateContent")):
        assert ex.upstream_request is not None and ex.upstream_request.target.startswith("scripted:/v1") and f"/models/gemini-test:{method}" in ex.upstream_request.target
        assert ex.upstream_request.body.json == ex.request.body.json  # nothing rewritten: the agent's body
        assert ex.upstream_response.status == 200 and ex.agent_response is None  # the agent got the upstream leg
        assert b"".join(ex.agent_stream()) == ex.response_body and b'Hello from ' in ex.response_body
    assert len(stream_ex.chunks) > 1, "a stream is relayed piece by piece"
    assert ("content-type", "text/event-stream") in stream_ex.upstream_response.headers
    assert ("content-length", str(len(whole_ex.response_body))) in whole_ex.upstream_response.headers


def _replay_proxy(agent: str, exchanges: list[RecordedExchange]):
    env = dict(os.environ)
    plan = replay_plan(AGENTS[agent], SessionOptions(agent=agent, replay_of="<replay>"), env)
    backend = ReplayBackend(exchanges)
    bound = bind_proxy(AGENTS[agent], plan, env, replay=backend)
    bound.server.start()
    return bound, backend


def test_replay_serves_a_translated_recording_through_the_relay(start_proxy, upstream_factory, tmp_path):
    """Record Claude Code's stream from a Chat backend (translated), then replay it: the
    recording of the agent leg is what comes back, recorded again as an upstream leg."""
    up = upstream_factory(TEXT_SCRIPT, default_protocol="openai_chat")
    proxy = start_proxy("claude", http_profile(tmp_path, "openai_chat", up.url + "/v1", api_key_env="UP_KEY"), _env(UP_KEY=UP_KEY))
    rec, path = _capture(proxy, tmp_path, [proxy.secret, UP_KEY])
    assert _ask_claude(proxy) == TEXT
    rec.close({})
    (ex,) = read_bundle(path).exchanges
    assert ex.agent_response is not None and ex.agent_response.body is None, "a re-encoded stream records its own head"
    agent_bytes = b"".join(ex.agent_stream())
    assert b"event: message_start" in agent_bytes and b"chat.completion.chunk" not in agent_bytes
    recorded = RecordedExchange(0, ex.request.method, ex.path, ex.request.body.bytes, ex.status,
                                list(ex.agent_response.headers), ex.agent_stream())

    bound, backend = _replay_proxy("claude", [recorded])
    try:
        rec2, path2 = _capture(bound, tmp_path)
        assert _ask_claude(bound) == TEXT
        with anthropic.Anthropic(base_url=bound.base_url, api_key=bound.secret, max_retries=0) as client, \
                pytest.raises(anthropic.BadRequestError) as info:  # nothing recorded is left: a divergence
            client.messages.create(model="claude-test", max_tokens=64, messages=[{"role": "user", "content": "hi"}])
        assert "agentwrap replay: request 2" in info.value.message
        rec2.close({})
    finally:
        bound.server.stop(grace_s=0.5)
    served, diverged = read_bundle(path2).exchanges
    assert served.upstream_request.target == "replay:/v1/messages" and served.upstream_response.status == 200
    assert b"".join(served.agent_stream()) == agent_bytes
    assert diverged.upstream_response.status == 400 and [e.kind for e in diverged.errors] == ["replay_divergence"]
    assert backend.served == 1 and len(backend.divergences) == 1


def test_a_replayed_retryable_answer_is_served_as_recorded_not_retried():
    """The recorded run decided about retries already: a replayed 429 with a short
    Retry-After goes to the agent as it did then."""
    body = b'{"model":"m","max_tokens":8,"messages":[{"role":"user","content":"hi"}]}'
    error = b'{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}'
    recorded = RecordedExchange(0, "POST", "/v1/messages", body, 429,
                                [("content-type", "application/json"), ("retry-after", "1"), ("content-length", "999")], [error])
    bound, backend = _replay_proxy("claude", [recorded])
    try:
        r = httpx.post(bound.base_url + "/v1/messages", content=body, headers={"content-type": "application/json"})
    finally:
        bound.server.stop(grace_s=0.5)
    assert r.status_code == 429 and r.content == error and r.headers["retry-after"] == "1"
    assert backend.served == 1 and backend.divergences == [] and bound.stats.failovers == 0


# -- the session secret in a header ---------------------------------------------------------


def test_the_secret_in_a_header_is_accepted_and_never_forwarded(start_proxy, upstream_factory, tmp_path):
    up = upstream_factory(TEXT_SCRIPT)
    proxy = start_proxy("codex", http_profile(tmp_path, "openai_responses", up.url + "/v1", api_key_env="UP_KEY"), _env(UP_KEY=UP_KEY))
    rec, path = _capture(proxy, tmp_path, [proxy.secret])
    root = f"http://127.0.0.1:{proxy.port}"
    # Codex's way: a base URL without the secret, the secret in a header of its own
    with openai.OpenAI(base_url=root + "/v1", api_key=proxy.secret, max_retries=0,
                       default_headers={"x-agentwrap-secret": proxy.secret}) as client, \
            client.responses.stream(model="gpt-test", input="hi") as stream:
        assert stream.get_final_response().output_text == TEXT
    (req,) = up.model_requests()
    assert req.path == "/v1/responses" and req.headers["authorization"] == f"Bearer {UP_KEY}"
    assert "x-agentwrap-secret" not in req.headers
    assert all(proxy.secret not in v for v in req.headers.values())
    rec.close({})
    (ex,) = read_bundle(path).exchanges
    assert ("x-agentwrap-secret", "[REDACTED]") in ex.request.headers
    assert proxy.secret.encode() not in path.read_bytes()


def test_a_wrong_secret_header_is_refused(start_proxy, upstream_factory, tmp_path):
    up = upstream_factory(TEXT_SCRIPT)
    proxy = start_proxy("claude", http_profile(tmp_path, "anthropic_messages", up.url, api_key_env="UP_KEY"), _env(UP_KEY=UP_KEY))
    root = f"http://127.0.0.1:{proxy.port}"
    wrong = proxy.secret[:-1] + ("A" if proxy.secret[-1] != "A" else "B")
    body = {"model": "m", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
    for headers in ({"x-agentwrap-secret": wrong}, {"x-agentwrap-secret": ""}, {}):
        r = httpx.post(root + "/v1/messages", json=body, headers=headers)
        assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
    assert up.requests == [] and proxy.stats.unauthorized == 3


def test_the_secret_header_does_not_cross_a_translated_leg_either(start_proxy, upstream_factory, tmp_path):
    up = upstream_factory(TEXT_SCRIPT, default_protocol="openai_chat")
    proxy = start_proxy("claude", http_profile(tmp_path, "openai_chat", up.url + "/v1", api_key_env="UP_KEY"), _env(UP_KEY=UP_KEY))
    with anthropic.Anthropic(base_url=f"http://127.0.0.1:{proxy.port}", api_key=proxy.secret, max_retries=0,
                             default_headers={"x-agentwrap-secret": proxy.secret}) as client:
        answer = client.messages.create(model="m", max_tokens=16, messages=[{"role": "user", "content": "hi"}])
    assert answer.content[0].text == TEXT
    (req,) = up.model_requests()
    assert "x-agentwrap-secret" not in req.headers and all(proxy.secret not in v for v in req.headers.values())


# -- a long guarded stream keeps nothing, and its record is still the agent's stream ----------------


@pytest.mark.parametrize("looping", [False, True], ids=["passed-as-is", "cut-after-the-bound"])
def test_a_guarded_stream_past_the_keep_bound_is_recorded_as_it_goes(start_proxy, tmp_path, monkeypatch, looping):
    """Past `KEEP_BYTES` the relay stops keeping the tap's output for the record and records
    the agent's stream piece by piece; the record is still exactly what the agent got,
    whether the stream then passes as it came or a guard rewrites its end (a loop cut)."""
    from agentwrap.proxy import relay
    from tests.support.guard_upstream import GuardUpstream, loop_events, text_events

    monkeypatch.setattr(relay, "KEEP_BYTES", 2_000)
    lead = "".join(f"Line {i}: the answer goes on about item number {i}.\n" for i in range(120))  # ~6 KB, no loop
    if looping:
        answer = loop_events(lead, "I will check the file again. ", 60)
    else:
        answer = text_events(lead)
    with GuardUpstream(lambda req: answer) as up:
        proxy = start_proxy("claude", http_profile(tmp_path, "anthropic_messages", up.url, api_key_env="UP_KEY"), _env(UP_KEY=UP_KEY))
        rec, path = _capture(proxy, tmp_path, [proxy.secret, UP_KEY])
        with httpx.Client(timeout=10) as client:
            got = client.post(f"{proxy.base_url}/v1/messages", headers={"x-api-key": proxy.secret},
                              json={"model": "claude-test", "max_tokens": 64, "stream": True,
                                    "messages": [{"role": "user", "content": "hi"}]}).content
    rec.close({})
    (ex,) = read_bundle(path).exchanges
    assert ex.agent_response is not None and ex.agent_response.body is None, "the agent's stream has its own record"
    assert len(ex.agent_chunks) > 1, "recorded piece by piece"
    assert b"".join(ex.agent_stream()) == got
    text = "".join(json.loads(line[6:])["delta"].get("text", "") for line in got.decode().splitlines()
                   if line.startswith("data: ") and '"content_block_delta"' in line)
    assert text.startswith(lead)
    if looping:
        assert got != ex.response_body and b"agentwrap" in got[-2_000:], "the loop was cut, with the notice"
    else:
        assert got == ex.response_body, "nothing rewritten: the agent got the upstream's bytes"
