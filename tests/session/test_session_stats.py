"""The session's counts through the real proxy (official SDKs in front, real upstreams behind):
the tokens each answer reported, the model and backend that answered, failovers, errors
(a 429 that failover recovered is none), and the agent's session id."""

from __future__ import annotations

import os
import time

import anthropic
import openai
import pytest
from google import genai
from google.genai import types as gtypes

from agentwrap.protocols import neutral as ev
from tests.conftest import write_profile
from tests.support.guard_upstream import GuardUpstream, text_events

ENV = {**os.environ, "UP_KEY": "k" * 12}
BASE = {"anthropic_messages": "", "openai_chat": "/v1", "openai_responses": "/v1", "gemini": ""}
AGENT = {"anthropic_messages": "claude", "openai_responses": "codex", "gemini": "gemini"}
# What the upstream reports for each answer (neutral: input includes the cached part).
USAGE = ev.Usage(input_tokens=1500, output_tokens=37, cache_read_tokens=1200, cache_write_tokens=0)
TOKENS = {"input_tokens": 1500, "output_tokens": 37, "cache_read_tokens": 1200, "cache_write_tokens": 0}
TEXT = "Counted answer."

def _answer(req):
    return [ev.MessageStart("msg_stats", "m"), ev.TextDelta(TEXT), USAGE, ev.Stop("end_turn")]


def _profile(tmp_path, backends: dict[str, tuple[str, str]], route: str) -> str:
    text = "".join(
        f'[backends.{name}]\nprotocol = "{protocol}"\nbase_url = "{url}{BASE[protocol]}"\napi_key_env = "UP_KEY"\n\n'
        for name, (protocol, url) in backends.items()
    )
    return str(write_profile(tmp_path / "stats.toml", text + route))


def _settled(proxy):
    """The proxy's stats once every request is done: the client may have read an answer's last
    byte (or given up on it) before the proxy thread ended its flow."""
    stats = proxy.stats
    deadline = time.monotonic() + 10
    while stats.pending and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not stats.pending, "a request never ended"
    return stats


def _ask(agent: str, proxy, *, stream: bool, model: str = "agent-model") -> str:
    if agent == "claude":
        client = anthropic.Anthropic(base_url=proxy.base_url, auth_token=proxy.secret, max_retries=0,
                                     default_headers={"x-claude-code-session-id": "5d0c1e2f-aaaa-4bbb-8ccc-000000000001"})
        messages = [{"role": "user", "content": "hi"}]
        if stream:
            with client.messages.stream(model=model, max_tokens=64, messages=messages) as s:
                return "".join(s.text_stream)
        return client.messages.create(model=model, max_tokens=64, messages=messages).content[0].text
    if agent == "codex":
        client = openai.OpenAI(base_url=proxy.base_url + "/v1", api_key=proxy.secret, max_retries=0)
        if stream:
            with client.responses.stream(model=model, input="hi") as s:
                return "".join(e.delta for e in s if e.type == "response.output_text.delta")
        return client.responses.create(model=model, input="hi").output_text
    client = genai.Client(api_key=proxy.secret, http_options=gtypes.HttpOptions(base_url=proxy.base_url))
    if stream:
        return "".join(c.text or "" for c in client.models.generate_content_stream(model=model, contents="hi"))
    return client.models.generate_content(model=model, contents="hi").text


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "whole"])
@pytest.mark.parametrize("protocol", ["anthropic_messages", "openai_responses", "gemini"])
def test_tokens_model_and_backend_of_a_pass_through_answer(start_proxy, tmp_path, protocol, stream):
    agent = AGENT[protocol]
    with GuardUpstream(_answer, default_protocol=protocol) as up:
        route = '[[routes]]\nbackend = "up"\nmodel = "routed-model"\n'
        proxy = start_proxy(agent, _profile(tmp_path, {"up": (protocol, up.url)}, route), ENV)
        assert _ask(agent, proxy, stream=stream) == TEXT
        assert _ask(agent, proxy, stream=stream) == TEXT
    st = _settled(proxy)
    assert st.tokens == {k: 2 * v for k, v in TOKENS.items()}
    assert [(u.backend, u.model) for u in st.uses] == [("up", "routed-model")] * 2
    assert all(u.url.startswith(up.url) for u in st.uses)
    assert (st.requests, st.errors, st.failovers) == (2, 0, 0)


