"""The pass-through tap (protocols/tap.py): original bytes out unless a filter changes something.

- Filters that pass everything (a no-op, the loop guard on loop-free text,
  tool repair on valid calls) leave every recorded and generated stream byte
  for byte as it came, for any split of the input; a stream the upstream left
  unfinished gets its proper ending.
- A hold released as it came is byte-identical; a rewrite is re-encoded by the
  resumed encoder and validates.
- Text events take the lane (never decoded), and do so with filters on.
- Events the neutral model does not know pass through untouched.
- Malformed upstream data ends in the protocol's error event and a valid end.
"""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentwrap.guards import LoopGuard
from agentwrap.guards.repair import ToolRepair
from agentwrap.protocols.neutral import MessageStart, Stop, TextDelta, ToolCallArgsDelta, ToolCallEnd, ToolCallStart, Usage
from agentwrap.protocols.neutral.summary import ToolSpec
from agentwrap.protocols.tap import StreamTap
from tests.protocols.support import (
    PROTOCOLS,
    Boom,
    HoldAll,
    NoOp,
    Rename,
    encode,
    event_cuts,
    fixtures,
    parse,
    run_tap,
    splits,
    streams,
    validate,
)

ANY = {"type": "object"}
TOOLS = (
    ToolSpec("Bash", parameters={"type": "object", "properties": {"command": {"type": "string"}}}),
    ToolSpec("Read", parameters={"type": "object", "properties": {"file_path": {"type": "string"}}}),
    ToolSpec("read_file", parameters=ANY),
    ToolSpec("run_shell_command", parameters=ANY),
    ToolSpec("exec_command", parameters=ANY),
    ToolSpec("clock__sleep", parameters=ANY),
    ToolSpec("apply_patch", tool_kind="custom"),
)
ALL_STREAMS = [(protocol, name, data) for protocol in PROTOCOLS for name, data in streams(protocol)]
IDS = [name for _, name, _ in ALL_STREAMS]


def passing_filters(protocol: str) -> list:
    return [NoOp(), LoopGuard(), ToolRepair(TOOLS, protocol)]


def words(n: int) -> list[str]:
    return [f"w{i} é\"\\\n{chr(0x1F600)} " if i % 7 == 0 else f"w{i} " for i in range(n)]


def long_text(protocol: str, n: int = 300) -> tuple[bytes, str]:
    text = words(n)
    events = [MessageStart("up_1", "m"), Usage(10, 0), *(TextDelta(t) for t in text), Stop("end_turn"), Usage(0, n)]
    return encode(protocol, events), "".join(text)


# -- byte for byte -------------------------------------------------------------------------


@pytest.mark.parametrize(("protocol", "name", "data"), ALL_STREAMS, ids=IDS)
def test_passing_filters_keep_every_stream_byte_for_byte(protocol: str, name: str, data: bytes) -> None:
    bare, _ = run_tap(protocol, data, [], [])
    assert bare.startswith(data)
    rng = random.Random(name)
    for cuts in ([], list(range(1, len(data))), splits(data, rng, 10), splits(data, rng, 40), event_cuts(data)):
        out, tap = run_tap(protocol, data, cuts, passing_filters(protocol))
        assert out == bare, (name, cuts[:5])
        assert not [n for n in tap.notes if n.action in ("error", "repaired", "cut")]
    if bare != data:  # the upstream left it unfinished: the tap added the proper ending
        validate(protocol, bare, name)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(ALL_STREAMS), st.lists(st.floats(0, 1), max_size=30))
def test_any_split_gives_the_same_bytes(case: tuple[str, str, bytes], points: list[float]) -> None:
    protocol, name, data = case
    cuts = sorted({int(p * (len(data) - 1)) + 1 for p in points}) if len(data) > 1 else []
    whole, _ = run_tap(protocol, data, [], passing_filters(protocol))
    out, _ = run_tap(protocol, data, cuts, passing_filters(protocol))
    assert out == whole


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_long_text_takes_the_lane_with_the_guards_on(protocol: str) -> None:
    data, text = long_text(protocol)
    for cuts in ([], list(range(97, len(data), 97)), splits(data, random.Random(5), 30), event_cuts(data)):
        out, tap = run_tap(protocol, data, cuts, passing_filters(protocol))
        assert out == data
        assert tap.lane_events > 250, tap.lane_events
        assert validate(protocol, out, strict_json=True).text == text


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_crlf_streams_are_framed_and_kept(protocol: str) -> None:
    data = long_text(protocol, 60)[0].replace(b"\n", b"\r\n")
    out, tap = run_tap(protocol, data, list(range(50, len(data), 50)), [LoopGuard()])
    assert out == data
    assert tap.lane_events > 40


