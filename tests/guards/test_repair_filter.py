"""ToolRepair over the case corpus: channel calls, text-embedded calls and near misses,
each streamed in 1-character, small and whole pieces."""

from __future__ import annotations

import json
import re

import pytest

from agentwrap.guards.base import StreamFilter
from agentwrap.guards.repair import ToolRepair, validate
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
from agentwrap.protocols.neutral.summary import ToolSpec
from tests.guards.helpers import SPLITS, call_stream, outcome, run, split, text_stream, values
from tests.guards.repair_corpus import CHANNEL, NEAR_MISSES, SCHEMAS, TEXTS, TOOLS


def test_is_a_stream_filter() -> None:
    filt = ToolRepair(TOOLS, "anthropic_messages")
    assert isinstance(filt, StreamFilter)
    assert filt.name == "tool_repair" and filt.wants_text is True


# -- tool calls from the call channel ---------------------------------------------------


@pytest.mark.parametrize("how", SPLITS)
@pytest.mark.parametrize(("case", "name", "raw", "expected"), CHANNEL, ids=[c[0] for c in CHANNEL])
def test_channel_call(case: str, name: str, raw: str, expected: object, how: str) -> None:
    events = call_stream(name, raw, how)
    out, filt = run(events)
    if expected == "valid":
        assert out == events
        assert filt.notes == []
    elif expected == "failed":
        assert out == events
        assert [n.action for n in filt.notes] == ["failed"]
        assert filt.notes[0].detail["tool"] == name
    else:
        _, fixed, value = expected  # type: ignore[misc]
        got = outcome(out)
        assert got["calls"] == [[0, "call_1", fixed, got["calls"][0][3]]]
        assert json.loads(got["calls"][0][3]) == value
        assert validate(value, SCHEMAS[fixed]) is None
        starts = [e for e in out if isinstance(e, ToolCallStart)]
        assert starts == [ToolCallStart(0, "call_1", fixed)]
        assert sum(isinstance(e, ToolCallArgsDelta) for e in out) == 1
        assert sum(isinstance(e, ToolCallEnd) for e in out) == 1
        assert [n.action for n in filt.notes] == ["repaired"]
        note = filt.notes[0]
        assert note.guard == "tool_repair" and note.detail["tool"] == fixed and note.detail["changes"]
        assert note.detail["problems"]
        # Everything but the call is untouched and in place.
        assert [e for e in out if not e.kind.startswith("tool_call")] == [e for e in events if not e.kind.startswith("tool_call")]


def test_channel_corpus_size() -> None:
    kinds = {c[0].split("_")[0] for c in CHANNEL}
    assert kinds == {"valid", "syntax", "shape", "type", "name", "fail"}
    assert len(CHANNEL) + len(TEXTS) + len(NEAR_MISSES) >= 80


def test_custom_call_passes_untouched() -> None:
    events = call_stream("apply_patch", "*** Begin Patch\nnot json {", "small")
    events[2] = ToolCallStart(0, "call_1", "apply_patch", "custom")
    out, filt = run(events)
    assert out == events and filt.notes == []
    # Not held either: each event passes as it comes.
    filt = ToolRepair(TOOLS, "anthropic_messages")
    for event in events[:-2]:
        assert filt.feed(event) == [event]


def test_valid_call_held_until_end_then_released_as_held() -> None:
    filt = ToolRepair(TOOLS, "openai_chat")
    start, deltas = ToolCallStart(0, "c", "Bash"), [ToolCallArgsDelta(0, '{"comm'), ToolCallArgsDelta(0, 'and":"ls"}')]
    assert filt.feed(start) == []
    assert filt.feed(deltas[0]) == [] and filt.feed(deltas[1]) == []
    usage = Usage(1, 2)
    assert filt.feed(usage) == []  # queued behind the held call: order is kept
    released = filt.feed(ToolCallEnd(0))
    assert released == [start, *deltas, usage, ToolCallEnd(0)]
    assert all(a is b for a, b in zip(released, [start, *deltas, usage]))


