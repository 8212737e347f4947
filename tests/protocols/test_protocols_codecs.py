"""Stream and response encoders of the four protocols, checked three ways:

our own grammar validators (tests/support/grammar.py) at every split of the bytes,
the official SDKs' event models, and the official SDK clients themselves
reading the bytes through an in-memory transport (no network).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Any

import anthropic
import httpx2
import openai
import pydantic
import pytest
from anthropic.types import Message, RawMessageStreamEvent
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as genai_types
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.responses import Response, ResponseStreamEvent

from agentwrap.protocols import anthropic as anthropic_codec
from agentwrap.protocols import gemini as gemini_codec
from agentwrap.protocols import openai_chat as chat_codec
from agentwrap.protocols import openai_responses as responses_codec
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
from tests.support.grammar import VALIDATORS, Turn

CODECS = [anthropic_codec, chat_codec, responses_codec, gemini_codec]
IDS = [c.PROTOCOL for c in CODECS]

SIG = "c2lnbmF0dXJlLWJ5dGVz"  # base64: Gemini's SDK decodes thoughtSignature as bytes
META = {"signature": SIG, "thought_signature": SIG, "encrypted_content": "gAAAAB-encrypted"}
PATCH = '*** Begin Patch\n*** Add File: "q.txt"\n+héllo\\n\t🌍\n*** End Patch'


@dataclass
class Scenario:
    events: list
    text: str = ""
    thinking: str = ""
    tools: list[tuple[str, str, Any]] = field(default_factory=list)  # (id, name, args dict or custom input)
    stop: str | None = "end_turn"
    error: str | None = None
    usage: Usage | None = None


SCENARIOS = {
    "text": Scenario(
        [MessageStart("up_1", "upstream"), TextDelta("Hello"), TextDelta(", "), TextDelta("wörld 🌍\u2028!"),
         Usage(input_tokens=120, cache_read_tokens=100), Stop("end_turn"), Usage(output_tokens=9)],
        text="Hello, wörld 🌍\u2028!",
        usage=Usage(120, 9, 100, 0),
    ),
    "thinking_then_text": Scenario(
        [MessageStart("up_1", "upstream"), ThinkingDelta("Let me "), ThinkingDelta("think."), ThinkingDelta("", META),
         TextDelta("Answer: 42"), Usage(50, 30), Stop("end_turn")],
        text="Answer: 42",
        thinking="Let me think.",
        usage=Usage(50, 30),
    ),
    "parallel_tools": Scenario(
        [MessageStart("up_1", "upstream"), TextDelta("Reading both."),
         ToolCallStart(0, "toolu_01", "read_file"), ToolCallArgsDelta(0, '{"path":'),
         ToolCallStart(1, "toolu_02", "list_dir"), ToolCallArgsDelta(1, '{"dir'),
         ToolCallArgsDelta(0, ' "a.py"'), ToolCallArgsDelta(1, '": "src"}'), ToolCallArgsDelta(0, "}"),
         ToolCallEnd(0), ToolCallEnd(1), Usage(200, 40), Stop("tool_use")],
        text="Reading both.",
        tools=[("toolu_01", "read_file", {"path": "a.py"}), ("toolu_02", "list_dir", {"dir": "src"})],
        stop="tool_use",
        usage=Usage(200, 40),
    ),
    "tools_without_message_start_or_tool_stop": Scenario(
        [ToolCallStart(3, "call_a", "a"), ToolCallArgsDelta(3, '{"x":'), ToolCallArgsDelta(3, "1}"), ToolCallEnd(3),
         ToolCallStart(7, "call_b", "b"), ToolCallEnd(7), Stop("end_turn")],
        tools=[("call_a", "a", {"x": 1}), ("call_b", "b", {})],
        stop="tool_use",
    ),
    "custom_tool": Scenario(
        [MessageStart("up_1", "upstream"), ToolCallStart(0, "call_p", "apply_patch", tool_kind="custom"),
         ToolCallArgsDelta(0, PATCH[:20]), ToolCallArgsDelta(0, PATCH[20:]), ToolCallEnd(0), Stop("tool_use")],
        tools=[("call_p", "apply_patch", PATCH)],
        stop="tool_use",
    ),
    "max_tokens": Scenario(
        [MessageStart("up_1", "upstream"), TextDelta("trunc"), Stop("max_tokens"), Usage(10, 5)],
        text="trunc",
        stop="max_tokens",
        usage=Usage(10, 5),
    ),
    "error_mid_text": Scenario(
        [MessageStart("up_1", "upstream"), TextDelta("partial"), StreamError("overloaded", "Overloaded", 529), TextDelta("ignored")],
        stop=None,
        error="overloaded",
    ),
    "error_mid_tool": Scenario(
        [MessageStart("up_1", "upstream"), ToolCallStart(0, "c1", "f"), ToolCallArgsDelta(0, '{"a"'),
         StreamError("rate_limit", "Rate limited, try again in 2s", 429)],
        stop=None,
        error="rate_limit",
    ),
    "error_first": Scenario([StreamError("authentication", "bad key", 401)], stop=None, error="authentication"),
}

WIRE_STOP = {
    "anthropic_messages": {"end_turn": "end_turn", "tool_use": "tool_use", "max_tokens": "max_tokens"},
    "openai_chat": {"end_turn": "stop", "tool_use": "tool_calls", "max_tokens": "length"},
    "openai_responses": {"end_turn": "completed", "tool_use": "completed", "max_tokens": "incomplete"},
    "gemini": {"end_turn": "STOP", "tool_use": "STOP", "max_tokens": "MAX_TOKENS"},
}
WIRE_ERROR = {
    "anthropic_messages": {"overloaded": "overloaded_error", "rate_limit": "rate_limit_error", "authentication": "authentication_error"},
    "openai_chat": {"overloaded": "service_unavailable_error", "rate_limit": "requests", "authentication": "invalid_request_error"},
    "openai_responses": {"overloaded": "server_is_overloaded", "rate_limit": "rate_limit_exceeded", "authentication": "invalid_api_key"},
    "gemini": {"overloaded": "UNAVAILABLE", "rate_limit": "RESOURCE_EXHAUSTED", "authentication": "UNAUTHENTICATED"},
}


def encode(codec: Any, events: list, **kw: Any) -> bytes:
    encoder = codec.StreamEncoder("claude-sonnet-4-5", "resp_abc123", **kw)
    assert encoder.content_type == "text/event-stream"
    out = b"".join(encoder.feed(event) for event in events) + encoder.finish()
    assert encoder.finish() == b""  # idempotent
    assert encoder.feed(TextDelta("late")) == b""
    return out


def parse_all_ways(data: bytes) -> list[SseEvent]:
    """Parse whole, byte by byte and at random splits; all must agree."""
    parser = SseParser()
    whole = parser.feed(data) + parser.finish()
    parser = SseParser()
    bytewise = [e for i in range(len(data)) for e in parser.feed(data[i : i + 1])] + parser.finish()
    assert bytewise == whole
    rng = random.Random(len(data))
    for _ in range(3):
        cuts = sorted(rng.randrange(len(data) + 1) for _ in range(6)) + [len(data)]
        parser, out, start = SseParser(), [], 0
        for cut in cuts:
            out += parser.feed(data[start:cut])
            start = cut
        assert out + parser.finish() == whole
    return whole


def tool_value(protocol: str, name: str, raw: str, custom: bool) -> Any:
    """Normalize a tool call's arguments as each wire carries them."""
    if custom and protocol == "openai_responses":
        return raw
    value = json.loads(raw or "{}")
    return value["input"] if custom else value


