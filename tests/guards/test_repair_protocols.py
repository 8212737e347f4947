"""The corpus through each protocol on the backend side and each on the agent side.

A backend stream is built with the backend protocol's `StreamEncoder` from neutral
events, parsed and decoded with its `StreamDecoder`, run through `ToolRepair`,
encoded for the agent protocol and checked with tests/support/grammar.py's validators:
the tool calls the agent gets have declared names and schema-valid JSON
arguments, and the stop reason says tool use where a text call was extracted.
"""

from __future__ import annotations

import json

import pytest

from agentwrap.guards.repair import ToolRepair, validate
from agentwrap.protocols.neutral import NeutralEvent
from agentwrap.protocols.sse import SseParser
from agentwrap.protocols.codec import codec
from tests.support.grammar import VALIDATORS, Turn
from tests.guards.helpers import call_stream, text_stream
from tests.guards.repair_corpus import CHANNEL, NEAR_MISSES, SCHEMAS, TEXTS, TOOLS

PROTOCOLS = ["anthropic_messages", "openai_chat", "openai_responses", "gemini"]
TOOL_STOP = {"anthropic_messages": "tool_use", "openai_chat": "tool_calls", "openai_responses": "completed", "gemini": "STOP"}
TEXT_STOP = {"anthropic_messages": "end_turn", "openai_chat": "stop", "openai_responses": "completed", "gemini": "STOP"}


def _encoder(protocol: str, response_id: str):
    module = codec(protocol)
    if protocol in ("openai_chat", "openai_responses"):
        return module.StreamEncoder("model-x", response_id, created=1)
    return module.StreamEncoder("model-x", response_id)


def _encode(protocol: str, events: list[NeutralEvent]) -> bytes:
    encoder = _encoder(protocol, {"anthropic_messages": "msg_1", "openai_chat": "chatcmpl-1", "openai_responses": "resp_1", "gemini": "r1"}[protocol])
    return b"".join(encoder.feed(e) for e in events) + encoder.finish()


def through(backend: str, agent: str, events: list[NeutralEvent]) -> tuple[Turn, ToolRepair, bytes]:
    """Backend wire -> neutral -> ToolRepair -> agent wire; the agent's turn (grammar-checked)."""
    upstream = _encode(backend, events)
    parser = SseParser()
    decoder = codec(backend).StreamDecoder("h1")
    filt = ToolRepair(TOOLS, agent)
    neutral: list[NeutralEvent] = []
    for sse in parser.feed(upstream) + parser.finish():
        for event in decoder.feed(sse):
            neutral += filt.feed(event)
    for event in decoder.finish():
        neutral += filt.feed(event)
    neutral += filt.finish()
    wire = _encode(agent, neutral)
    parser = SseParser()
    sse_events = parser.feed(wire) + parser.finish()
    # Arguments the agent gets are JSON objects, except a call we could not repair.
    strict = not any(n.action == "failed" for n in filt.notes)
    return VALIDATORS[agent](sse_events, strict_json=strict), filt, upstream


def _crosses_gemini(raw: str) -> bool:
    """Whether arguments keep their meaning on a Gemini wire (only JSON objects do)."""
    try:
        return isinstance(json.loads(raw), dict)
    except ValueError:
        return False


def _check_calls(turn: Turn) -> None:
    for _, name, args in turn.tools:
        name = name if name in SCHEMAS else name.split("__", 1)[-1]  # a Codex namespace
        assert name in SCHEMAS, f"{name} is not declared"
        assert validate(json.loads(args or "{}"), SCHEMAS[name]) is None


@pytest.mark.parametrize("agent", PROTOCOLS)
@pytest.mark.parametrize("backend", PROTOCOLS)
@pytest.mark.parametrize(("case", "name", "raw", "expected"), CHANNEL, ids=[c[0] for c in CHANNEL])
def test_channel_call_across_protocols(case: str, name: str, raw: str, expected: object, backend: str, agent: str) -> None:
    turn, filt, _ = through(backend, agent, call_stream(name, raw, "small"))
    assert turn.stop == TOOL_STOP[agent] and len(turn.tools) == 1
    if backend == "gemini" and not _crosses_gemini(raw):
        assert [n.action for n in filt.notes] == ["failed"]  # the Gemini wire itself made it {"_raw": ...}
        return
    if expected == "failed":
        assert [n.action for n in filt.notes] == ["failed"]
        assert turn.tools[0][1] == name
        return
    _check_calls(turn)
    if expected == "valid":
        assert filt.notes == []
        assert json.loads(turn.tools[0][2]) == json.loads(raw)
    else:
        _, fixed, value = expected  # type: ignore[misc]
        assert [n.action for n in filt.notes] == ["repaired"]
        assert turn.tools[0][1] == fixed and json.loads(turn.tools[0][2]) == value


@pytest.mark.parametrize("agent", PROTOCOLS)
@pytest.mark.parametrize("backend", PROTOCOLS)
@pytest.mark.parametrize(("case", "text", "visible", "calls"), TEXTS, ids=[c[0] for c in TEXTS])
def test_text_call_across_protocols(case: str, text: str, visible: str, calls: list, backend: str, agent: str) -> None:
    turn, filt, _ = through(backend, agent, text_stream(text, "small"))
    _check_calls(turn)
    assert [(name, json.loads(args)) for _, name, args in turn.tools] == calls
    assert turn.text == visible
    assert turn.stop == TOOL_STOP[agent]
    assert len({call_id for call_id, _, _ in turn.tools}) == len(calls)


@pytest.mark.parametrize("agent", PROTOCOLS)
@pytest.mark.parametrize("backend", PROTOCOLS)
@pytest.mark.parametrize(("case", "text"), NEAR_MISSES, ids=[c[0] for c in NEAR_MISSES])
def test_near_miss_across_protocols(case: str, text: str, backend: str, agent: str) -> None:
    turn, filt, _ = through(backend, agent, text_stream(text, "small"))
    assert turn.text == text and turn.tools == [] and filt.notes == []
    assert turn.stop == TEXT_STOP[agent]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_pass_through_of_valid_stream_is_event_identical(protocol: str) -> None:
    """Same protocol on both sides: a stream the guard leaves alone re-encodes to the same bytes."""
    events = text_stream(NEAR_MISSES[0][1], "small") + call_stream("Bash", '{"command":"ls"}', "small")[2:5]
    upstream = _encode(protocol, events)
    parser = SseParser()
    decoder = codec(protocol).StreamDecoder("h1")
    filt = ToolRepair(TOOLS, protocol)
    before: list[NeutralEvent] = []
    after: list[NeutralEvent] = []
    for sse in parser.feed(upstream) + parser.finish():
        for event in decoder.feed(sse):
            before.append(event)
            after += filt.feed(event)
    for event in decoder.finish():
        before.append(event)
        after += filt.feed(event)
    after += filt.finish()
    assert after == before