def test_parallel_calls_interleaved() -> None:
    events = [
        MessageStart("m", "x"),
        ToolCallStart(0, "a", "bash"),
        ToolCallStart(1, "b", "Read"),
        ToolCallArgsDelta(0, "{'command': 'ls'"),
        ToolCallArgsDelta(1, '{"file_path": "/a"}'),
        ToolCallArgsDelta(0, "}"),
        ToolCallEnd(1),
        ToolCallEnd(0),
        Stop("tool_use"),
    ]
    out, filt = run(events)
    got = outcome(out)
    assert values(got["calls"]) == [("Bash", {"command": "ls"}), ("Read", {"file_path": "/a"})]
    # The valid call's events are the originals, in their places.
    assert [e for e in out if getattr(e, "index", None) == 1] == [events[2], events[4], events[6]]
    assert [n.action for n in filt.notes] == ["repaired"]


def test_call_without_end_is_judged_at_stop() -> None:
    events = [ToolCallStart(0, "a", "bash"), ToolCallArgsDelta(0, '{"command": "ls"}'), Stop("tool_use")]
    out, _ = run(events)
    assert out == [ToolCallStart(0, "a", "Bash"), ToolCallArgsDelta(0, '{"command": "ls"}'), Stop("tool_use")]


def test_stream_error_releases_held_call_unchanged() -> None:
    events = [ToolCallStart(0, "a", "bash"), ToolCallArgsDelta(0, '{"comm'), StreamError("api_error", "boom")]
    out, filt = run(events)
    assert out == events and filt.notes == []


def test_provider_meta_and_kind_kept_on_repair() -> None:
    meta = {"thought_signature": "sig"}
    events = [ToolCallStart(3, "g1", "bash", provider_meta=meta), ToolCallArgsDelta(3, '{"command": "ls",}'), ToolCallEnd(3)]
    out, _ = run(events, protocol="gemini")
    assert out == [ToolCallStart(3, "g1", "Bash", provider_meta=meta), ToolCallArgsDelta(3, '{"command":"ls"}'), ToolCallEnd(3)]


@pytest.mark.parametrize(("protocol", "expected"), [("anthropic_messages", ""), ("gemini", ""), ("openai_chat", "{}"), ("openai_responses", "{}")])
def test_empty_arguments(protocol: str, expected: str) -> None:
    events = [ToolCallStart(0, "a", "Ping"), ToolCallEnd(0)]
    out, _ = run(events, protocol=protocol)
    assert outcome(out)["calls"][0][3] == expected


def test_options_off() -> None:
    events = call_stream("bash", "{'command': 'ls'}", "whole")
    out, filt = run(events, ToolRepair(TOOLS, "anthropic_messages", repair_names=False))
    assert out == events and [n.action for n in filt.notes] == ["failed"]
    out, filt = run(events, ToolRepair(TOOLS, "anthropic_messages", repair_arguments=False))
    assert outcome(out)["calls"][0][2:] == ["Bash", "{'command': 'ls'}"]
    filt = ToolRepair(TOOLS, "anthropic_messages", extract_text_calls=False)
    assert filt.wants_text is False
    text = text_stream(TEXTS[0][1], "whole")
    assert run(text, filt)[0] == text


def test_no_tools_is_inert() -> None:
    filt = ToolRepair((), "anthropic_messages")
    assert filt.wants_text is False
    events = text_stream(TEXTS[0][1], "chars") + call_stream("bash", "{'x'", "small")
    assert run(events, filt)[0] == events and filt.notes == []


# -- text-embedded calls -----------------------------------------------------------------