def check_turn(protocol: str, scenario: Scenario, turn: Turn) -> None:
    if scenario.error is not None:
        assert turn.error == WIRE_ERROR[protocol][scenario.error]
        return
    assert turn.error is None
    assert turn.text == scenario.text
    assert turn.thinking == scenario.thinking
    customs = {e.index for e in scenario.events if isinstance(e, ToolCallStart) and e.tool_kind == "custom"}
    got = [(call_id, name, tool_value(protocol, name, raw, bool(customs))) for call_id, name, raw in turn.tools]
    assert got == scenario.tools
    assert turn.stop == WIRE_STOP[protocol][scenario.stop]
    if scenario.thinking and protocol != "openai_chat":
        assert turn.meta  # the signature / encrypted content made it out


@pytest.mark.parametrize("codec", CODECS, ids=IDS)
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_stream_grammar(codec: Any, name: str) -> None:
    scenario = SCENARIOS[name]
    events = parse_all_ways(encode(codec, scenario.events))
    turn = VALIDATORS[codec.PROTOCOL](events)
    check_turn(codec.PROTOCOL, scenario, turn)


def test_usage_mapping_per_protocol() -> None:
    events = [MessageStart("u", "m"), Usage(input_tokens=1000, cache_read_tokens=700, cache_write_tokens=200), TextDelta("x"), Stop("end_turn"), Usage(output_tokens=50)]
    turns = {c.PROTOCOL: VALIDATORS[c.PROTOCOL](parse_all_ways(encode(c, events))) for c in CODECS}
    assert turns["anthropic_messages"].usage == {"input_tokens": 100, "output_tokens": 50, "cache_creation_input_tokens": 200, "cache_read_input_tokens": 700}
    assert turns["openai_chat"].usage["prompt_tokens"] == 1000
    assert turns["openai_chat"].usage["prompt_tokens_details"] == {"cached_tokens": 700}
    assert turns["openai_responses"].usage["input_tokens_details"]["cached_tokens"] == 700
    assert turns["gemini"].usage["cachedContentTokenCount"] == 700
    assert turns["gemini"].usage["totalTokenCount"] == 1050