# -- holds and rewrites -----------------------------------------------------------------------


@pytest.mark.parametrize(("protocol", "name", "data"), ALL_STREAMS, ids=IDS)
def test_a_hold_released_as_it_came_is_byte_identical(protocol: str, name: str, data: bytes) -> None:
    bare, _ = run_tap(protocol, data, [], [])
    for release_at in (-1, 2, 5):
        for cuts in ([], splits(data, random.Random(release_at), 12), event_cuts(data)):
            out, _ = run_tap(protocol, data, cuts, [HoldAll(release_at), LoopGuard()])
            assert out == bare


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_renamed_tool_call_is_re_encoded_and_validates(protocol: str) -> None:
    events = [MessageStart("up_1", "m"), Usage(10, 0), *(TextDelta(w) for w in words(20)), ToolCallStart(0, "call_1", "Bash"),
              ToolCallArgsDelta(0, '{"command":'), ToolCallArgsDelta(0, '"ls"}'), ToolCallEnd(0), ToolCallStart(1, "call_2", "Read"),
              ToolCallArgsDelta(1, '{"file_path":"a"}'), ToolCallEnd(1), Stop("tool_use"), Usage(0, 30)]
    data = encode(protocol, events)
    expected = validate(protocol, data, strict_json=True)
    for cuts in ([], list(range(1, len(data), 7)), splits(data, random.Random(2), 20), event_cuts(data)):
        rename = Rename("Bash", "Shell")
        out, tap = run_tap(protocol, data, cuts, [rename, LoopGuard()])
        turn = validate(protocol, out, strict_json=True)
        assert [name for _, name, _ in turn.tools] == ["Shell", "Read"]
        assert [args for _, _, args in turn.tools] == [args for _, _, args in expected.tools]
        assert turn.text == expected.text and turn.stop == expected.stop
        assert out[: out.index(b"Shell") - 200] == data[: out.index(b"Shell") - 200]  # the text before went out as it came
        assert [n.action for n in tap.notes] == ["renamed"]


def test_after_a_rewrite_later_blocks_take_the_next_indices() -> None:
    """Tool repair extracts a call written into the text: the call is a block of its own, so every
    later block's index moves up by one, and the closing events follow the encoder's count."""
    text = 'Let me look.\n<tool_call>\n{"name": "Read", "arguments": {"file_path": "a.py"}}\n</tool_call>\n'
    events = [MessageStart("up_1", "m"), Usage(10, 0), TextDelta(text), ToolCallStart(0, "call_9", "Bash"),
              ToolCallArgsDelta(0, '{"command":"ls"}'), ToolCallEnd(0), Stop("tool_use"), Usage(0, 30)]
    data = encode("anthropic_messages", events)
    out, tap = run_tap("anthropic_messages", data, list(range(1, len(data), 11)), [LoopGuard(), ToolRepair(TOOLS, "anthropic_messages")])
    turn = validate("anthropic_messages", out, strict_json=True)
    assert [name for _, name, _ in turn.tools] == ["Read", "Bash"]
    assert "extracted" in [n.action for n in tap.notes]


# -- what the neutral model does not know ---------------------------------------------------------


def test_unknown_anthropic_events_and_blocks_pass_untouched() -> None:
    data = encode("anthropic_messages", [MessageStart("up_1", "m"), Usage(3, 0), *(TextDelta(w) for w in words(10)), Stop("end_turn")])
    ping = b'event: ping\ndata: {"type":"ping"}\n\n'
    server_tool = (b'event: content_block_start\ndata: {"type":"content_block_start","index":1,"content_block":{"type":"server_tool_use","id":"srvtoolu_1","name":"web_search","input":{}}}\n\n'
                   b'event: content_block_delta\ndata: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\\"query\\":\\"x\\"}"}}\n\n'
                   b'event: content_block_stop\ndata: {"type":"content_block_stop","index":1}\n\n'
                   b'event: future_event\ndata: {"type":"future_event","what":1}\n\n')
    cut = data.index(b"event: message_delta")
    text_end = data.rindex(b"event: content_block_stop", 0, cut)
    stream = data[:text_end] + ping + data[text_end:cut] + server_tool + data[cut:]
    for filters in ([], [LoopGuard(), ToolRepair(TOOLS, "anthropic_messages")], [HoldAll(3)]):
        out, _ = run_tap("anthropic_messages", stream, list(range(1, len(stream), 13)), filters)
        assert out == stream