@pytest.mark.parametrize("how", SPLITS)
@pytest.mark.parametrize(("case", "text", "visible", "calls"), TEXTS, ids=[c[0] for c in TEXTS])
def test_text_call_extracted(case: str, text: str, visible: str, calls: list, how: str) -> None:
    events = text_stream(text, how)
    out, filt = run(events, protocol="anthropic_messages")
    got = outcome(out)
    assert got["text"] == visible
    assert values(got["calls"]) == calls
    assert got["stop"] == "tool_use"
    for _, call_id, name, args in got["calls"]:
        assert re.fullmatch(r"toolu_[0-9a-f]{24}", call_id)
        assert validate(json.loads(args), SCHEMAS[name]) is None
    assert len({c[1] for c in got["calls"]}) == len(calls)
    assert [n.action for n in filt.notes] == ["extracted"] * len(calls) + ["stop_reason"]
    # Each call is whole: start, one arguments delta, end, in a row.
    for index in (c[0] for c in got["calls"]):
        mine = [e for e in out if getattr(e, "index", None) == index]
        assert [e.kind for e in mine] == ["tool_call_start", "tool_call_args_delta", "tool_call_end"]
        position = out.index(mine[0])
        assert out[position : position + 3] == mine


@pytest.mark.parametrize("how", SPLITS)
@pytest.mark.parametrize(("case", "text"), NEAR_MISSES, ids=[c[0] for c in NEAR_MISSES])
def test_near_miss_unchanged(case: str, text: str, how: str) -> None:
    events = text_stream(text, how)
    out, filt = run(events)
    assert out == events
    assert filt.notes == []


def test_text_call_after_real_call_gets_higher_index_and_later_call_is_moved() -> None:
    events = [
        MessageStart("m", "x"),
        ToolCallStart(0, "a", "Bash"),
        ToolCallArgsDelta(0, '{"command": "ls"}'),
        ToolCallEnd(0),
        TextDelta('<tool_call>{"name": "read_file", "arguments": {"path": "a"}}</tool_call>'),
        ToolCallStart(1, "b", "Read"),
        ToolCallArgsDelta(1, '{"file_path": "/a"}'),
        ToolCallEnd(1),
        Stop("end_turn"),
    ]
    out, _ = run(events)
    got = outcome(out)
    assert [(c[0], c[2]) for c in got["calls"]] == [(0, "Bash"), (1, "read_file"), (2, "Read")]
    assert got["stop"] == "tool_use"


def test_ids_differ_across_requests_with_the_same_message_id() -> None:
    ids = set()
    for seed in ("req-1", "req-2"):
        out, _ = run(text_stream(TEXTS[0][1], "whole"), ToolRepair(TOOLS, "anthropic_messages", id_seed=seed))
        ids.add(outcome(out)["calls"][0][1])
    assert len(ids) == 2


def test_bare_call_after_a_leading_think_region() -> None:
    text = '<think>The user wants a listing.</think>\n{"name": "Bash", "arguments": {"command": "ls"}}'
    for how in ("chars", "whole"):
        got = outcome(run(text_stream(text, how))[0])
        assert got["text"] == "<think>The user wants a listing.</think>\n"
        assert values(got["calls"]) == [("Bash", {"command": "ls"})]
    got = outcome(run(text_stream("Sure. " + text, "whole"))[0])
    assert got["calls"] == []


def test_weak_text_call_then_real_call() -> None:
    events = [
        MessageStart("m", "x"),
        TextDelta('```json\n{"name": "Bash", "arguments": {"command": "ls"}}\n```\n'),
        ToolCallStart(0, "b", "Read"),
        ToolCallArgsDelta(0, '{"file_path": "/a"}'),
        ToolCallEnd(0),
        Stop("tool_use"),
    ]
    out, _ = run(events)
    got = outcome(out)
    assert [(c[0], c[2]) for c in got["calls"]] == [(0, "Bash"), (1, "Read")]
    assert got["text"] == "" and got["stop"] == "tool_use"
    assert [e for e in out if getattr(e, "index", None) == 1] == [ToolCallStart(1, "b", "Read"), ToolCallArgsDelta(1, '{"file_path": "/a"}'), ToolCallEnd(1)]


def test_held_text_is_released_before_a_real_call() -> None:
    events = [TextDelta("Let me look <"), ToolCallStart(0, "a", "Bash"), ToolCallArgsDelta(0, '{"command": "ls"}'), ToolCallEnd(0), Stop("tool_use")]
    out, _ = run(events)
    assert out == events