def test_anthropic_message_start_carries_usage_known_before_content() -> None:
    events = parse_all_ways(encode(anthropic_codec, [MessageStart("u", "m"), Usage(input_tokens=42), TextDelta("x")]))
    start = json.loads(events[0].data)
    assert start["message"]["usage"]["input_tokens"] == 42
    assert start["message"]["id"] == "resp_abc123" and start["message"]["model"] == "claude-sonnet-4-5"


def test_chat_without_include_usage_sends_no_usage_chunk() -> None:
    events = parse_all_ways(encode(chat_codec, SCENARIOS["text"].events, include_usage=False))
    assert all(json.loads(e.data)["choices"] for e in events if e.data != "[DONE]")


def test_responses_max_tokens_is_completed_incomplete() -> None:
    events = parse_all_ways(encode(responses_codec, SCENARIOS["max_tokens"].events))
    last = json.loads(events[-1].data)
    assert last["type"] == "response.completed"
    assert last["response"]["incomplete_details"] == {"reason": "max_output_tokens"}


def test_gemini_invalid_tool_json_is_kept_raw() -> None:
    events = [ToolCallStart(0, "c", "f"), ToolCallArgsDelta(0, '{"a": tru'), ToolCallEnd(0)]
    turn = VALIDATORS["gemini"](parse_all_ways(encode(gemini_codec, events)))
    assert json.loads(turn.tools[0][2]) == {"_raw": '{"a": tru'}


def test_gemini_signature_moves_to_the_next_visible_part() -> None:
    events = parse_all_ways(encode(gemini_codec, [ThinkingDelta("t", {"thought_signature": SIG}), ToolCallStart(0, "c", "f"), ToolCallEnd(0)]))
    parts = [p for e in events for p in json.loads(e.data)["candidates"][0]["content"]["parts"]]
    assert parts[0] == {"text": "t", "thought": True}
    assert parts[1]["thoughtSignature"] == SIG and "functionCall" in parts[1]


def test_gemini_tool_call_signature_from_tool_start() -> None:
    events = parse_all_ways(encode(gemini_codec, [ToolCallStart(0, "c", "f", provider_meta={"thought_signature": SIG}), ToolCallEnd(0)]))
    part = json.loads(events[0].data)["candidates"][0]["content"]["parts"][0]
    assert part["thoughtSignature"] == SIG


# -- the SDKs' own event models -------------------------------------------------

ANTHROPIC_EVENT = pydantic.TypeAdapter(RawMessageStreamEvent)
RESPONSES_EVENT = pydantic.TypeAdapter(ResponseStreamEvent)


def sdk_validate(protocol: str, events: list[SseEvent]) -> None:
    for event in events:
        if event.data == "[DONE]":
            continue
        data = json.loads(event.data)
        if protocol == "anthropic_messages" and data["type"] != "error":
            ANTHROPIC_EVENT.validate_python(data)
        elif protocol == "openai_chat" and "error" not in data:
            ChatCompletionChunk.model_validate(data)
        elif protocol == "openai_responses" and data["type"] != "response.failed":
            # response.failed is left out: the SDK types error.code as a closed
            # Literal that lacks codes Codex acts on (server_is_overloaded).
            RESPONSES_EVENT.validate_python(data)
        elif protocol == "gemini" and "error" not in data:
            genai_types.GenerateContentResponse.model_validate(data)


