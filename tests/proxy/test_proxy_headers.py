"""The one upstream header policy, its two legs, and what goes back to the agent: plain data."""

from __future__ import annotations

import pytest

from agentwrap.config.model import BackendConfig
from agentwrap.proxy.auth import UpstreamAuth
from agentwrap.proxy.headers import (
    NOT_FORWARDED, PASS_THROUGH, TRANSLATED, relayed_headers, upstream_headers, upstream_target,
)

AGENT = [
    (b"Host", b"127.0.0.1:1"),
    (b"Content-Length", b"12"),
    (b"Connection", b"keep-alive"),
    (b"X-Agentwrap-Secret", b"the-session-secret"),
    (b"Accept-Encoding", b"gzip, br"),
    (b"Authorization", b"Bearer the-session-secret"),
    (b"anthropic-beta", b"oauth-2025-04-20"),
    (b"User-Agent", b"claude-cli/2.1"),
]
BACKEND = BackendConfig(name="b", protocol="anthropic_messages", headers=(("X-Team", "t1"),))
KEY = (b"x-api-key", b"sk-real")


def test_pass_through_in_key_mode_drops_what_is_not_forwarded_and_the_agents_credential():
    out = upstream_headers(AGENT, policy=PASS_THROUGH, backend=BACKEND, auth=UpstreamAuth(KEY, True))
    assert out == [(b"anthropic-beta", b"oauth-2025-04-20"), (b"user-agent", b"claude-cli/2.1"),
                   (b"accept-encoding", b"identity"), (b"x-team", b"t1"), KEY]


def test_pass_through_of_a_login_keeps_the_agents_credential():
    out = upstream_headers(AGENT, policy=PASS_THROUGH, backend=BACKEND, auth=UpstreamAuth(None, False))
    assert (b"authorization", b"Bearer the-session-secret") in out
    assert not any(n in NOT_FORWARDED for n, _ in out)


def test_translated_keeps_only_the_user_agent_and_the_translations_own():
    extra = [(b"content-type", b"application/json")]
    out = upstream_headers(AGENT, policy=TRANSLATED, backend=BACKEND, auth=UpstreamAuth(KEY, True), extra=extra)
    assert out == [(b"User-Agent", b"claude-cli/2.1"), *extra, (b"accept-encoding", b"identity"), (b"x-team", b"t1"), KEY]


@pytest.mark.parametrize(
    ("query", "strip", "expected"),
    [
        (b"", True, "/p"),
        (b"alt=sse&key=the-secret", True, "/p?alt=sse"),
        (b"key=the-secret", True, "/p"),
        (b"alt=sse&key=the-secret", False, "/p?alt=sse&key=the-secret"),
        (b"monkey=1&x=%2F", True, "/p?monkey=1&x=%2F"),  # no `key`: the query as received
    ],
)
def test_a_key_query_parameter_is_dropped_in_key_mode(query, strip, expected):
    assert upstream_target("/p", query, UpstreamAuth(None, strip)) == expected


def test_relayed_headers_keep_the_length_and_say_what_the_body_is():
    headers, sse, sized = relayed_headers([(b"Content-Type", b"text/event-stream; charset=utf-8"),
                                           (b"Transfer-Encoding", b"chunked"), (b"X-Request-Id", b"r1")])
    assert headers == [(b"content-type", b"text/event-stream; charset=utf-8"), (b"x-request-id", b"r1")]
    assert sse and not sized
    headers, sse, sized = relayed_headers([(b"content-type", b"application/json"), (b"content-length", b"2")])
    assert headers == [(b"content-type", b"application/json"), (b"content-length", b"2")] and not sse and sized
