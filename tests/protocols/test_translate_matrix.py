"""Every agent protocol on every backend protocol (4 x 4, same-protocol too).

A realistic agent request is translated; a fake backend (the backend
protocol's own StreamEncoder, fed neutral events) answers; its bytes reach
`StreamTranslator` split at odd places; the agent-side stream must pass the
agent protocol's grammar validator (tests/support/grammar.py) with tool arguments
complete and valid JSON, faithful stop reasons, mapped usage, and on failure
the agent protocol's own error event.
"""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from anthropic.types import Message as AnthropicMessage
from google.genai import types as genai_types
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.types.chat import ChatCompletion
from openai.types.responses import Response

from agentwrap.protocols import PROTOCOLS
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
from agentwrap.protocols.neutral.request import unseal
from agentwrap.protocols.sse import SseEvent, SseParser
from agentwrap.protocols.translate import StreamTranslator, TranslationContext, translate_request, translate_response
from agentwrap.protocols.codec import codec
from tests.support.grammar import VALIDATORS, Turn
from tests.protocols.test_protocols_codecs import READERS
from tests.protocols.test_translate_requests import load
from tests.protocols.test_translate_streams import STREAMS, _json, _mutate, all_fixtures, parse

PAIRS = [(a, b) for a in PROTOCOLS for b in PROTOCOLS]
PAIR_IDS = [f"{a}-on-{b}" for a, b in PAIRS]

CHAT_REQUEST = {
    "model": "gpt-4.1",
    "stream": True,
    "stream_options": {"include_usage": True},
    "messages": [{"role": "system", "content": "You are a coding agent."}, {"role": "user", "content": "List the files."}],
    "tools": [
        {"type": "function", "function": {"name": "Bash", "parameters": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}}},
        {"type": "function", "function": {"name": "Read", "parameters": {"type": "object", "properties": {"file_path": {"type": "string"}}}}},
        {"type": "custom", "custom": {"name": "apply_patch", "description": "Edit files with a patch."}},
    ],
}
AGENT_REQUESTS = {
    "anthropic_messages": ("claude-code-tool-turn", "/v1/messages", ("Bash", "Read")),
    "openai_responses": ("codex-classic", "/v1/responses", ("exec_command", "view_image")),
    "gemini": ("gemini-cli-tool-turn", "/v1beta/models/gemini-3.8-flash:streamGenerateContent", ("run_shell_command", "read_file")),
    "openai_chat": (None, "/v1/chat/completions", ("Bash", "Read")),
}
BACKEND_META = {"anthropic_messages": {"signature": "EqQBc2ln"}, "gemini": {"thought_signature": "c2lnbmF0dXJl"}, "openai_responses": {"encrypted_content": "gAAAAB-enc", "id": "rs_up"}, "openai_chat": None}
ARGS_A = {"command": 'ls "a b" && echo é🌍\n'}
ARGS_B = {"file_path": "src/ä.py"}
PATCH = '*** Begin Patch\n*** Add File: made.txt\n+héllo "x"\\n\t🌍\n*** End Patch'

WIRE_STOP = {
    "anthropic_messages": {"end_turn": "end_turn", "tool_use": "tool_use", "max_tokens": "max_tokens"},
    "openai_chat": {"end_turn": "stop", "tool_use": "tool_calls", "max_tokens": "length"},
    "openai_responses": {"end_turn": "completed", "tool_use": "completed", "max_tokens": "incomplete"},
    "gemini": {"end_turn": "STOP", "tool_use": "STOP", "max_tokens": "MAX_TOKENS"},
}
WIRE_ERROR = {
    "anthropic_messages": {"overloaded": "overloaded_error", "rate_limit": "rate_limit_error", "api_error": "api_error", "timeout": "timeout_error"},
    "openai_chat": {"overloaded": "service_unavailable_error", "rate_limit": "requests", "api_error": "server_error", "timeout": "server_error"},
    "openai_responses": {"overloaded": "server_is_overloaded", "rate_limit": "rate_limit_exceeded", "api_error": "server_error", "timeout": "server_error"},
    "gemini": {"overloaded": "UNAVAILABLE", "rate_limit": "RESOURCE_EXHAUSTED", "api_error": "INTERNAL", "timeout": "DEADLINE_EXCEEDED"},
}