@pytest.mark.parametrize("codec", CODECS, ids=IDS)
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_stream_events_validate_against_sdk_models(codec: Any, name: str) -> None:
    sdk_validate(codec.PROTOCOL, parse_all_ways(encode(codec, SCENARIOS[name].events)))


# -- the SDK clients reading our bytes --------------------------------------------


def transport(body: bytes) -> httpx2.Client:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=body)

    return httpx2.Client(transport=httpx2.MockTransport(handler))


def read_anthropic(body: bytes) -> Turn:
    client = anthropic.Anthropic(api_key="k", base_url="http://sdk.test", http_client=transport(body), max_retries=0)
    with client.messages.stream(model="m", max_tokens=100, messages=[{"role": "user", "content": "hi"}]) as stream:
        message = stream.get_final_message()
    turn = Turn(stop=message.stop_reason)
    for block in message.content:
        if block.type == "text":
            turn.text += block.text
        elif block.type == "thinking":
            turn.thinking += block.thinking
            turn.meta.append(block.signature)
        elif block.type == "tool_use":
            turn.tools.append((block.id, block.name, json.dumps(block.input)))
    return turn


def read_chat(body: bytes) -> Turn:
    client = openai.OpenAI(api_key="k", base_url="http://sdk.test", http_client=transport(body), max_retries=0)
    with client.chat.completions.stream(model="m", messages=[{"role": "user", "content": "hi"}]) as stream:
        for _ in stream:
            pass
        # the snapshot, not get_final_completion(): that raises on finish_reason "length"
        completion = stream.current_completion_snapshot
    choice = completion.choices[0]
    turn = Turn(text=choice.message.content or "", stop=choice.finish_reason)
    turn.thinking = getattr(choice.message, "reasoning_content", None) or ""
    for call in choice.message.tool_calls or []:
        turn.tools.append((call.id, call.function.name, call.function.arguments))
    return turn


def read_responses(body: bytes) -> Turn:
    client = openai.OpenAI(api_key="k", base_url="http://sdk.test", http_client=transport(body), max_retries=0)
    with client.responses.stream(model="m", input="hi") as stream:
        for event in stream:
            if event.type == "response.failed":
                return Turn(error=event.response.error.code)
        response = stream.get_final_response()
    turn = Turn(stop=response.status)
    for item in response.output:
        if item.type == "message":
            turn.text += "".join(c.text for c in item.content)
        elif item.type == "reasoning":
            turn.thinking += "".join(s.text for s in item.summary)
            turn.meta.append(item.encrypted_content)
        elif item.type == "function_call":
            turn.tools.append((item.call_id, item.name, item.arguments))
        elif item.type == "custom_tool_call":
            turn.tools.append((item.call_id, item.name, item.input))
    return turn


def read_gemini(body: bytes) -> Turn:
    options = genai_types.HttpOptions(base_url="http://sdk.test", httpx_client=transport(body))
    client = genai.Client(api_key="k", http_options=options)
    turn = Turn()
    for chunk in client.models.generate_content_stream(model="m", contents="hi"):
        candidate = chunk.candidates[0]
        for part in candidate.content.parts or []:
            if part.thought_signature:
                turn.meta.append(part.thought_signature)
            if part.function_call:
                turn.tools.append((part.function_call.id, part.function_call.name, json.dumps(part.function_call.args)))
            elif part.thought:
                turn.thinking += part.text
            elif part.text:
                turn.text += part.text
        if candidate.finish_reason:
            turn.stop = candidate.finish_reason.value
    return turn


READERS = {
    "anthropic_messages": read_anthropic,
    "openai_chat": read_chat,
    "openai_responses": read_responses,
    "gemini": read_gemini,
}

SDK_ERRORS = {
    "anthropic_messages": anthropic.APIStatusError,
    "openai_chat": openai.APIError,
    "gemini": genai_errors.APIError,
}


