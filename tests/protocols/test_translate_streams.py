"""Stream decoders (backend SSE -> neutral events) of the four protocols.

Checked four ways: recorded quirk fixtures (tests/fixtures/streams/<protocol>/*.sse,
one test per quirk), round trips through the existing stream encoders,
split invariance, and hostile input (arbitrary bytes and mutated events give
events or UpstreamProtocol, never another exception).
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentwrap.errors import UpstreamProtocol
from agentwrap.protocols import anthropic as anthropic_codec
from agentwrap.protocols import gemini as gemini_codec
from agentwrap.protocols import openai_chat as chat_codec
from agentwrap.protocols import openai_responses as responses_codec
from agentwrap.protocols.neutral import merge_usage
from agentwrap.protocols.neutral import (
    MessageStart,
    Stop,
    StreamError,
    TextDelta,
    ThinkingDelta,
    ToolCallArgsDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
)
from agentwrap.protocols.sse import SseEvent, SseParser
from tests.support.grammar import VALIDATORS

CODECS = {c.PROTOCOL: c for c in (anthropic_codec, chat_codec, responses_codec, gemini_codec)}
PROTOCOLS = list(CODECS)
STREAMS = Path(__file__).resolve().parents[1] / "fixtures" / "streams"


# -- helpers ---------------------------------------------------------------------


def parse(data: bytes, cuts: list[int] | None = None) -> list[SseEvent]:
    parser = SseParser()
    if cuts is None:
        return parser.feed(data) + parser.finish()
    out, start = [], 0
    for cut in [*cuts, len(data)]:
        out += parser.feed(data[start:cut])
        start = cut
    return out + parser.finish()


def decode(protocol: str, data: bytes, cuts: list[int] | None = None, hint: str = "h1") -> list:
    decoder = CODECS[protocol].StreamDecoder(hint)
    events: list = []
    for sse in parse(data, cuts):
        events += decoder.feed(sse)
    return events + decoder.finish()


def decode_all_ways(protocol: str, data: bytes) -> list:
    """Decode whole, byte by byte and at random splits; all must agree."""
    whole = decode(protocol, data)
    assert decode(protocol, data, list(range(1, len(data)))) == whole
    rng = random.Random(len(data))
    for _ in range(3):
        assert decode(protocol, data, sorted(rng.randrange(len(data) + 1) for _ in range(8))) == whole
    return whole


def summary(events: list) -> dict:
    """What a stream of neutral events amounts to."""
    out: dict[str, Any] = {"text": "", "thinking": "", "tools": {}, "ended": [], "stop": None, "error": None, "usage": None, "meta": []}
    for e in events:
        if isinstance(e, TextDelta):
            out["text"] += e.text
        elif isinstance(e, ThinkingDelta):
            out["thinking"] += e.text
            if e.provider_meta is not None:
                out["meta"].append(e.provider_meta)
        elif isinstance(e, ToolCallStart):
            out["tools"][e.index] = [e.call_id, e.name, e.tool_kind, "", e.provider_meta]
        elif isinstance(e, ToolCallArgsDelta):
            out["tools"][e.index][3] += e.delta
        elif isinstance(e, ToolCallEnd):
            out["ended"].append(e.index)
        elif isinstance(e, Stop):
            out["stop"] = e.reason
        elif isinstance(e, StreamError):
            out["error"] = (e.error_type, e.status)
        elif isinstance(e, Usage):
            out["usage"] = merge_usage(out["usage"], e)
    out["tools"] = [tuple(v) for _, v in sorted(out["tools"].items())]
    return out


def fixture(protocol: str, quirk: str) -> dict:
    data = (STREAMS / protocol / f"{quirk}.sse").read_bytes()
    return summary(decode_all_ways(protocol, data))


# -- recorded quirks, one test each -------------------------------------------------


def test_anthropic_ping_and_overloaded_error_mid_stream() -> None:
    s = fixture("anthropic_messages", "ping_and_overloaded_error_mid_stream")
    assert s["text"] == "Partial ans"
    assert s["error"] == ("overloaded", 529)
    assert s["usage"].input_tokens == 12


def test_anthropic_tool_input_in_block_start() -> None:
    s = fixture("anthropic_messages", "tool_input_in_block_start")
    assert s["tools"] == [("toolu_compat1", "Bash", "function", '{"command":"ls -la"}', None)]
    assert s["ended"] == [0] and s["stop"] == "tool_use"


def test_anthropic_thinking_signature_then_split_tool_json() -> None:
    s = fixture("anthropic_messages", "thinking_signature_then_split_tool_json")
    assert s["thinking"] == "List the directory first."
    assert s["meta"] == [{"signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxDs5Hm"}]
    assert json.loads(s["tools"][0][3]) == {"command": "ls -la"}
    # Anthropic counts cache tokens apart; neutral input includes them.
    assert s["usage"] == Usage(input_tokens=4320, output_tokens=61, cache_read_tokens=4000, cache_write_tokens=300)


def test_anthropic_redacted_thinking() -> None:
    s = fixture("anthropic_messages", "redacted_thinking")
    assert s["meta"] == [{"redacted": "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpP"}]
    assert s["text"] == "Done." and s["stop"] == "end_turn"


def test_anthropic_cut_mid_tool_block() -> None:
    s = fixture("anthropic_messages", "cut_mid_tool_block")
    assert s["error"] == ("api_error", 502)  # never a silent truncation
    assert s["ended"] == []


def test_chat_tool_args_in_first_chunk() -> None:
    s = fixture("openai_chat", "tool_args_in_first_chunk")
    assert s["tools"] == [("chatcmpl-tool-8e1", "Bash", "function", '{"command": "ls -la"}', None)]
    assert s["stop"] == "tool_use"


def test_chat_usage_chunk_with_empty_choices() -> None:
    s = fixture("openai_chat", "usage_chunk_with_empty_choices")
    assert s["text"] == "Hello" and s["stop"] == "end_turn"
    assert s["usage"] == Usage(input_tokens=1200, output_tokens=3, cache_read_tokens=1024)


def test_chat_parallel_calls_same_index() -> None:
    events = decode_all_ways("openai_chat", (STREAMS / "openai_chat" / "parallel_calls_same_index.sse").read_bytes())
    s = summary(events)
    assert [(t[0], json.loads(t[3])) for t in s["tools"]] == [("call_0kj1", {"file_path": "a.py"}), ("call_9xq2", {"file_path": "b.py"})]
    # The first call ends as soon as the second starts: its arguments were complete.
    kinds = [e.kind for e in events]
    assert kinds.index("tool_call_end") < kinds.index("tool_call_start", kinds.index("tool_call_start") + 1)
    assert s["stop"] == "tool_use"


def test_chat_finish_stop_after_tool_calls() -> None:
    s = fixture("openai_chat", "finish_stop_after_tool_calls")
    assert json.loads(s["tools"][0][3]) == {"command": "echo hi > made.txt"}
    assert s["stop"] == "tool_use"  # agents run tools only on a tool-use stop


def test_chat_reasoning_field_and_no_done() -> None:
    s = fixture("openai_chat", "reasoning_field_and_no_done")
    assert s["thinking"] == "Thinking." and s["text"] == "Answer"
    assert s["stop"] == "max_tokens" and s["error"] is None
    assert s["usage"] == Usage(input_tokens=900, output_tokens=64, cache_read_tokens=512)


def test_chat_error_object_mid_stream() -> None:
    s = fixture("openai_chat", "error_object_mid_stream")
    assert s["text"] == "Hal" and s["error"] == ("rate_limit", 500)


def test_chat_cut_before_finish_reason() -> None:
    assert fixture("openai_chat", "cut_before_finish_reason")["error"] == ("api_error", 502)


def test_responses_output_item_done_carries_full_item() -> None:
    s = fixture("openai_responses", "output_item_done_carries_full_item")
    assert s["text"] == "Creating the file."
    assert s["tools"] == [("call_w1", "exec_command", "function", '{"cmd":"touch made.txt"}', None)]
    assert s["ended"] == [0] and s["stop"] == "tool_use"


def test_responses_reasoning_summary_and_encrypted_content() -> None:
    s = fixture("openai_responses", "reasoning_summary_and_encrypted_content")
    assert s["thinking"] == "**Planning**\n\nThen act."
    assert s["meta"] == [{"encrypted_content": "gAAAAABpXyZ-encrypted-blob", "id": "rs_1"}]
    assert s["usage"] == Usage(input_tokens=5000, output_tokens=120, cache_read_tokens=4096)


def test_responses_custom_tool_call_input_deltas() -> None:
    s = fixture("openai_responses", "custom_tool_call_input_deltas")
    assert s["tools"] == [("call_patch1", "apply_patch", "custom", '*** Begin Patch\n*** Add File: made.txt\n+hello "quoted"\n*** End Patch', None)]


def test_responses_namespaced_function_call() -> None:
    s = fixture("openai_responses", "namespaced_function_call")
    assert s["tools"][0][:2] == ("call_sleep", "clock__sleep")  # neutral names carry the namespace


def test_responses_response_failed_rate_limit() -> None:
    assert fixture("openai_responses", "response_failed_rate_limit")["error"] == ("rate_limit", 500)


def test_responses_incomplete_max_output_tokens() -> None:
    s = fixture("openai_responses", "incomplete_max_output_tokens")
    assert s["text"] == "The answer is lo" and s["stop"] == "max_tokens"


def test_responses_no_completed_event() -> None:
    assert fixture("openai_responses", "no_completed_event")["error"] == ("api_error", 502)


def test_gemini_function_call_without_id() -> None:
    s = fixture("gemini", "function_call_without_id")
    call_id, name, _, args, _ = s["tools"][0]
    assert name == "run_shell_command" and json.loads(args) == {"command": "echo hello > made.txt"}
    assert call_id == "call_fk0Oab-3Kc_0"  # stable: response id and position
    assert s["stop"] == "tool_use"


def test_gemini_crlf_signature_on_parallel_function_calls() -> None:
    data = (STREAMS / "gemini" / "crlf_signature_on_parallel_function_calls.sse").read_bytes()
    assert b"\r\n" in data  # the fixture keeps Google's line endings
    s = fixture("gemini", "crlf_signature_on_parallel_function_calls")
    assert s["thinking"] == "Checking both files"
    assert [(t[0], t[4]) for t in s["tools"]] == [("fc_a", {"thought_signature": "CiQB0e2Kb3Jk"}), ("fc_b", None)]
    assert s["usage"] == Usage(input_tokens=2000, output_tokens=150, cache_read_tokens=1500)


def test_gemini_signature_on_text_part() -> None:
    events = decode_all_ways("gemini", (STREAMS / "gemini" / "signature_on_text_part.sse").read_bytes())
    kinds = [(e.kind, getattr(e, "provider_meta", None)) for e in events if e.kind in ("thinking_delta", "text_delta")]
    # "next": the signature belongs on the part after it (here the text part itself).
    assert kinds == [("thinking_delta", None), ("thinking_delta", {"thought_signature": "Q2lnMQ==", "next": True}), ("text_delta", None), ("thinking_delta", {"thought_signature": "Q2lnMg==", "next": True})]


def test_gemini_error_chunk_mid_stream() -> None:
    s = fixture("gemini", "error_chunk_mid_stream")
    assert s["text"] == "Part of" and s["error"] == ("overloaded", 503)


def test_gemini_no_finish_reason() -> None:
    assert fixture("gemini", "no_finish_reason")["error"] == ("api_error", 502)


def test_gemini_max_tokens_finish() -> None:
    assert fixture("gemini", "max_tokens_finish")["stop"] == "max_tokens"


def test_gemini_malformed_function_call() -> None:
    assert fixture("gemini", "malformed_function_call")["error"] == ("api_error", 502)


def test_gemini_prompt_blocked() -> None:
    assert fixture("gemini", "prompt_blocked")["stop"] == "refusal"


def all_fixtures() -> list[tuple[str, str]]:
    return [(p.parent.name, p.stem) for p in sorted(STREAMS.glob("*/*.sse"))]


def test_every_fixture_has_its_own_test() -> None:
    names = set(globals())
    prefix = {"anthropic_messages": "anthropic", "openai_chat": "chat", "openai_responses": "responses", "gemini": "gemini"}
    missing = [f"{p}/{q}" for p, q in all_fixtures() if f"test_{prefix[p]}_{q}" not in names]
    assert not missing


@pytest.mark.parametrize("protocol,quirk", all_fixtures())
def test_fixture_ends_with_stop_or_error(protocol: str, quirk: str) -> None:
    s = fixture(protocol, quirk)
    assert (s["stop"] is None) != (s["error"] is None)
    assert sorted(s["ended"]) == list(range(len(s["tools"]))) or s["error"] is not None


# -- round trips through the existing encoders ---------------------------------------

META = {"signature": "c2ln", "thought_signature": "c2ln", "encrypted_content": "gAAAA-enc"}
_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=6)
_event = st.one_of(
    st.builds(MessageStart, st.just("up_1"), st.just("m")),
    st.builds(TextDelta, _text),
    st.builds(ThinkingDelta, _text, st.none() | st.just(META)),
    st.builds(ToolCallStart, st.integers(0, 3), st.sampled_from(["c1", "c2", "c3"]), st.sampled_from(["f", "g"]), st.sampled_from(["function", "custom"])),
    st.builds(ToolCallArgsDelta, st.integers(0, 3), st.sampled_from(['{"a":', "1", "}", '"x\\n"', "é", ""])),
    st.builds(ToolCallEnd, st.integers(0, 3)),
    st.builds(Usage, st.integers(0, 99), st.integers(0, 99), st.integers(0, 9), st.integers(0, 9)),
    st.builds(Stop, st.sampled_from(["end_turn", "tool_use", "max_tokens", "stop_sequence", "refusal", "error"])),
    st.builds(StreamError, st.sampled_from(["overloaded", "rate_limit", "api_error", "authentication"]), st.just("boom"), st.sampled_from([429, 500, 529])),
)


def encode(protocol: str, events: list) -> bytes:
    encoder = CODECS[protocol].StreamEncoder("m", "resp_rt1")
    return b"".join(encoder.feed(e) for e in events) + encoder.finish()


@settings(max_examples=120, deadline=None)
@given(st.lists(_event, max_size=20), st.randoms(use_true_random=False))
def test_encode_decode_encode_is_stable(events: list, rng: random.Random) -> None:
    """neutral -> wire -> neutral -> wire gives the same stream, at any split."""
    for protocol in PROTOCOLS:
        wire = encode(protocol, events)
        cuts = sorted(rng.randrange(len(wire) + 1) for _ in range(5))
        decoded = decode(protocol, wire, cuts)
        assert decoded == decode(protocol, wire)
        again = encode(protocol, decoded)
        validate = VALIDATORS[protocol]
        first, second = validate(parse(wire), strict_json=False), validate(parse(again), strict_json=False)
        if first.error is not None:
            # After an error only the error counts: blocks open at the time are
            # never closed on the wire, so validators see partial content.
            assert second.error == first.error
        else:
            if protocol == "openai_chat" and first.tools and first.stop == "stop":
                first.stop = "tool_calls"  # a "stop" after tool calls is read as a tool turn (see the decoder)
            assert second == first


# -- hostile input -----------------------------------------------------------------------


def _through(protocol: str, data: bytes) -> None:
    try:
        decode(protocol, data, sorted(random.Random(data).randrange(len(data) + 1) for _ in range(3)))
    except UpstreamProtocol:
        pass


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_give_events_or_upstream_protocol(data: bytes) -> None:
    for protocol in PROTOCOLS:
        _through(protocol, data)


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.text(max_size=5) | st.floats(allow_nan=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["type", "index", "delta", "id", "name", "text", "parts", "choices", "error", "item", "output_index", "response", "content_block", "candidates", "content", "functionCall", "args", "usage", "tool_calls", "function", "arguments", "finish_reason", "finishReason"]), inner, max_size=4),
    max_leaves=12,
)


def _mutate(value: Any, rng: random.Random, replacement: Any) -> Any:
    """`value` with one random sub-value replaced."""
    if isinstance(value, dict) and value and rng.random() < 0.8:
        key = rng.choice(sorted(value))
        return {**value, key: _mutate(value[key], rng, replacement)}
    if isinstance(value, list) and value and rng.random() < 0.8:
        i = rng.randrange(len(value))
        return value[:i] + [_mutate(value[i], rng, replacement)] + value[i + 1 :]
    return replacement


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(all_fixtures()), st.randoms(use_true_random=False), _json)
def test_mutated_real_events_give_events_or_upstream_protocol(quirk: tuple[str, str], rng: random.Random, replacement: Any) -> None:
    protocol, name = quirk
    events = parse((STREAMS / protocol / f"{name}.sse").read_bytes())
    i = rng.choice([n for n, e in enumerate(events) if e.data != "[DONE]"])
    data = json.loads(events[i].data)
    events[i] = SseEvent(events[i].event, json.dumps(_mutate(data, rng, replacement)))
    body = b"".join((f"event: {e.event}\n" if e.event else "").encode() + f"data: {e.data}\n\n".encode() for e in events)
    _through(protocol, body)


_TYPES = {
    "anthropic_messages": ["message_start", "content_block_start", "content_block_delta", "content_block_stop", "message_delta", "message_stop", "error", "ping"],
    "openai_responses": ["response.created", "response.output_item.added", "response.output_text.delta", "response.reasoning_summary_text.delta", "response.function_call_arguments.delta", "response.custom_tool_call_input.delta", "response.output_item.done", "response.completed", "response.incomplete", "response.failed", "error"],
}
_fields = st.dictionaries(st.sampled_from(["index", "output_index", "item_id", "summary_index", "delta", "content_block", "item", "message", "response", "usage", "error", "choices", "candidates", "usageMetadata", "promptFeedback", "id", "model"]), _json, max_size=5)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(PROTOCOLS), st.lists(st.tuples(st.integers(0, 10), _fields), min_size=1, max_size=6))
def test_random_typed_events_give_events_or_upstream_protocol(protocol: str, raw: list) -> None:
    body = b""
    for n, fields in raw:
        types = _TYPES.get(protocol)
        if types:
            kind = types[n % len(types)]
            body += f"event: {kind}\ndata: {json.dumps({**fields, 'type': kind})}\n\n".encode()
        else:
            body += f"data: {json.dumps(fields)}\n\n".encode()
    _through(protocol, body)


# -- whole responses and errors ----------------------------------------------------------

WHOLE = [
    ("anthropic_messages", {"id": "msg_1", "type": "message", "role": "assistant", "model": "c", "content": [{"type": "thinking", "thinking": "t", "signature": "s"}, {"type": "text", "text": "Hi"}, {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": "ls"}}], "stop_reason": "tool_use", "usage": {"input_tokens": 3, "output_tokens": 4, "cache_read_input_tokens": 10}}),
    ("openai_chat", {"id": "chatcmpl-1", "object": "chat.completion", "model": "g", "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi", "reasoning_content": "t", "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "Bash", "arguments": '{"command":"ls"}'}}]}, "finish_reason": "tool_calls"}], "usage": {"prompt_tokens": 13, "completion_tokens": 4, "total_tokens": 17, "prompt_tokens_details": {"cached_tokens": 10}}}),
    ("openai_responses", {"id": "resp_1", "object": "response", "status": "completed", "model": "g", "output": [{"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "t"}], "encrypted_content": "s"}, {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Hi"}]}, {"type": "function_call", "call_id": "call_1", "name": "Bash", "arguments": '{"command":"ls"}'}], "usage": {"input_tokens": 13, "output_tokens": 4, "input_tokens_details": {"cached_tokens": 10}}}),
    ("gemini", {"candidates": [{"content": {"role": "model", "parts": [{"text": "t", "thought": True}, {"text": "Hi", "thoughtSignature": "s"}, {"functionCall": {"id": "call_1", "name": "Bash", "args": {"command": "ls"}}}]}, "finishReason": "STOP"}], "usageMetadata": {"promptTokenCount": 13, "candidatesTokenCount": 4, "cachedContentTokenCount": 10}, "responseId": "r1"}),
]


@pytest.mark.parametrize("protocol,body", WHOLE, ids=[w[0] for w in WHOLE])
def test_decode_response(protocol: str, body: dict) -> None:
    s = summary(CODECS[protocol].decode_response(body))
    assert s["text"] == "Hi" and s["thinking"] == "t" and s["stop"] == "tool_use"
    assert [(t[1], json.loads(t[3])) for t in s["tools"]] == [("Bash", {"command": "ls"})]
    assert s["usage"].input_tokens == 13 and s["usage"].cache_read_tokens == 10 and s["usage"].output_tokens == 4
    if protocol != "openai_chat":
        assert s["meta"]  # the signature / encrypted content is kept


ERRORS = [
    ("anthropic_messages", 429, {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}, "rate_limit"),
    ("anthropic_messages", 529, {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}, "overloaded"),
    ("anthropic_messages", 400, {"type": "error", "error": {"type": "invalid_request_error", "message": "bad"}}, "invalid_request"),
    ("anthropic_messages", 401, {"type": "error", "error": {"type": "authentication_error", "message": "key"}}, "authentication"),
    ("openai_chat", 429, {"error": {"message": "Rate limit", "type": "requests", "param": None, "code": "rate_limit_exceeded"}}, "rate_limit"),
    ("openai_chat", 429, {"error": {"message": "quota", "type": "insufficient_quota", "code": "insufficient_quota"}}, "permission"),
    ("openai_chat", 401, {"error": {"message": "Incorrect API key", "type": "invalid_request_error", "code": "invalid_api_key"}}, "authentication"),
    ("openai_chat", 503, {"error": {"message": "busy", "type": "server_error", "code": None}}, "overloaded"),
    ("openai_responses", 400, {"error": {"message": "context", "type": "invalid_request_error", "code": "context_length_exceeded"}}, "invalid_request"),
    ("openai_responses", 404, {"error": {"message": "no model", "type": "invalid_request_error", "code": "model_not_found"}}, "not_found"),
    ("gemini", 429, {"error": {"code": 429, "message": "Quota exceeded", "status": "RESOURCE_EXHAUSTED"}}, "rate_limit"),
    ("gemini", 503, [{"error": {"code": 503, "message": "overloaded", "status": "UNAVAILABLE"}}], "overloaded"),
    ("gemini", 400, {"error": {"code": 400, "message": "bad schema", "status": "INVALID_ARGUMENT"}}, "invalid_request"),
    ("gemini", 403, {"error": {"code": 403, "message": "denied", "status": "PERMISSION_DENIED"}}, "permission"),
]


@pytest.mark.parametrize("protocol,status,body,expected", ERRORS)
def test_decode_error(protocol: str, status: int, body: Any, expected: str) -> None:
    kind, message = CODECS[protocol].decode_error(status, json.dumps(body).encode())
    assert kind == expected and message


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("status,expected", [(429, "rate_limit"), (401, "authentication"), (500, "api_error"), (504, "timeout"), (418, "invalid_request")])
def test_decode_error_of_a_non_json_body_goes_by_status(protocol: str, status: int, expected: str) -> None:
    kind, message = CODECS[protocol].decode_error(status, b"<html>Bad Gateway</html>")
    assert kind == expected and "Bad Gateway" in message