def test_xml_tag_of_a_schemaless_tool_needs_no_children() -> None:
    tools = (ToolSpec("Ping"), ToolSpec("Bash", parameters={"type": "object", "properties": {"command": {"type": "string"}}}))
    out, _ = run(text_stream("<Ping>\n</Ping>", "small"), ToolRepair(tools, "openai_chat"))
    assert values(outcome(out)["calls"]) == [("Ping", {})]
    out, _ = run(text_stream("<Ping><host>example.com</host></Ping>", "small"), ToolRepair(tools, "openai_chat"))
    assert outcome(out)["calls"] == []


def test_stop_reason_kept_for_max_tokens() -> None:
    events = text_stream(TEXTS[0][1], "whole", stop="max_tokens")
    out, _ = run(events)
    assert outcome(out)["stop"] == "max_tokens" and outcome(out)["calls"]


@pytest.mark.parametrize("protocol", ["anthropic_messages", "openai_chat", "openai_responses", "gemini"])
def test_call_ids_fit_the_agent_protocol(protocol: str) -> None:
    out, _ = run(text_stream(TEXTS[0][1], "small"), protocol=protocol)
    call_id = outcome(out)["calls"][0][1]
    assert re.fullmatch(r"[A-Za-z0-9_-]+", call_id)


def test_unconfirmed_opening_is_held_at_most_the_bound() -> None:
    filt = ToolRepair(TOOLS, "anthropic_messages", max_hold_chars=64)
    assert filt.feed(TextDelta("hello ")) == [TextDelta("hello ")]
    assert filt.feed(TextDelta("<tool_ca")) == []
    assert filt.feed(TextDelta("t and more")) == [TextDelta("<tool_ca"), TextDelta("t and more")]
    # An opening that stays a prefix (an XML-style tag at a line start) is released at the bound.
    filt = ToolRepair((ToolSpec("x" * 40, parameters={"type": "object"}),), "anthropic_messages", max_hold_chars=64)
    filt.feed(TextDelta("ok\n"))
    held = 0
    for n in range(200):
        if filt.feed(TextDelta("<" if n == 0 else "x")):
            break
        held += 1
    assert held <= filt._scanner.max_hold  # the bound, raised to fit the longest declared name
    assert filt._scanner.max_hold == 40 + 32


def test_confirmed_block_is_released_past_the_block_bound() -> None:
    filt = ToolRepair(TOOLS, "anthropic_messages", max_block_chars=1000)
    head = '<tool_call>{"name": "Bash", "arguments": {"command": "'
    out = filt.feed(TextDelta(head))
    for _ in range(18):
        out += filt.feed(TextDelta("x" * 50))
    assert out == []  # 955 characters held
    out += filt.feed(TextDelta("x" * 50))  # past 1000: released as text, and streams on
    assert "".join(e.text for e in out) == head + "x" * 950
    for _ in range(10):
        assert filt.feed(TextDelta("x" * 50)) == [TextDelta("x" * 50)]
    out += [TextDelta("x" * 500)]
    out += filt.feed(TextDelta('"}}</tool_call>')) + filt.finish()
    assert "".join(e.text for e in out) == head + "x" * 1450 + '"}}</tool_call>'


def test_marker_named_in_prose_is_released_within_the_hold_bound() -> None:
    filt = ToolRepair(TOOLS, "anthropic_messages")
    assert filt.feed(TextDelta("Models emit a ")) == [TextDelta("Models emit a ")]
    assert filt.feed(TextDelta("<tool_call>")) == []
    out = filt.feed(TextDelta(" tag"))
    assert out == [TextDelta("<tool_call>"), TextDelta(" tag")]
    for opening, after in (("<function_calls>", "\nthen text"), ("<function=", "name and more\n"), ("[TOOL_CALLS]", " token"), ('<invoke name="x">', "text")):
        filt = ToolRepair(TOOLS, "anthropic_messages")
        filt.feed(TextDelta("Hi "))
        assert filt.feed(TextDelta(opening)) == []
        assert "".join(e.text for e in filt.feed(TextDelta(after))) == opening + after