@pytest.mark.parametrize("codec", CODECS, ids=IDS)
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_official_sdk_reads_the_stream(codec: Any, name: str) -> None:
    scenario = SCENARIOS[name]
    body = encode(codec, scenario.events)
    protocol = codec.PROTOCOL
    if scenario.error is not None and protocol in SDK_ERRORS:
        with pytest.raises(SDK_ERRORS[protocol]) as info:
            READERS[protocol](body)
        if protocol == "anthropic_messages":
            assert info.value.body["error"]["type"] == WIRE_ERROR[protocol][scenario.error]
        elif protocol == "gemini":
            assert info.value.status == WIRE_ERROR[protocol][scenario.error]
        return
    check_turn(protocol, scenario, READERS[protocol](body))


# -- non-streaming responses ------------------------------------------------------

RESPONSE_MODELS = {
    "anthropic_messages": Message,
    "openai_chat": ChatCompletion,
    "openai_responses": Response,
    "gemini": genai_types.GenerateContentResponse,
}


@pytest.mark.parametrize("codec", CODECS, ids=IDS)
@pytest.mark.parametrize("name", [n for n, s in SCENARIOS.items() if s.error is None])
def test_encode_response_validates_and_matches_stream(codec: Any, name: str) -> None:
    scenario = SCENARIOS[name]
    body = codec.encode_response(scenario.events, "claude-sonnet-4-5", "resp_abc123")
    json.dumps(body)  # plain JSON data
    RESPONSE_MODELS[codec.PROTOCOL].model_validate(body)
    turn = Turn()
    if codec.PROTOCOL == "anthropic_messages":
        turn.stop = body["stop_reason"]
        for block in body["content"]:
            if block["type"] == "text":
                turn.text += block["text"]
            elif block["type"] == "thinking":
                turn.thinking += block["thinking"]
                turn.meta.append(block["signature"])
            else:
                turn.tools.append((block["id"], block["name"], json.dumps(block["input"])))
    elif codec.PROTOCOL == "openai_chat":
        message = body["choices"][0]["message"]
        turn.stop = body["choices"][0]["finish_reason"]
        turn.text = message["content"] or ""
        turn.thinking = message.get("reasoning_content", "")
        turn.tools = [(c["id"], c["function"]["name"], c["function"]["arguments"]) for c in message.get("tool_calls", [])]
    elif codec.PROTOCOL == "openai_responses":
        turn.stop = body["status"]
        for item in body["output"]:
            if item["type"] == "message":
                turn.text += item["content"][0]["text"]
            elif item["type"] == "reasoning":
                turn.thinking += item["summary"][0]["text"]
                turn.meta.append(item["encrypted_content"])
            elif item["type"] == "function_call":
                turn.tools.append((item["call_id"], item["name"], item["arguments"]))
            else:
                turn.tools.append((item["call_id"], item["name"], item["input"]))
    else:
        candidate = body["candidates"][0]
        turn.stop = candidate["finishReason"]
        for part in candidate["content"]["parts"]:
            turn.meta += [part["thoughtSignature"]] if "thoughtSignature" in part else []
            if "functionCall" in part:
                call = part["functionCall"]
                turn.tools.append((call["id"], call["name"], json.dumps(call["args"])))
            elif part.get("thought"):
                turn.thinking += part["text"]
            else:
                turn.text += part["text"]
    check_turn(codec.PROTOCOL, scenario, turn)


@pytest.mark.parametrize("codec", CODECS, ids=IDS)
def test_encode_response_with_error_gives_error_body(codec: Any) -> None:
    body = codec.encode_response(SCENARIOS["error_mid_text"].events, "m", "resp_1")
    if codec.PROTOCOL == "openai_responses":
        assert body["status"] == "failed" and body["error"]["code"] == "server_is_overloaded"
    else:
        assert "error" in body


# -- errors -----------------------------------------------------------------------

ERROR_STATUS = [
    ("authentication", 401, 401),
    ("permission", 403, 403),
    ("not_found", 404, 404),
    ("invalid_request", 400, 400),
    ("rate_limit", 429, 429),
    ("overloaded", 529, 503),
    ("timeout", 504, 504),
    ("upstream_unreachable", 502, 502),
    ("api_error", 500, 500),
    ("something_new", 500, 500),
]


