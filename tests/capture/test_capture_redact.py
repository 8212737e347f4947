"""Redaction: no key material reaches a bundle, wherever it appears."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentwrap.capture.reader import read_bundle
from agentwrap.capture.recorder import Recorder
from agentwrap.capture.redact import REDACTED, Redactor, StreamRedactor
from tests.capture.test_capture_shapes import PROVIDER_KEY, SECRET, anthropic_answer, dumps
from tests.support.secrets import find_secret

GEMINI_KEY = "AIzaSyD-test-gemini-key-0123456789abcd"
KEYS = (SECRET, PROVIDER_KEY, GEMINI_KEY)


def test_every_occurrence_in_bytes_and_text() -> None:
    r = Redactor(KEYS)
    data = f"a {SECRET} b {PROVIDER_KEY}{PROVIDER_KEY} c".encode()
    assert r.bytes(data) == b"a [REDACTED] b [REDACTED][REDACTED] c"
    assert r.text(f"x{GEMINI_KEY}y") == "x[REDACTED]y"
    assert r.bytes(b"nothing here") == b"nothing here"


def test_a_length_keeping_marker_for_what_goes_to_the_agent() -> None:
    """The proxy's own use: each key becomes a marker of the key's length (a Content-Length
    stays true), found also when split across pieces."""
    r = Redactor(KEYS, replacement=b"[redacted by agentwrap]", keep_length=True)
    for key in KEYS:
        out = r.bytes(f"<{key}>".encode())
        assert len(out) == len(key) + 2 and key.encode() not in out
    assert r.bytes(PROVIDER_KEY.encode()) == b"[redacted by agentwrap]" + b"*" * (len(PROVIDER_KEY) - 23)
    assert Redactor(["0123456789ab"], replacement=b"[redacted by agentwrap]", keep_length=True).bytes(b"0123456789ab") == b"[REDACTED]**"
    data = f"data: x {GEMINI_KEY} y\n\n".encode()
    for cut in range(len(data) + 1):
        s = StreamRedactor(r)
        assert s.feed(data[:cut]) + s.feed(data[cut:]) + s.finish() == r.bytes(data)


def test_short_values_are_ignored_and_longer_secrets_win() -> None:
    r = Redactor(["short", "", "abcdefgh", "abcdefgh-and-more"])
    assert r.text("short abcdefgh-and-more abcdefgh") == f"short {REDACTED} {REDACTED}"
    assert not Redactor(["1234567"]).active


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        (b"authorization", b"Bearer " + SECRET.encode(), "Bearer [REDACTED]"),
        (b"Authorization", b"Bearer some-oauth-token-we-never-knew", "Bearer [REDACTED]"),
        (b"proxy-authorization", b"Basic dXNlcjpwYXNz", "Basic [REDACTED]"),
        (b"x-api-key", PROVIDER_KEY.encode(), REDACTED),
        (b"X-Goog-Api-Key", b"unknown-key-value", REDACTED),
        (b"cookie", b"session=abc; other=def", REDACTED),
        (b"set-cookie", b"id=1; Path=/; HttpOnly", REDACTED),
        (b"x-agentwrap-secret", b"a-wrong-session-secret", REDACTED),
        (b"x-custom", b"token " + GEMINI_KEY.encode(), "token [REDACTED]"),
        (b"user-agent", b"claude-cli/2.1", "claude-cli/2.1"),
    ],
)
def test_headers(name: bytes, value: bytes, expected: str) -> None:
    assert Redactor(KEYS).headers([(name, value)]) == [(name.decode(), expected)]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (f"/{SECRET}/v1/messages", "/[REDACTED]/v1/messages"),
        ("/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse&key=AIzaUnknownKey",
         "/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse&key=[REDACTED]"),
        (f"https://h/v1?api_key={GEMINI_KEY}&x=1#frag", "https://h/v1?api_key=[REDACTED]&x=1#frag"),
        ("https://h/v1?monkey=1&Key=2", "https://h/v1?monkey=1&Key=[REDACTED]"),
        ("/plain/path", "/plain/path"),
    ],
)
def test_url(url: str, expected: str) -> None:
    assert Redactor(KEYS).url(url) == expected


class _Config:
    def __str__(self) -> str:
        return f"Config(key={PROVIDER_KEY})"


def test_nested_values() -> None:
    r = Redactor(KEYS)
    value = {"argv": ["claude", f"--key={PROVIDER_KEY}"], SECRET: (1, b"x" + SECRET.encode()), "n": 3.5, "obj": _Config()}
    assert r.value(value) == {"argv": ["claude", "--key=[REDACTED]"], REDACTED: [1, b"x[REDACTED]"], "n": 3.5,
                              "obj": "Config(key=[REDACTED])"}


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from([b"data: ", b"\n\n", b"s", b"sk-", b"aw-", PROVIDER_KEY.encode(), SECRET.encode(), b"xyz"]), max_size=20),
    st.lists(st.integers(min_value=0, max_value=400), max_size=12),
)
def test_stream_redaction_finds_secrets_across_any_split(parts: list[bytes], cuts: list[int]) -> None:
    r = Redactor(KEYS)
    whole = b"".join(parts)
    points = sorted({min(c, len(whole)) for c in cuts} | {0, len(whole)})
    pieces = [whole[a:b] for a, b in zip(points, points[1:])]
    sr = StreamRedactor(r)
    out = [sr.feed(p) for p in pieces] + [sr.finish()]
    assert b"".join(out) == r.bytes(whole)


def test_stream_pieces_keep_their_boundaries_when_no_secret_can_start() -> None:
    sr = StreamRedactor(Redactor(KEYS))
    pieces = [b"event: a\ndata: {}\n\n", b"event: b\ndata: {}\n\n"]
    assert [sr.feed(p) for p in pieces] == pieces
    assert sr.finish() == b""


def _leaky_session(path: Path) -> None:
    """Keys everywhere agentwrap could meet them."""
    header = {"agent": "gemini", "argv": ["gemini", "--api-key", GEMINI_KEY], "cwd": "/home/u"}
    rec = Recorder(str(path), header, KEYS)
    body = dumps({"model": "claude-x", "stream": True, "messages": [
        {"role": "user", "content": f"my key is {PROVIDER_KEY} " + "pad " * 200},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": f"GEMINI_API_KEY={GEMINI_KEY}"}]},
    ]})
    agent_headers = [(b"x-api-key", SECRET.encode()), (b"x-echo", SECRET.encode())]
    xid = rec.exchange("POST", f"/{SECRET}/v1/messages?key={GEMINI_KEY}", agent_headers, body)
    rec.route(xid, {"backend": "anthropic", "reason": f"because {SECRET}"})
    rec.upstream_request(xid, "POST", f"https://api.example/v1/messages?key={GEMINI_KEY}",
                         [(b"authorization", f"Bearer {PROVIDER_KEY}".encode())], body)
    rec.upstream_response(xid, 200, [(b"content-type", b"text/event-stream"), (b"set-cookie", b"s=1")])
    # One delta holds both keys: a key the model spells out across several deltas
    # is not a verbatim occurrence in the bytes (see docs/bundle-format.md).
    sse = b"".join(anthropic_answer(f"the key is {PROVIDER_KEY}, and {GEMINI_KEY}!", delta_chars=1000))
    for i in range(len(sse)):  # byte by byte: every key is split across chunks
        rec.chunk(xid, sse[i:i + 1])
    rec.agent_chunk(xid, f"event: error\ndata: {SECRET}\n\n".encode())
    rec.error(xid, "upstream_stream", f"reset while sending {PROVIDER_KEY}")
    rec.end(xid)
    xid = rec.exchange("POST", f"/{SECRET}/v1/raw", [], f"raw {GEMINI_KEY} body".encode())
    rec.agent_response(xid, 401, [(b"www-authenticate", SECRET.encode())], f"no {SECRET}".encode())
    rec.end(xid)
    xid = rec.exchange("POST", "/v1/messages", [], b"x")
    rec.chunk(xid, PROVIDER_KEY.encode()[:10])  # an exchange left open: the held tail is released at close
    rec.close({"exit_code": 0, "note": f"closing {SECRET}"})


def test_the_leak_check_sees_a_key_in_every_form() -> None:
    import base64

    key = PROVIDER_KEY
    for before in ("", "a", "ab", "abc"):  # every base64 alignment, inside a longer string
        wrapped = (before + key + "tail").encode()
        assert find_secret(b"x" + base64.b64encode(wrapped) + b"y", key)
        assert find_secret(base64.urlsafe_b64encode(wrapped), key)
    assert find_secret("".join(f"%{b:02X}" for b in key.encode()).encode(), key)
    assert find_secret(key.encode("utf-16-le"), key) and find_secret(key.encode().hex().encode(), key)
    assert find_secret(b"nothing here", key) is None


def test_no_key_material_in_the_bundle(tmp_path: Path) -> None:
    path = tmp_path / "leak.cbor"
    _leaky_session(path)
    data = path.read_bytes()
    for key in KEYS:
        assert find_secret(data, key) is None, f"{key[:6]}... in the bundle as {find_secret(data, key)!r}"
        assert key[:20].encode() not in data
    assert b"some-oauth" not in data
    bundle = read_bundle(path)
    ex = bundle.exchanges[0]
    assert ex.request.target == "/[REDACTED]/v1/messages?key=[REDACTED]"
    assert ex.path == "/v1/messages?key=[REDACTED]"
    assert dict(ex.request.headers) == {"x-api-key": REDACTED, "x-echo": REDACTED}
    assert dict(ex.upstream_request.headers) == {"authorization": "Bearer [REDACTED]"}
    assert ex.upstream_request.target.endswith("?key=[REDACTED]")
    assert f"my key is {REDACTED}" in ex.request.body.json["messages"][0]["content"]
    assert ex.request.body.json["messages"][1]["content"][0]["content"] == f"GEMINI_API_KEY={REDACTED}"
    assert b"the key is [REDACTED], and [REDACTED]!" in ex.response_body
    assert ex.agent_chunks[0].data == b"event: error\ndata: [REDACTED]\n\n"
    assert ex.errors[0].message == "reset while sending [REDACTED]"
    assert ex.route["reason"] == "because [REDACTED]"
    assert bundle.header["argv"] == ["gemini", "--api-key", REDACTED]
    assert bundle.footer["note"] == "closing [REDACTED]"
    assert bundle.exchanges[1].agent_response.body.bytes == b"no [REDACTED]"
    assert bundle.exchanges[2].response_body == PROVIDER_KEY.encode()[:10]  # a prefix alone is not a key


def test_json_body_stays_valid_json_after_redaction(tmp_path: Path) -> None:
    path = tmp_path / "b.cbor"
    body = dumps({"messages": [{"role": "user", "content": f"{PROVIDER_KEY} " * 100}], "model": "m"})
    with Recorder(str(path), {}, KEYS) as rec:
        rec.end(rec.exchange("POST", "/v1/messages", [], body))
    got = read_bundle(path).exchanges[0].request.body
    assert got.exact
    assert json.loads(got.bytes)["messages"][0]["content"] == f"{REDACTED} " * 100
