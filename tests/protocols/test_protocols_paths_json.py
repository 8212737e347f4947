"""Small cores the proxy leans on for hostile input: dot segments in a request path, lone
surrogates in JSON agentwrap writes, the nesting limit of a model call."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agentwrap.errors import RequestError
from agentwrap.protocols._json import dumps_bytes, encodable
from agentwrap.protocols.endpoints import has_dot_segment
from agentwrap.proxy.flow import MAX_JSON_DEPTH, Flow


@pytest.mark.parametrize("path", [
    "/../../v1/messages", "/%2e%2e/%2E%2E/v1/messages", "/v1/../../../v1/messages", "/./../v1/messages",
    "/v1/..%2f..%2f..%2fv1/messages", "/v1/%252e%252e/messages", "/v1/..\\..\\messages", "/v1/.", "/v1/..",
    "/v1beta/models/x/../../../y:generateContent", "/.%2e/v1/messages",
])
def test_a_dot_segment_in_any_spelling_is_found(path: str) -> None:
    assert has_dot_segment(path)


@pytest.mark.parametrize("path", [
    "/v1/messages", "/v1/chat/completions", "/v1beta/models/gemini-2.5-pro:streamGenerateContent",
    "/v1/.well-known", "/v1/a..b", "/v1/models/x%2Fy", "/v1/...", "/", "",
])
def test_ordinary_paths_have_no_dot_segment(path: str) -> None:
    assert not has_dot_segment(path)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(st.characters()),  # lone surrogates included
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(st.characters(), max_size=8), children, max_size=4),
    max_leaves=20,
)


@given(json_values)
def test_dumps_bytes_is_utf8_json_that_reads_back_the_same(value) -> None:
    data = dumps_bytes(value)
    data.decode("utf-8")  # strict: a lone surrogate went out as its escape
    assert json.loads(data) == value


def test_dumps_bytes_keeps_the_escape_a_lone_surrogate_came_as() -> None:
    assert dumps_bytes({"text": "h\ud800i", "é": 1}) == b'{"text":"h\\ud800i","\xc3\xa9":1}'


@given(st.text(st.characters()))
def test_encodable_text_is_valid_utf8_and_unchanged_when_it_was(text: str) -> None:
    out = encodable(text)
    out.encode("utf-8")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return
    assert out == text


def _flow(body: bytes) -> Flow:
    return Flow(1, b"POST", b"/v1/messages", [], body)


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 990, 1_000, 100_000])
def test_a_body_nested_past_the_limit_is_a_request_error(depth: int) -> None:
    body = b'{"model":"m","x":' + b"[" * (depth - 1) + b"]" * (depth - 1) + b"}"
    with pytest.raises(RequestError, match=f"nested more than {MAX_JSON_DEPTH} levels"):
        _flow(body).open("/v1/messages", "anthropic_messages")


def test_a_body_nested_to_the_limit_is_read() -> None:
    body = b'{"model":"m","x":' + b"[" * (MAX_JSON_DEPTH - 1) + b"]" * (MAX_JSON_DEPTH - 1) + b"}"
    flow = _flow(body)
    flow.open("/v1/messages", "anthropic_messages")
    assert flow.parsed is not None and flow.model == "m"


def test_a_dot_segment_in_the_path_is_a_request_error() -> None:
    with pytest.raises(RequestError, match="'..' segment"):
        _flow(b"{}").open("/v1/../../v1/messages", "anthropic_messages")
