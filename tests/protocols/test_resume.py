"""Resumed encoders (resume.py): a stream decoded up to any event boundary, then
continued by `StreamEncoder.resume(decoder.state())`, is one valid stream.

For every protocol, recorded stream and encoder-made stream, and every SSE
event boundary k: the first k events as they came, then what a resumed encoder
makes of more content (a notice, a tool call) and a stop, validate; nothing
the agent already has is opened twice, and new blocks take the next indices.
"""

from __future__ import annotations

import json

import pytest

from agentwrap.protocols.codec import codec
from agentwrap.protocols.neutral import Stop, TextDelta, ToolCallArgsDelta, ToolCallEnd, ToolCallStart, Usage
from tests.protocols.support import PROTOCOLS, TOLERATE, parse, streams, validate

CASES = [(protocol, name, data) for protocol in PROTOCOLS for name, data in streams(protocol)]


def events_with_bytes(data: bytes) -> list[tuple[object, bytes]]:
    """Each SSE event with its own bytes (blank-line framed, LF or CRLF)."""
    sep = b"\r\n\r\n" if b"\r\n" in data else b"\n\n"
    pieces = [p + sep for p in data.split(sep) if p.strip()]
    out = []
    for piece in pieces:
        parsed = parse(piece)
        if parsed:
            out.append((parsed[0], piece))
    return out


def closing(protocol: str, state, more: list) -> bytes:
    encoder = codec(protocol).StreamEncoder.resume(state)
    return b"".join(encoder.feed(e) for e in more) + encoder.finish()


MORE = {
    "nothing": [],
    "notice": [TextDelta("\n\n[notice]"), Stop("end_turn")],
    "a_call": [TextDelta("one more"), ToolCallStart(7, "call_z", "Read"), ToolCallArgsDelta(7, '{"file_path":"z"}'), ToolCallEnd(7),
               Stop("tool_use"), Usage(1, 2)],
}


@pytest.mark.parametrize(("protocol", "name", "data"), CASES, ids=[c[1] for c in CASES])
def test_decode_a_prefix_resume_and_finish(protocol: str, name: str, data: bytes) -> None:
    events = events_with_bytes(data)
    for k in range(len(events) + 1):
        decoder = codec(protocol).StreamDecoder("h", observe=True)
        try:
            for sse, _ in events[:k]:
                decoder.feed(sse)
        except Exception:
            break  # a prefix the decoder refuses (the Ollama quirk's reused index): nothing to resume
        state = decoder.state()
        state.response_id = state.response_id or "resp_x"
        state.model = state.model or "m"
        prefix = b"".join(raw for _, raw in events[:k])
        for what, more in MORE.items():
            if k == 0 and name in ("gemini/malformed_function_call", "gemini/prompt_blocked") and what == "nothing":
                continue
            out = prefix + closing(protocol, state, more)
            if k < len(events) or what == "nothing":
                if state.ended:
                    assert out == prefix  # the stream had ended: a resumed encoder adds nothing
                    continue
                turn = validate(protocol, out, name)
                if what != "nothing" and state.stop is None:
                    assert turn.text.endswith("[notice]" if what == "notice" else "one more") or turn.error
                    if what == "a_call":
                        assert (turn.tools[-1][1], json.loads(turn.tools[-1][2])) == ("Read", {"file_path": "z"}) or turn.error


def test_resumed_anthropic_blocks_take_the_next_index() -> None:
    events = events_with_bytes(streams("anthropic_messages")[-1][1])  # the generated two_calls answer
    decoder = codec("anthropic_messages").StreamDecoder(observe=True)
    for sse, _ in events[:-2]:  # up to message_delta, not included
        decoder.feed(sse)
    state = decoder.state()
    assert state.started and state.open is None and state.next_index == 3 and state.stop is None
    out = closing("anthropic_messages", state, MORE["a_call"])
    starts = [e for e in parse(out) if e.event == "content_block_start"]
    assert [s.data.count('"index":3') + s.data.count('"index":4') for s in starts] == [1, 1]
    assert b"message_start" not in out


def test_a_responses_stream_resumed_lists_the_items_the_agent_has() -> None:
    name, data = [s for s in streams("openai_responses") if s[0].endswith("generated_thinking_text_tool")][0]
    events = events_with_bytes(data)
    cut = next(n for n, (sse, _) in enumerate(events) if sse.event == "response.output_text.delta")
    decoder = codec("openai_responses").StreamDecoder(observe=True)
    for sse, _ in events[: cut + 1]:
        decoder.feed(sse)
    state = decoder.state()
    assert state.open is not None and state.open.kind == "text" and len(state.done_items) == 1
    prefix = b"".join(raw for _, raw in events[: cut + 1])
    turn = validate("openai_responses", prefix + closing("openai_responses", state, MORE["notice"]), strict_json=True)
    assert turn.thinking == "let me see" and turn.text.endswith("[notice]")
    assert state.sequence_number == cut


def test_the_state_is_a_copy() -> None:
    data = streams("openai_responses")[-3][1]
    decoder = codec("openai_responses").StreamDecoder(observe=True)
    events = events_with_bytes(data)
    for sse, _ in events[:6]:
        decoder.feed(sse)
    state = decoder.state()
    before = (state.open.parts[:] if state.open else None, len(state.done_items))
    for sse, _ in events[6:]:
        decoder.feed(sse)
    assert (state.open.parts if state.open else None, len(state.done_items)) == before