def agent_request(agent: str) -> tuple[dict, str]:
    name, path, _ = AGENT_REQUESTS[agent]
    return (json.loads(json.dumps(CHAT_REQUEST)) if name is None else load(name)), path


def start(agent: str, backend: str) -> TranslationContext:
    body, path = agent_request(agent)
    _, _, ctx = translate_request(agent, body, path, backend, "backend-model", created=1760000000)
    assert ctx.stream
    return ctx


def pieces(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def backend_stream(backend: str, events: list) -> bytes:
    encoder = codec(backend).StreamEncoder("backend-model", "up_123")
    return b"".join(encoder.feed(e) for e in events) + encoder.finish()


def run(ctx: TranslationContext, data: bytes, size: int | None = None, seed: int = 0) -> bytes:
    """Feed the backend bytes in `size` chunks (or random ones); return the agent's bytes."""
    translator = StreamTranslator(ctx)
    assert translator.content_type == "text/event-stream"
    if size is None:
        rng = random.Random(seed)
        cuts = sorted({rng.randrange(1, len(data)) for _ in range(12)}) if len(data) > 1 else []
    else:
        cuts = list(range(size, len(data), size))
    out, begin = b"", 0
    for cut in [*cuts, len(data)]:
        out += translator.feed(data[begin:cut])
        begin = cut
    out += translator.finish()
    assert translator.finish() == b"" and translator.feed(b"data: {}\n\n") == b""
    return out


def agent_turn(agent: str, out: bytes) -> Turn:
    parser = SseParser()
    return VALIDATORS[agent](parser.feed(out) + parser.finish())


def translate_stream(agent: str, backend: str, events: list) -> tuple[Turn, bytes]:
    """All splits must give the same agent bytes; returns the validated turn."""
    ctx = start(agent, backend)
    data = backend_stream(backend, events)
    out = run(ctx, data, size=len(data) + 1)
    assert run(start(agent, backend), data, size=1) == out
    for seed in range(3):
        assert run(start(agent, backend), data, seed=seed) == out
    return agent_turn(agent, out), out


def expected_usage(agent: str, backend: str, usage: Usage) -> dict:
    write = usage.cache_write_tokens if backend in ("anthropic_messages", "openai_responses") else 0  # Chat and Gemini have no cache writes
    if agent == "anthropic_messages":
        return {"input_tokens": usage.input_tokens - usage.cache_read_tokens - write, "output_tokens": usage.output_tokens, "cache_creation_input_tokens": write, "cache_read_input_tokens": usage.cache_read_tokens}
    if agent == "openai_chat":
        return {"prompt_tokens": usage.input_tokens, "completion_tokens": usage.output_tokens, "total_tokens": usage.input_tokens + usage.output_tokens, "prompt_tokens_details": {"cached_tokens": usage.cache_read_tokens}}
    if agent == "openai_responses":
        return {"input_tokens": usage.input_tokens, "input_tokens_details": {"cached_tokens": usage.cache_read_tokens, "cache_write_tokens": write}, "output_tokens": usage.output_tokens, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": usage.input_tokens + usage.output_tokens}
    return {"promptTokenCount": usage.input_tokens, "candidatesTokenCount": usage.output_tokens, "totalTokenCount": usage.input_tokens + usage.output_tokens, "cachedContentTokenCount": usage.cache_read_tokens, "thoughtsTokenCount": 0}


USAGE = Usage(input_tokens=5000, output_tokens=120, cache_read_tokens=4000, cache_write_tokens=300)


# -- the scenarios -----------------------------------------------------------------------


@pytest.mark.parametrize("agent,backend", PAIRS, ids=PAIR_IDS)
def test_text_turn(agent: str, backend: str) -> None:
    events = [MessageStart("up_1", "backend-model"), *map(TextDelta, ["Hel", "lo, wö", "rld 🌍\u2028!"]), USAGE, Stop("end_turn")]
    turn, _ = translate_stream(agent, backend, events)
    assert turn.error is None and turn.text == "Hello, wörld 🌍\u2028!"
    assert turn.stop == WIRE_STOP[agent]["end_turn"]
    assert turn.usage == expected_usage(agent, backend, USAGE)


@pytest.mark.parametrize("agent,backend", PAIRS, ids=PAIR_IDS)
def test_thinking_then_text_turn(agent: str, backend: str) -> None:
    meta = BACKEND_META[backend]
    events = [MessageStart("up_1", "m"), ThinkingDelta("Let me "), ThinkingDelta("think."), ThinkingDelta("", meta), TextDelta("Answer: 42"), Usage(50, 30), Stop("end_turn")]
    turn, _ = translate_stream(agent, backend, events)
    assert turn.text == "Answer: 42" and turn.thinking == "Let me think."
    if agent == "openai_chat" or meta is None:
        assert turn.meta == []  # nowhere to carry it: dropped, never forged
        return
    assert len(turn.meta) == 1
    if agent == backend:
        assert turn.meta[0] == next(iter(meta.values()))  # same protocol: untouched
    else:
        opened, text = unseal(turn.meta[0])  # sealed for the way back
        if backend == "openai_responses":
            assert opened.pop("id").startswith("rs_")  # the backend's own reasoning item id
            meta = {k: v for k, v in meta.items() if k != "id"}
        if backend == "gemini":
            meta = {**meta, "next": True}  # the Gemini encoder put it on the text part after the thought
        assert opened == {**meta, "protocol": backend}
        assert text == ("Let me think." if backend == "anthropic_messages" else "")


def parallel_events(names: tuple[str, str]) -> list:
    a, b = json.dumps(ARGS_A, ensure_ascii=False), json.dumps(ARGS_B, ensure_ascii=False)
    events: list = [MessageStart("up_1", "m"), TextDelta("Reading both."), ToolCallStart(0, "call_r1", names[0]), ToolCallStart(1, "call_r2", names[1])]
    for x, y in zip(pieces(a, 3), pieces(b, 2) + [""] * 20, strict=False):  # interleaved, split inside strings and escapes
        events += [ToolCallArgsDelta(0, x), ToolCallArgsDelta(1, y)]
    events += [ToolCallArgsDelta(1, p) for p in pieces(b, 2)[len(pieces(a, 3)) :]]
    return events + [ToolCallEnd(0), ToolCallEnd(1), USAGE, Stop("tool_use")]


@pytest.mark.parametrize("agent,backend", PAIRS, ids=PAIR_IDS)
def test_two_parallel_tool_calls(agent: str, backend: str) -> None:
    names = AGENT_REQUESTS[agent][2]
    turn, _ = translate_stream(agent, backend, parallel_events(names))
    assert turn.text == "Reading both."
    assert [(i, n, json.loads(raw)) for i, n, raw in turn.tools] == [("call_r1", names[0], ARGS_A), ("call_r2", names[1], ARGS_B)]
    assert turn.stop == WIRE_STOP[agent]["tool_use"]
    assert turn.usage == expected_usage(agent, backend, USAGE)


@pytest.mark.parametrize("agent,backend", PAIRS, ids=PAIR_IDS)
def test_official_sdk_reads_the_translated_stream(agent: str, backend: str) -> None:
    names = AGENT_REQUESTS[agent][2]
    events = [MessageStart("up_1", "m"), ThinkingDelta("Plan."), ThinkingDelta("", BACKEND_META[backend]), *parallel_events(names)[1:]]
    _, out = translate_stream(agent, backend, events)
    turn = READERS[agent](out)
    assert turn.text == "Reading both." and turn.thinking == "Plan."
    assert [(n, json.loads(raw)) for _, n, raw in turn.tools] == [(names[0], ARGS_A), (names[1], ARGS_B)]


@pytest.mark.parametrize("agent", ["openai_responses", "openai_chat"])
@pytest.mark.parametrize("backend", PROTOCOLS)
def test_custom_tool_call_from_codex(agent: str, backend: str) -> None:
    if backend == "openai_responses":
        call = [ToolCallStart(0, "call_p", "apply_patch", tool_kind="custom"), *(ToolCallArgsDelta(0, p) for p in pieces(PATCH, 5))]
    else:
        # The backend saw a function with one string parameter and answers with it.
        wrapped = json.dumps({"input": PATCH}, ensure_ascii=False)
        call = [ToolCallStart(0, "call_p", "apply_patch"), *(ToolCallArgsDelta(0, p) for p in pieces(wrapped, 4))]
    events = [MessageStart("up_1", "m"), *call, ToolCallEnd(0), Usage(10, 5), Stop("tool_use")]
    turn, out = translate_stream(agent, backend, events)
    assert [(i, n) for i, n, _ in turn.tools] == [("call_p", "apply_patch")]
    raw = turn.tools[0][2]
    if agent == "openai_responses":
        assert raw == PATCH  # Codex gets a custom_tool_call with the raw patch
        assert b'"type":"custom_tool_call"' in out
    else:
        assert json.loads(raw) == {"input": PATCH}  # Chat has no freeform calls on the wire
    assert turn.stop == WIRE_STOP[agent]["tool_use"]


def test_codex_code_mode_exec_and_namespaced_call_come_back_as_codex_expects() -> None:
    body = load("codex-code-mode")
    _, _, ctx = translate_request("openai_responses", body, "/v1/responses", "anthropic_messages", "m")
    js = 'const r = await tools.exec_command({cmd: "ls"});\ntext(r.output);'
    events = [MessageStart("up", "m"), ToolCallStart(0, "toolu_1", "exec"), ToolCallArgsDelta(0, json.dumps({"input": js})), ToolCallEnd(0),
              ToolCallStart(1, "toolu_2", "clock__sleep"), ToolCallEnd(1), Stop("tool_use")]  # fmt: skip
    out = run(ctx, backend_stream("anthropic_messages", events), size=9)
    turn = agent_turn("openai_responses", out)
    assert turn.tools == [("toolu_1", "exec", js), ("toolu_2", "sleep", "{}")]  # no arguments -> "{}"
    items = [json.loads(line[6:])["item"] for line in out.decode().splitlines() if line.startswith("data: ") and '"response.output_item.done"' in line]
    assert items[0]["type"] == "custom_tool_call" and "namespace" not in items[0]
    assert items[1]["type"] == "function_call" and items[1]["namespace"] == "clock"


@pytest.mark.parametrize("error", ["overloaded", "rate_limit"])
@pytest.mark.parametrize("agent,backend", PAIRS, ids=PAIR_IDS)
def test_upstream_error_mid_stream(agent: str, backend: str, error: str) -> None:
    names = AGENT_REQUESTS[agent][2]
    events = [MessageStart("up_1", "m"), TextDelta("partial"), ToolCallStart(0, "c1", names[0]), ToolCallArgsDelta(0, '{"comm'), StreamError(error, "upstream says no", 529 if error == "overloaded" else 429)]
    turn, _ = translate_stream(agent, backend, events)
    assert turn.error == WIRE_ERROR[agent][error]


@pytest.mark.parametrize("agent,backend", PAIRS, ids=PAIR_IDS)
def test_truncated_upstream_stream_ends_with_an_error_event(agent: str, backend: str) -> None:
    data = backend_stream(backend, [MessageStart("up_1", "m"), TextDelta("All of it"), TextDelta(" and more"), Stop("end_turn")])
    for cut in (len(data) // 3, len(data) - 7):
        turn = agent_turn(agent, run(start(agent, backend), data[:cut], size=5))
        assert turn.error == WIRE_ERROR[agent]["api_error"]


@pytest.mark.parametrize("agent,backend", PAIRS, ids=PAIR_IDS)
def test_transport_failure_mid_stream(agent: str, backend: str) -> None:
    data = backend_stream(backend, parallel_events(AGENT_REQUESTS[agent][2]))
    translator = StreamTranslator(start(agent, backend))
    out = translator.feed(data[: len(data) // 2]) + translator.abort("timeout", "agentwrap: upstream read timed out")
    assert translator.abort("timeout", "again") == b"" and translator.finish() == b""
    assert agent_turn(agent, out).error == WIRE_ERROR[agent]["timeout"]


@pytest.mark.parametrize("agent,backend", PAIRS, ids=PAIR_IDS)
def test_garbage_from_upstream_becomes_an_error_event(agent: str, backend: str) -> None:
    out = run(start(agent, backend), b"data: {not json\n\n" + backend_stream(backend, [TextDelta("x"), Stop("end_turn")]), size=3)
    assert agent_turn(agent, out).error == WIRE_ERROR[agent]["api_error"]


@pytest.mark.parametrize("agent,backend", PAIRS, ids=PAIR_IDS)
def test_max_tokens_stop(agent: str, backend: str) -> None:
    turn, _ = translate_stream(agent, backend, [MessageStart("up_1", "m"), TextDelta("trunc"), Stop("max_tokens"), Usage(10, 5)])
    assert turn.text == "trunc" and turn.stop == WIRE_STOP[agent]["max_tokens"]


def test_agent_sees_the_model_it_asked_for_and_unique_ids() -> None:
    ctx = start("anthropic_messages", "openai_chat")
    out = run(ctx, backend_stream("openai_chat", [MessageStart("x", "m"), TextDelta("hi"), Stop("end_turn")]))
    message = json.loads(out.split(b"\n")[1][6:])["message"]
    assert message["model"] == "claude-opus-5-5" and message["id"] == "msg_up_123"


# -- thinking signatures survive the agent's round trip -------------------------------------------


def test_gemini_function_call_signature_survives_claude_code() -> None:
    body, path = agent_request("anthropic_messages")
    _, _, ctx = translate_request("anthropic_messages", body, path, "gemini", "gemini-3-pro")
    events = [MessageStart("r", "m"), ThinkingDelta("plan"), ToolCallStart(0, "fc_1", "Bash", provider_meta={"thought_signature": "R2VtaW5pU2ln"}), ToolCallArgsDelta(0, '{"command":"ls"}'), ToolCallEnd(0), Stop("tool_use")]
    turn = agent_turn("anthropic_messages", run(ctx, backend_stream("gemini", events), size=11))
    assert turn.tools == [("fc_1", "Bash", '{"command":"ls"}')] and turn.meta  # an empty thinking block carries it
    body["messages"] += [
        {"role": "assistant", "content": [{"type": "thinking", "thinking": turn.thinking, "signature": turn.meta[-1]}, {"type": "tool_use", "id": "fc_1", "name": "Bash", "input": {"command": "ls"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "fc_1", "content": "a.py"}]},
    ]
    _, nxt, _ = translate_request("anthropic_messages", body, path, "gemini", "gemini-3-pro")
    call = nxt["contents"][-2]["parts"][-1]
    assert call["functionCall"]["id"] == "fc_1" and call["thoughtSignature"] == "R2VtaW5pU2ln"
    _, other, _ = translate_request("anthropic_messages", body, path, "openai_chat", "m")
    assert "R2VtaW5pU2ln" not in json.dumps(other)


def test_anthropic_thinking_survives_codex() -> None:
    body, path = agent_request("openai_responses")
    _, _, ctx = translate_request("openai_responses", body, path, "anthropic_messages", "claude-opus-4-5")
    events = [MessageStart("msg_9", "m"), ThinkingDelta("Use "), ThinkingDelta("ls."), ThinkingDelta("", {"signature": "EqQBanthropic"}),
              ToolCallStart(0, "toolu_9", "exec_command"), ToolCallArgsDelta(0, '{"cmd":"ls"}'), ToolCallEnd(0), Stop("tool_use")]  # fmt: skip
    out = run(ctx, backend_stream("anthropic_messages", events), size=13)
    completed = json.loads(out.decode().rstrip().rsplit("\n", 1)[-1][6:])
    assert completed["type"] == "response.completed"
    body["input"] += completed["response"]["output"]  # Codex echoes the output items
    body["input"].append({"type": "function_call_output", "call_id": "toolu_9", "output": "a.py"})
    _, nxt, _ = translate_request("openai_responses", body, path, "anthropic_messages", "claude-opus-4-5")
    assistant = nxt["messages"][-2]
    assert assistant["content"][0] == {"type": "thinking", "thinking": "Use ls.", "signature": "EqQBanthropic"}
    assert nxt["thinking"]["type"] == "enabled"  # the tool turn is signed, so thinking stays on


def test_anthropic_thinking_survives_gemini_cli() -> None:
    body, path = agent_request("gemini")
    _, _, ctx = translate_request("gemini", body, path, "anthropic_messages", "claude-opus-4-5")
    events = [MessageStart("msg_9", "m"), ThinkingDelta("Read it."), ThinkingDelta("", {"signature": "EqQBgem"}),
              ToolCallStart(0, "toolu_7", "read_file"), ToolCallArgsDelta(0, '{"file_path":"a"}'), ToolCallEnd(0), Stop("tool_use")]  # fmt: skip
    out = run(ctx, backend_stream("anthropic_messages", events), size=17)
    parser = SseParser()
    parts = [p for e in parser.feed(out) + parser.finish() for p in json.loads(e.data)["candidates"][0]["content"]["parts"]]
    visible = [p for p in parts if not p.get("thought")]  # Gemini CLI drops thought parts from history
    body["contents"] += [{"role": "model", "parts": visible}, {"role": "user", "parts": [{"functionResponse": {"id": "toolu_7", "name": "read_file", "response": {"output": "A"}}}]}]
    _, nxt, _ = translate_request("gemini", body, path, "anthropic_messages", "claude-opus-4-5")
    assert nxt["messages"][-2]["content"][0] == {"type": "thinking", "thinking": "Read it.", "signature": "EqQBgem"}


# -- whole (non-streaming) responses and errors -----------------------------------------------------

RESPONSE_MODELS = {"anthropic_messages": AnthropicMessage, "openai_chat": ChatCompletion, "openai_responses": Response, "gemini": genai_types.GenerateContentResponse}


def non_streaming(agent: str, backend: str) -> TranslationContext:
    body, path = agent_request(agent)
    if agent == "gemini":
        path = path.replace("streamGenerateContent", "generateContent")
    else:
        body["stream"] = False
    _, _, ctx = translate_request(agent, body, path, backend, "backend-model", created=1)
    assert not ctx.stream
    return ctx


def backend_json(backend: str, events: list) -> bytes:
    module = codec(backend)
    return json.dumps(module.encode_response(events, "backend-model", "up_5")).encode()


@pytest.mark.parametrize("agent,backend", PAIRS, ids=PAIR_IDS)
def test_whole_response(agent: str, backend: str) -> None:
    names = AGENT_REQUESTS[agent][2]
    events = [MessageStart("up_5", "m"), ThinkingDelta("hm"), ThinkingDelta("", BACKEND_META[backend]), TextDelta("Both."), ToolCallStart(0, "call_1", names[0]), ToolCallArgsDelta(0, json.dumps(ARGS_A)), ToolCallEnd(0), USAGE, Stop("tool_use")]
    status, body, headers = translate_response(non_streaming(agent, backend), 200, backend_json(backend, events))
    assert status == 200 and (b"content-type", b"application/json") in headers
    data = json.loads(body)
    RESPONSE_MODELS[agent].model_validate(data)
    assert whole_turn(agent, data) == ("Both.", [(names[0], ARGS_A)])


def whole_turn(agent: str, data: dict) -> tuple[str, list]:
    """(text, [(tool name, arguments)]) of a whole response in the agent's protocol."""
    if agent == "anthropic_messages":
        text = "".join(b["text"] for b in data["content"] if b["type"] == "text")
        return text, [(b["name"], b["input"]) for b in data["content"] if b["type"] == "tool_use"]
    if agent == "openai_chat":
        message = data["choices"][0]["message"]
        return message["content"], [(c["function"]["name"], json.loads(c["function"]["arguments"])) for c in message["tool_calls"]]
    if agent == "openai_responses":
        text = "".join(c["text"] for i in data["output"] if i["type"] == "message" for c in i["content"])
        return text, [(i["name"], json.loads(i["arguments"])) for i in data["output"] if i["type"] == "function_call"]
    parts = data["candidates"][0]["content"]["parts"]
    text = "".join(p.get("text", "") for p in parts if not p.get("thought") and "functionCall" not in p)
    return text, [(p["functionCall"]["name"], p["functionCall"]["args"]) for p in parts if "functionCall" in p]


@pytest.mark.parametrize("agent,backend", PAIRS, ids=PAIR_IDS)
def test_whole_response_to_a_streaming_agent_is_rendered_as_its_stream(agent: str, backend: str) -> None:
    events = [MessageStart("up_5", "m"), TextDelta("Whole."), Usage(3, 2), Stop("end_turn")]
    status, body, headers = translate_response(start(agent, backend), 200, backend_json(backend, events))
    assert status == 200 and (b"content-type", b"text/event-stream") in headers
    turn = agent_turn(agent, body)
    assert turn.text == "Whole." and turn.stop == WIRE_STOP[agent]["end_turn"]


AGENT_STATUS = {"anthropic_messages": {"rate_limit": 429, "overloaded": 529, "authentication": 401, "invalid_request": 400}}


@pytest.mark.parametrize("error", ["rate_limit", "overloaded", "authentication", "invalid_request"])
@pytest.mark.parametrize("agent,backend", PAIRS, ids=PAIR_IDS)
def test_error_response_in_the_agents_shape(agent: str, backend: str, error: str) -> None:
    status_in, body_in = codec(backend).encode_error(error, "upstream refused")
    headers = [(b"retry-after", b"7")] if error == "rate_limit" else []
    status, body, out_headers = translate_response(start(agent, backend), status_in, body_in, headers)
    expected_status, _ = codec(agent).encode_error(error, "x")
    assert status == AGENT_STATUS.get(agent, {}).get(error, expected_status)
    data = json.loads(body)
    if agent == "anthropic_messages":
        assert data["type"] == "error" and data["error"]["type"] == f"{error}_error" or data["error"]["type"] == "invalid_request_error"
    elif agent == "gemini":
        assert data["error"]["status"] == {"rate_limit": "RESOURCE_EXHAUSTED", "overloaded": "UNAVAILABLE", "authentication": "UNAUTHENTICATED", "invalid_request": "INVALID_ARGUMENT"}[error]
    else:
        assert "upstream refused" in data["error"]["message"]
    if error == "rate_limit":
        assert (b"retry-after", b"7") in out_headers
        if agent == "openai_responses":
            assert "try again in 7s" in data["error"]["message"]  # Codex parses the wait from the text
        if agent == "gemini":
            assert data["error"]["details"][0]["retryDelay"] == "7s"  # Gemini CLI reads RetryInfo


def test_gemini_retry_info_becomes_retry_after() -> None:
    body = json.dumps({"error": {"code": 429, "message": "Quota exceeded", "status": "RESOURCE_EXHAUSTED", "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "12s"}]}}).encode()
    status, out, headers = translate_response(start("anthropic_messages", "gemini"), 429, body)
    assert status == 429 and (b"retry-after", b"12") in headers
    assert json.loads(out)["error"]["type"] == "rate_limit_error"


def test_non_json_success_body_is_an_error_for_the_agent() -> None:
    status, body, _ = translate_response(non_streaming("openai_responses", "openai_chat"), 200, b"<html>")
    assert status == 502 and json.loads(body)["error"]["message"]


def test_error_inside_a_200_body_keeps_its_type() -> None:
    status, body, _ = translate_response(non_streaming("anthropic_messages", "openai_responses"), 200, json.dumps({"id": "r", "object": "response", "status": "failed", "error": {"code": "rate_limit_exceeded", "message": "slow"}}).encode())
    assert json.loads(body)["error"]["type"] == "rate_limit_error" and status == 429


@pytest.mark.parametrize("agent,backend", PAIRS, ids=PAIR_IDS)
def test_every_fixture_stream_translates_to_a_valid_agent_stream(agent: str, backend: str) -> None:
    for path in sorted((STREAMS / backend).glob("*.sse")):
        data = path.read_bytes()
        turn = agent_turn(agent, run(start(agent, backend), data, size=13))
        assert (turn.error is None) != (turn.stop is None), path.name


# -- whatever the upstream sends, the agent gets a valid stream ----------------------------------


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(all_fixtures()), st.sampled_from(PROTOCOLS), st.randoms(use_true_random=False), _json, st.integers(1, 40))
def test_mutated_upstream_streams_still_give_the_agent_a_valid_stream(quirk: tuple[str, str], agent: str, rng: random.Random, replacement: Any, size: int) -> None:
    backend, name = quirk
    events = parse((STREAMS / backend / f"{name}.sse").read_bytes())
    i = rng.choice([n for n, e in enumerate(events) if e.data != "[DONE]"])
    events[i] = SseEvent(events[i].event, json.dumps(_mutate(json.loads(events[i].data), rng, replacement)))
    data = b"".join((f"event: {e.event}\n" if e.event else "").encode() + f"data: {e.data}\n\n".encode() for e in events)
    turn = VALIDATORS[agent](_parse_all(run(start(agent, backend), data, size=size)), strict_json=False)
    assert (turn.error is None) != (turn.stop is None)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(PAIRS), st.binary(max_size=200))
def test_arbitrary_upstream_bytes_still_give_the_agent_a_valid_stream(pair: tuple[str, str], data: bytes) -> None:
    agent, backend = pair
    turn = VALIDATORS[agent](_parse_all(run(start(agent, backend), data, size=7)), strict_json=False)
    assert (turn.error is None) != (turn.stop is None)


def _parse_all(data: bytes) -> list:
    parser = SseParser()
    return parser.feed(data) + parser.finish()


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(PAIRS), st.sampled_from([200, 400, 429, 500, 529]), _json, st.booleans())
def test_any_whole_upstream_body_gives_the_agent_a_well_formed_answer(pair: tuple[str, str], status: int, value: Any, stream: bool) -> None:
    agent, backend = pair
    ctx = start(agent, backend) if stream else non_streaming(agent, backend)
    code, body, headers = translate_response(ctx, status, json.dumps(value).encode())
    if dict(headers)[b"content-type"] == b"text/event-stream":
        VALIDATORS[agent](_parse_all(body), strict_json=False)
    else:
        assert isinstance(json.loads(body), dict)
        assert code >= 400 if status >= 400 else 200 <= code < 600  # an upstream error never becomes a success


def test_tool_call_without_a_name_is_an_upstream_fault() -> None:
    body = json.dumps({"id": "msg_1", "type": "message", "content": [{"type": "tool_use", "id": "t", "input": {}}], "stop_reason": "tool_use"}).encode()
    status, out, _ = translate_response(non_streaming("openai_responses", "anthropic_messages"), 200, body)
    assert status == 502 and "without a name" in json.loads(out)["error"]["message"]