# -- malformed upstream data ---------------------------------------------------------------------


def _malformed(protocol: str) -> dict[str, bytes]:
    data = long_text(protocol, 12)[0]
    middle = data.index(b"data: ", len(data) // 2)
    events = data[:middle]
    return {
        "invalid_json": events + b"data: {not json\n\n" + data[middle:],
        "garbage_bytes": events + b"data: \xff\xfe\xfd garbage\n\n" + data[middle:],
        "ends_without_final_event": events,
        "ends_mid_event": events + data[middle : middle + 30],
    }


ERRORS = {"anthropic_messages": "api_error", "openai_chat": "server_error", "openai_responses": "server_error", "gemini": "INTERNAL"}


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("case", ["invalid_json", "garbage_bytes", "ends_without_final_event", "ends_mid_event"])
def test_malformed_upstream_data_ends_in_the_error_event_and_a_valid_end(protocol: str, case: str) -> None:
    data = _malformed(protocol)[case]
    for filters in ([], [LoopGuard(), ToolRepair(TOOLS, protocol)]):
        for cuts in ([], list(range(1, len(data), 17))):
            out, tap = run_tap(protocol, data, cuts, filters)
            assert tap.done
            turn = validate(protocol, out)
            assert turn.error == ERRORS[protocol], (case, turn)
            assert tap.feed(b"data: more\n\n") == b"" and tap.finish() == b""


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_transport_failure_ends_in_the_error_event(protocol: str) -> None:
    data = long_text(protocol, 12)[0]
    half = data[: len(data) // 2]
    for filters in ([], [LoopGuard()]):
        tap = StreamTap(protocol, filters)
        out = tap.feed(half) + tap.abort("timeout", "agentwrap: upstream timed out")
        assert tap.done and tap.finish() == b""
        assert out.startswith(half[: half.rindex(b"\n\n")])
        assert validate(protocol, out).error is not None


def test_an_oversized_event_is_refused() -> None:
    tap = StreamTap("openai_chat", [LoopGuard()], max_event_bytes=1000)
    out = tap.feed(b'data: {"id":"x","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}\n\n')
    for _ in range(20):
        out += tap.feed(b"x" * 100)
    assert tap.done
    assert json.loads(parse(out)[-1].data)["error"]["message"].startswith("agentwrap: SSE event larger")


# -- a filter's bug ----------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["feed", "lane_text"])
def test_a_failing_filter_is_dropped_and_the_stream_goes_on(where: str) -> None:
    data, text = long_text("openai_chat", 100)
    out, tap = run_tap("openai_chat", data, list(range(1, len(data), 40)), [Boom(5, where), LoopGuard()])
    assert out == data
    assert [(n.guard, n.action) for n in tap.notes] == [("boom", "error")]
    assert "boom" in tap.notes[0].detail["error"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_after_a_rewrite_the_rest_is_re_encoded_and_takes_the_lane(protocol: str) -> None:
    events = [MessageStart("up_1", "m"), Usage(10, 0), TextDelta("First "), ToolCallStart(0, "call_1", "Bash"),
              ToolCallArgsDelta(0, '{"command":"ls"}'), ToolCallEnd(0), *(TextDelta(w) for w in words(200)),
              Stop("tool_use"), Usage(0, 30)]
    data = encode(protocol, events)
    expected = validate(protocol, data, strict_json=True)
    for cuts in ([], list(range(1, len(data), 97))):
        out, tap = run_tap(protocol, data, cuts, [Rename("Bash", "Shell"), LoopGuard()])
        turn = validate(protocol, out, strict_json=True)
        assert turn.text == expected.text and [t[1] for t in turn.tools] == ["Shell"]
        # (A Chat call ends only at the finish chunk: the rename holds it, and the text after, to the end.)
        assert tap.lane_events > 150 or protocol == "openai_chat"


def test_a_window_too_large_is_re_encoded() -> None:
    from agentwrap.protocols import tap as tap_module

    data, text = long_text("anthropic_messages", 200)
    limit, tap_module.MAX_WINDOW_BYTES = tap_module.MAX_WINDOW_BYTES, 2000
    try:
        out, tap = run_tap("anthropic_messages", data, list(range(1, len(data), 300)), [HoldAll()])
    finally:
        tap_module.MAX_WINDOW_BYTES = limit
    assert validate("anthropic_messages", out, strict_json=True).text == text
    assert tap._encoder is not None  # re-encoded from where the window overflowed (our encoder made the same bytes)


def test_a_filter_failing_in_finish_is_noted() -> None:
    class BadFinish(HoldAll):
        name = "bad_finish"

        def finish(self):
            raise KeyError("lost")

    data, text = long_text("openai_chat", 20)
    out, tap = run_tap("openai_chat", data, [], [BadFinish(release_at=10**9)])
    turn = validate("openai_chat", out)
    assert [(n.guard, n.action) for n in tap.notes] == [("bad_finish", "error")]
    assert turn.stop == "stop" or turn.error  # its held events are lost; the stream still ends valid


def test_notes_collect_as_they_are_made() -> None:
    data = encode("openai_chat", [MessageStart("u", "m"), ToolCallStart(0, "c1", "Bash"), ToolCallArgsDelta(0, '{"command":"ls"}'),
                                  ToolCallEnd(0), ToolCallStart(1, "c2", "Bash"), ToolCallArgsDelta(1, '{"command":"pwd"}'),
                                  ToolCallEnd(1), Stop("tool_use")])
    tap = StreamTap("openai_chat", [Rename("Bash", "Shell")])
    first = data.index(b'"index":1')  # up to the second call's start: the first call is renamed
    tap.feed(data[:first])
    assert [n.action for n in tap.notes] == ["renamed"]
    tap.feed(data[first:])
    tap.finish()
    assert [n.action for n in tap.notes] == ["renamed", "renamed"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_invalid_utf8_in_an_event_of_the_lanes_shape_ends_in_the_error_event(protocol: str) -> None:
    data, _ = long_text(protocol, 60)
    assert data.count(b'"w50 "') == 1
    broken = data.replace(b'"w50 "', b'"w50 \xff\xfe"')
    before = broken[: broken.rindex(b"\n\n", 0, broken.index(b"\xff")) + 2]
    for cuts in ([], list(range(1, len(broken), 500)), list(range(1, len(broken), 29))):
        out, tap = run_tap(protocol, broken, cuts, [LoopGuard()])
        assert tap.lane_events > 30
        assert out.startswith(before) and b"\xff" not in out
        assert validate(protocol, out).error == ERRORS[protocol]


def test_a_stream_with_cr_line_ends_is_framed() -> None:
    data = long_text("anthropic_messages", 30)[0].replace(b"\n", b"\r")
    for cuts in ([], list(range(1, len(data), 7)), list(range(1, len(data)))):
        out, tap = run_tap("anthropic_messages", data, cuts, [LoopGuard()])
        assert out == data and not tap.notes


def code_assist(data: bytes) -> bytes:
    """A Gemini stream as Code Assist sends it to Gemini CLI (Google login): each object wrapped."""
    out = []
    for sse in parse(data):
        out.append(b'data: {"response":' + sse.data.encode() + b',"traceId":"tr1"}\r\n\r\n')
    return b"".join(out)


def unwrapped(data: bytes) -> bytes:
    out = []
    for sse in parse(data):
        obj = json.loads(sse.data)
        assert set(obj) <= {"response", "traceId"} or "error" in obj, obj
        out.append(b"data: " + json.dumps(obj.get("response", obj)).encode() + b"\n\n")
    return b"".join(out)


def test_code_assist_streams_pass_byte_for_byte_and_are_resumed_wrapped() -> None:
    from tests.protocols.support import CutAt

    plain, text = long_text("gemini", 80)
    data = code_assist(plain)
    out, tap = run_tap("gemini", data, event_cuts(data), passing_filters("gemini"))
    assert out == data and tap.lane_events > 60
    for k in (0, 1, 40, 80):
        out, tap = run_tap("gemini", data, splits(data, random.Random(k), 9), [CutAt(k)])
        turn = validate("gemini", unwrapped(out))
        assert turn.text.endswith("[cut by a test filter]") and turn.stop == "STOP"
    broken = data[: len(data) // 2]
    out, tap = run_tap("gemini", broken, [], [LoopGuard()])
    assert validate("gemini", unwrapped(out)).error == "INTERNAL"
