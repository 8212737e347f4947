"""Token usage of a recorded response body (`capture.answers.usage_of_body`).

The capture writer totals tokens per exchange. Streams report usage on some
lines (Anthropic: message_start and message_delta; Chat: the last chunk;
Responses: response.completed) or, for Gemini, on every chunk, as "the usage
so far"; fields merge as "the latest non-zero value". The oracle here is the
plain reading: every usage line decoded, in order.
"""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from agentwrap.capture.answers import AnswerReader, usage_of_body


def oracle(protocol: str, body: bytes) -> dict | None:
    reader = AnswerReader(protocol, sse=False)
    for line in body.split(b"\n"):
        line = line.rstrip(b"\r")
        if line.startswith(b"data:") and b'"usage' in line:
            reader._event(None, line[5:].strip().decode())
    return reader.answer.usage


def gemini_body(chunks: list) -> bytes:
    out = []
    for n, usage in enumerate(chunks):
        doc: dict = {"candidates": [{"content": {"parts": [{"text": f"t{n}"}], "role": "model"}, "index": 0}]}
        if usage is not None:
            doc["usageMetadata"] = usage
        out.append(b"data: " + json.dumps(doc, separators=(",", ": ")).encode() + b"\r\n\r\n")
    return b"".join(out)


_count = st.integers(0, 3) | st.integers(100, 200)
_gemini_usage = st.none() | st.fixed_dictionaries(
    {"promptTokenCount": _count},
    optional={"candidatesTokenCount": _count, "thoughtsTokenCount": _count, "cachedContentTokenCount": _count},
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_gemini_usage, max_size=40))
def test_gemini_usage_on_every_chunk_merges_as_the_plain_reading(chunks: list) -> None:
    body = gemini_body(chunks)
    assert usage_of_body("gemini", body, sse=True) == oracle("gemini", body)


_anthropic_usage = st.fixed_dictionaries({}, optional={
    "input_tokens": _count, "output_tokens": _count, "cache_read_input_tokens": _count, "cache_creation_input_tokens": _count})


@settings(max_examples=200, deadline=None)
@given(st.lists(_anthropic_usage, max_size=12))
def test_anthropic_usage_lines_merge_as_the_plain_reading(usages: list) -> None:
    events = []
    for n, usage in enumerate(usages):
        if n == 0:
            events.append({"type": "message_start", "message": {"id": "m", "usage": usage}})
        else:
            events.append({"type": "message_delta", "delta": {"stop_reason": None}, "usage": usage})
    body = b"".join(b"event: x\ndata: " + json.dumps(e).encode() + b"\n\n" for e in events)
    assert usage_of_body("anthropic_messages", body, sse=True) == oracle("anthropic_messages", body)


def test_a_long_gemini_stream_keeps_a_cache_count_seen_only_early() -> None:
    chunks = [{"promptTokenCount": 10, "candidatesTokenCount": n, "cachedContentTokenCount": 7 if n == 3 else 0} for n in range(1, 500)]
    body = gemini_body(chunks)
    usage = usage_of_body("gemini", body, sse=True)
    assert usage == {"input_tokens": 10, "output_tokens": 499, "cache_read_tokens": 7, "cache_write_tokens": 0}
    assert usage == oracle("gemini", body)


# -- a translated exchange: the upstream body is read in the backend's protocol ------------------


def test_translated_exchange_totals_the_backends_usage(start_proxy, upstream_factory, tmp_path) -> None:
    """Claude Code on a Gemini backend: the tokens in the bundle's footer are the ones Gemini
    reported (read as Gemini, not as the agent's Anthropic protocol)."""
    import anthropic

    from agentwrap.capture.reader import read_bundle
    from agentwrap.capture.recorder import Capture, Recorder
    from tests.conftest import write_profile

    chunks = [{"promptTokenCount": 40, "candidatesTokenCount": n, "cachedContentTokenCount": 30 if n == 2 else 0} for n in range(1, 30)]
    last = b'data: {"candidates": [{"content": {"parts": [{"text": "."}],"role": "model"},"finishReason": "STOP","index": 0}],"usageMetadata": {"promptTokenCount": 40,"candidatesTokenCount": 30}}\r\n\r\n'
    up = upstream_factory('[[turns]]\ntext = "unused"\n', default_protocol="gemini")
    up.fail_next(200, gemini_body(chunks) + last, {"content-type": "text/event-stream"})  # served as is
    profile = write_profile(tmp_path / "g.toml", f'[backends.g]\nprotocol = "gemini"\nbase_url = "{up.url}"\napi_key_env = "UP_KEY"\n[[routes]]\nbackend = "g"\n')
    proxy = start_proxy("claude", profile, {"UP_KEY": "k" * 12})
    path = tmp_path / "run.cbor"
    rec = Recorder(str(path), {"agent": "claude"}, [])
    proxy.dispatcher.addons.add(Capture(rec))
    client = anthropic.Anthropic(base_url=proxy.base_url, api_key=proxy.secret)
    with client.messages.stream(model="gemini-x", max_tokens=100, messages=[{"role": "user", "content": "hi"}]) as stream:
        text = stream.get_final_text()
        final = stream.get_final_message()
    client.close()
    rec.close({})
    assert text.startswith("t0t1t2") and final.usage.output_tokens == 30
    footer = read_bundle(path).footer
    assert footer["totals"]["tokens"] == {"input_tokens": 40, "output_tokens": 30, "cache_read_tokens": 30, "cache_write_tokens": 0}


# -- whole (not streamed) answers: the usage read from the top equals the reader's --------------------

_USAGE_AT = {"anthropic_messages": "usage", "openai_chat": "usage", "openai_responses": "usage", "gemini": "usageMetadata"}
_any_usage = st.dictionaries(
    st.sampled_from(["input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens",
                     "prompt_tokens", "completion_tokens", "prompt_tokens_details", "input_tokens_details",
                     "promptTokenCount", "candidatesTokenCount", "thoughtsTokenCount", "cachedContentTokenCount",
                     "toolUsePromptTokenCount", "prompt_cache_hit_tokens"]),
    _count | st.none() | st.just("7") | st.fixed_dictionaries({}, optional={"cached_tokens": _count, "cache_write_tokens": _count}),
)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(_USAGE_AT)), _any_usage | st.none() | st.just([]) | st.just("x"),
       st.sampled_from(["plain", "error", "envelope", "list"]))
def test_a_whole_answers_usage_is_the_readers(protocol: str, usage, shape: str) -> None:
    answer: object = {"id": "x", "model": "m", _USAGE_AT[protocol]: usage}
    if shape == "error":
        answer = {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}
    elif shape == "envelope":  # Gemini Code Assist wraps its answer
        answer = {"response": answer}
    elif shape == "list":  # Gemini's non-SSE stream: a JSON array of chunks
        answer = [answer, answer]
    body = json.dumps(answer).encode()
    reader = AnswerReader(protocol, sse=False)
    reader.feed(body)
    assert usage_of_body(protocol, body, sse=False) == reader.finish().usage