@pytest.mark.parametrize("error_type,anthropic_status,other_status", ERROR_STATUS)
def test_encode_error_statuses_and_shapes(error_type: str, anthropic_status: int, other_status: int) -> None:
    status, body = anthropic_codec.encode_error(error_type, "boom")
    data = json.loads(body)
    assert status == anthropic_status
    assert data["type"] == "error" and data["error"]["message"] == "boom" and data["error"]["type"].endswith("_error")
    anthropic.types.ErrorResponse.model_validate(data)
    for codec in (chat_codec, responses_codec):
        status, body = codec.encode_error(error_type, "boom")
        data = json.loads(body)
        assert status == other_status
        assert set(data["error"]) == {"message", "type", "param", "code"} and data["error"]["message"] == "boom"
    status, body = gemini_codec.encode_error(error_type, "boom")
    data = json.loads(body)
    assert status == other_status
    assert data["error"]["code"] == other_status and data["error"]["message"] == "boom" and data["error"]["status"].isupper()


@pytest.mark.parametrize("codec", CODECS, ids=IDS)
def test_encode_error_explicit_status_wins(codec: Any) -> None:
    status, body = codec.encode_error("overloaded", "busy", 502)
    assert status == 502
    if codec is gemini_codec:
        assert json.loads(body)["error"]["code"] == 502


def test_gemini_sdk_maps_error_body_to_its_exception() -> None:
    status, body = gemini_codec.encode_error("authentication", "bad key")

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(status, headers={"content-type": "application/json"}, content=body)

    options = genai_types.HttpOptions(base_url="http://sdk.test", httpx_client=httpx2.Client(transport=httpx2.MockTransport(handler)))
    with pytest.raises(genai_errors.ClientError) as info:
        genai.Client(api_key="k", http_options=options).models.generate_content(model="m", contents="hi")
    assert info.value.code == 401 and info.value.status == "UNAUTHENTICATED"


# -- properties: any neutral soup gives a valid stream ------------------------------

_small_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=8)
_neutral_event = st.one_of(
    st.builds(MessageStart, st.just("u"), st.just("m")),
    st.builds(TextDelta, _small_text),
    st.builds(ThinkingDelta, _small_text, st.none() | st.just(META)),
    st.builds(ToolCallStart, st.integers(0, 3), st.sampled_from(["c1", "c2"]), st.sampled_from(["f", "g"]), st.sampled_from(["function", "custom"])),
    st.builds(ToolCallArgsDelta, st.integers(0, 3), st.sampled_from(['{"a":', "1", "}", '"x\\n"', ""])),
    st.builds(ToolCallEnd, st.integers(0, 3)),
    st.builds(Usage, st.integers(0, 99), st.integers(0, 99), st.integers(0, 9), st.integers(0, 9)),
    st.builds(Stop, st.sampled_from(["end_turn", "tool_use", "max_tokens", "stop_sequence", "refusal", "error"])),
    st.builds(StreamError, st.sampled_from(["overloaded", "rate_limit", "api_error", "weird"]), _small_text.map(lambda s: s or "x"), st.integers(400, 599)),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(_neutral_event, max_size=25))
def test_any_neutral_sequence_gives_a_valid_stream(events: list) -> None:
    for codec in CODECS:
        wire = parse_all_ways(encode(codec, events))
        VALIDATORS[codec.PROTOCOL](wire, strict_json=False)
        sdk_validate(codec.PROTOCOL, wire)
        codec.encode_response(events, "m", "r")


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(st.sampled_from(['{"k":', ' "v', "é", '"', "}", "[1,", "2]", "\\n"]), max_size=6), min_size=1, max_size=4))
def test_interleaved_tool_calls_keep_their_arguments(pieces: list[list[str]]) -> None:
    events: list = [ToolCallStart(i, f"call_{i}", f"tool_{i}") for i in range(len(pieces))]
    rng = random.Random(str(pieces))
    pending = [(i, p) for i, chunks in enumerate(pieces) for p in chunks]
    order = sorted(range(len(pending)), key=lambda k: (rng.random(), 0))
    # keep each call's own pieces in order while interleaving calls
    per_call = {i: [p for j, p in pending if j == i] for i in range(len(pieces))}
    cursor = {i: 0 for i in per_call}
    for k in order:
        i = pending[k][0]
        events.append(ToolCallArgsDelta(i, per_call[i][cursor[i]]))
        cursor[i] += 1
    events += [ToolCallEnd(i) for i in range(len(pieces))]
    for codec in (anthropic_codec, chat_codec, responses_codec):
        turn = VALIDATORS[codec.PROTOCOL](parse_all_ways(encode(codec, events)), strict_json=False)
        assert [raw for _, _, raw in turn.tools] == ["".join(p) for p in pieces]