@pytest.mark.parametrize("backend_protocol", ["openai_chat", "gemini"])
def test_tokens_of_a_translated_answer_are_the_backends(start_proxy, tmp_path, backend_protocol):
    with GuardUpstream(_answer, default_protocol=backend_protocol) as up:
        route = '[[routes]]\nbackend = "other"\nmodel = "their-model"\n'
        proxy = start_proxy("claude", _profile(tmp_path, {"other": (backend_protocol, up.url)}, route), ENV)
        assert _ask("claude", proxy, stream=True) == TEXT
    assert _settled(proxy).tokens == TOKENS
    assert [(u.backend, u.model) for u in proxy.stats.uses] == [("other", "their-model")]


def test_a_429_that_failover_recovered_is_a_failover_not_an_error(start_proxy, tmp_path):
    def busy(req):
        return 429, {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}

    with GuardUpstream(busy) as a, GuardUpstream(_answer) as b:
        profile = _profile(tmp_path, {"a": ("anthropic_messages", a.url), "b": ("anthropic_messages", b.url)},
                           '[[routes]]\nbackend = "a"\nfallbacks = ["b"]\n')
        proxy = start_proxy("claude", profile, ENV)
        assert _ask("claude", proxy, stream=True) == TEXT
    st = _settled(proxy)
    assert (st.requests, st.errors, st.failovers) == (1, 0, 1)
    assert [(u.backend, u.model) for u in st.uses] == [("b", "agent-model")]
    assert st.tokens == TOKENS  # the refused attempt reported none


def test_an_answer_that_stays_an_error_counts_once(start_proxy, tmp_path):
    def refuse(req):
        return 400, {"type": "error", "error": {"type": "invalid_request_error", "message": "no"}}

    with GuardUpstream(refuse) as a, GuardUpstream(refuse) as b:
        profile = _profile(tmp_path, {"a": ("anthropic_messages", a.url), "b": ("anthropic_messages", b.url)},
                           '[[routes]]\nbackend = "a"\nfallbacks = ["b"]\n')
        proxy = start_proxy("claude", profile, ENV)
        with pytest.raises(anthropic.BadRequestError):
            _ask("claude", proxy, stream=True)
    st = _settled(proxy)
    assert (st.requests, st.errors) == (1, 1)
    assert st.uses == [] and st.tokens is None


def test_a_stream_cut_after_its_head_is_an_error(start_proxy, upstream_factory, tmp_path):
    up = upstream_factory('[[turns]]\ntext = "' + "word " * 200 + '"\n')
    up.cut_after_chunks = 3
    proxy = start_proxy("claude", _profile(tmp_path, {"up": ("anthropic_messages", up.url)}, '[[routes]]\nbackend = "up"\n'), ENV)
    with pytest.raises(anthropic.APIError):
        _ask("claude", proxy, stream=True)
    assert (_settled(proxy).requests, proxy.stats.errors) == (1, 1)


def test_the_agents_session_id_is_kept(start_proxy, tmp_path):
    """Claude Code names its session in every request (`x-claude-code-session-id`): the stats keep
    the newest, which the session turns into `agentwrap claude -- --resume ID`."""
    from agentwrap.agents import CLAUDE
    from agentwrap.session import bind_proxy, resolve_plan

    with GuardUpstream(_answer) as up:
        profile = _profile(tmp_path, {"up": ("anthropic_messages", up.url)}, '[[routes]]\nbackend = "up"\n')
        bound = bind_proxy(CLAUDE, resolve_plan(CLAUDE, profile, ENV), ENV, session_of=CLAUDE.resume.from_request)
        bound.server.start()
        try:
            class P:
                base_url, secret = bound.base_url, bound.secret

            assert _ask("claude", P, stream=True) == TEXT
        finally:
            bound.server.stop(grace_s=0.5)
    assert bound.stats.session_id == "5d0c1e2f-aaaa-4bbb-8ccc-000000000001"