def test_weak_call_waits_for_the_end_of_the_message() -> None:
    filt = ToolRepair(TOOLS, "anthropic_messages")
    held = filt.feed(TextDelta('```json\n{"name": "Bash", "arguments": {"command": "ls"}}\n```\n'))
    assert held == []
    assert filt.feed(TextDelta("\n  ")) == []
    out = filt.feed(Stop("end_turn"))
    assert values(outcome(out)["calls"]) == [("Bash", {"command": "ls"})]
    assert outcome(out)["text"] == "\n  " and out[-1] == Stop("tool_use")


def test_events_behind_held_text_keep_their_order() -> None:
    filt = ToolRepair(TOOLS, "anthropic_messages")
    out = filt.feed(TextDelta("a <"))
    out += filt.feed(Usage(1, 1))
    out += filt.feed(ThinkingDelta("hm"))
    out += filt.feed(TextDelta("b"))
    out += filt.finish()
    assert out == [TextDelta("a <"), Usage(1, 1), ThinkingDelta("hm"), TextDelta("b")]


def test_text_of_a_cut_delta_is_kept_around_the_call() -> None:
    text = 'before <tool_call>{"name": "Bash", "arguments": {"command": "ls"}}</tool_call> after'
    events = [TextDelta(text[:10]), TextDelta(text[10:-3]), TextDelta(text[-3:]), Stop("end_turn")]
    out, _ = run(events)
    assert out[0] == TextDelta("before ")
    assert [e.kind for e in out[1:4]] == ["tool_call_start", "tool_call_args_delta", "tool_call_end"]
    assert out[4:] == [TextDelta(" af"), TextDelta("ter"), Stop("tool_use")]


# -- the text lane ---------------------------------------------------------------------


def _lit(text: str) -> bytes:
    return json.dumps(text).encode()


def test_lane_text_passes_plain_runs() -> None:
    filt = ToolRepair(TOOLS, "anthropic_messages")
    assert filt.lane_text([_lit("hi")]) is False  # the message's first text is read (bare JSON rule)
    filt.feed(TextDelta("Hello"))
    assert filt.lane_text([_lit(" world"), _lit(", plain text.\n")]) is True
    assert filt._scanner.line_start is True
    assert filt.lane_text([_lit("more é ✓ {json} too")]) is True
    assert filt._scanner.line_start is False
    for marker in ("<", "`", "[", "｜"):
        assert filt.lane_text([_lit("x"), _lit(f"a {marker} b")]) is False
    assert filt.lane_text([b'"\\u003ctool_call>"']) is False
    assert filt.lane_text([json.dumps("｜", ensure_ascii=True).encode()]) is False


def test_lane_text_refused_while_holding() -> None:
    filt = ToolRepair(TOOLS, "anthropic_messages")
    filt.feed(TextDelta("Hi "))
    filt.feed(TextDelta("<tool"))
    assert filt.lane_text([_lit("plain")]) is False
    filt = ToolRepair(TOOLS, "anthropic_messages")
    filt.feed(ToolCallStart(0, "a", "Bash"))
    assert filt.lane_text([_lit("plain")]) is False


def test_lane_text_keeps_line_state_for_fences() -> None:
    call = '```json\n{"name": "Bash", "arguments": {"command": "ls"}}\n```'
    filt = ToolRepair(TOOLS, "anthropic_messages")
    out = filt.feed(TextDelta("Intro"))
    assert filt.lane_text([_lit(" text"), _lit("\n")]) is True
    out += filt.feed(TextDelta(call)) + filt.feed(Stop("end_turn"))
    assert values(outcome(out)["calls"]) == [("Bash", {"command": "ls"})]
    # Without a newline before it the fence is mid-line: inline code, not a call.
    filt = ToolRepair(TOOLS, "anthropic_messages")
    out = filt.feed(TextDelta("Intro"))
    assert filt.lane_text([_lit(" text:  ")]) is True
    out += filt.feed(TextDelta(call)) + filt.feed(Stop("end_turn"))
    assert outcome(out)["calls"] == []


def test_split_helper() -> None:
    assert "".join(split("abcdefghijklmnop", "small")) == "abcdefghijklmnop"
    assert split("", "chars") == []