@pytest.mark.parametrize("protocol", ["anthropic_messages", "openai_chat", "openai_responses", "gemini"])
def test_a_long_answer_keeps_its_ends_and_its_usage(protocol):
    """An answer of ~20 MiB in small pieces: the stats keep its first MiB and about its last
    8-16 MiB, and still read the usage its start and end reported."""
    from agentwrap.config.model import BackendConfig
    from agentwrap.protocols.codec import codec
    from agentwrap.proxy.addons.stats import Stats
    from agentwrap.proxy.attempt import Leg
    from agentwrap.proxy.flow import Flow, ProxyResponse

    enc = codec(protocol).StreamEncoder("m", "r")
    start = ev.Usage(input_tokens=1500, output_tokens=0, cache_read_tokens=1200)
    pieces = [enc.feed(ev.MessageStart("r", "m")), enc.feed(start)]
    pieces += [enc.feed(ev.TextDelta("word " * 40)) for _ in range(90_000)]
    pieces += [enc.feed(USAGE), enc.feed(ev.Stop("end_turn")), enc.finish()]
    total = sum(len(p) for p in pieces)
    assert total > 20 << 20

    stats = Stats()
    flow = Flow(1, b"POST", b"/v1/x", [], b"{}")
    stats.upstream_request(flow, Leg(BackendConfig("b", protocol=protocol), None, "POST", "http://h/v1/x", [], protocol,
                                     "/v1/x", json={"model": "m"}))
    stats.upstream_response(flow, 200, [(b"content-type", b"text/event-stream")])
    for piece in pieces:
        stats.chunk(flow, piece)
    kept = stats._pieces[1]
    closing = sum(len(p) for p in pieces[-3:])  # a Responses stream's closing events repeat the whole answer
    assert sum(len(p) for p in kept) <= (16 << 20) + closing
    flow.response = ProxyResponse(200, [])
    stats.done(flow)
    assert stats.tokens == TOKENS


def test_a_trimmed_answer_reads_a_count_only_its_start_reported():
    """Anthropic reports input and cache counts in message_start and only output counts in
    message_delta: after ~24 MiB in 64 KiB pieces (the middle trimmed), the counts are the
    whole body's, read from its first MiB and its last 8-16 MiB without joining the two."""
    from agentwrap.capture.answers import usage_of_body
    from agentwrap.config.model import BackendConfig
    from agentwrap.proxy.addons.stats import Stats
    from agentwrap.proxy.attempt import Leg
    from agentwrap.proxy.flow import Flow, ProxyResponse

    start = (b'event: message_start\ndata: {"type":"message_start","message":{"id":"m","usage":'
             b'{"input_tokens":1500,"cache_read_input_tokens":1200,"output_tokens":1}}}\n\n')
    delta = b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"x"}}\n\n'
    end = b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":42}}\n\n'
    filler = delta * (65536 // len(delta))
    pieces = [start, *[filler] * 384, end]
    stats = Stats()
    flow = Flow(1, b"POST", b"/v1/messages", [], b"{}")
    stats.upstream_request(flow, Leg(BackendConfig("b", protocol="anthropic_messages"), None, "POST", "http://h/v1/messages",
                                     [], "anthropic_messages", "/v1/messages", json={"model": "m"}))
    stats.upstream_response(flow, 200, [(b"content-type", b"text/event-stream")])
    for piece in pieces:
        stats.chunk(flow, piece)
    assert sum(map(len, stats._pieces[1])) <= (16 << 20) + len(filler) < sum(map(len, pieces)) - (4 << 20), "the middle was trimmed"
    flow.response = ProxyResponse(200, [])
    stats.done(flow)
    whole = usage_of_body("anthropic_messages", b"".join(pieces), sse=True)
    assert whole == {"input_tokens": 2700, "output_tokens": 42, "cache_read_tokens": 1200, "cache_write_tokens": 0}
    assert stats.tokens == whole
