"""LoopGuard: the loop detector as a stream filter (feed, lane_text, cut and warn)."""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentwrap.guards.base import Cut, GuardNote, StreamFilter
from agentwrap.guards.loop import LoopDetector
from agentwrap.guards.loop_guard import LoopGuard
from agentwrap.protocols.neutral import (
    MessageStart,
    NeutralEvent,
    Stop,
    TextDelta,
    ThinkingDelta,
    ToolCallArgsDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
)
from tests.guards.loop_corpus import LOOPS, NEAR_MISSES, PROSE, Case

LOOP = "Let me check the file again.\n"


def deltas(text: str, seed: int = 0, thinking: bool = False) -> list[NeutralEvent]:
    rng = random.Random(seed)
    out: list[NeutralEvent] = []
    i = 0
    while i < len(text):
        n = rng.randint(3, 40)
        out.append(ThinkingDelta(text[i : i + n]) if thinking else TextDelta(text[i : i + n]))
        i += n
    return out


def stream(events: list[NeutralEvent], guard: LoopGuard) -> tuple[list[NeutralEvent], Cut | None]:
    """What the guard lets through, and its Cut if it raised one."""
    out: list[NeutralEvent] = []
    for event in events:
        try:
            passed = guard.feed(event)
        except Cut as cut:
            return out, cut
        assert passed == [event] and passed[0] is event
        out.extend(passed)
    out.extend(guard.finish())
    return out, None


def found_at(events: list[NeutralEvent], passed: list[NeutralEvent]) -> int:
    """Where the detector found the loop: a check offset inside the event the guard cut on."""
    detector = LoopDetector()
    for event in events[: len(passed) + 1]:
        if (found := detector.feed(event.text)) is not None:
            return found.start_char + found.span_chars
    raise AssertionError("no loop")


def test_is_a_stream_filter() -> None:
    guard = LoopGuard()
    assert isinstance(guard, StreamFilter)
    assert guard.name == "loop" and guard.wants_text is True and guard.notes == []


def test_events_pass_unchanged() -> None:
    text = NEAR_MISSES[0].text
    events = [
        MessageStart("msg_1", "model"),
        ThinkingDelta("I should read the parser first.", provider_meta={"signature": "sig"}),
        ThinkingDelta("", provider_meta={"signature": "sig2"}),
        *deltas(text),
        ToolCallStart(0, "call_1", "read_file"),
        ToolCallArgsDelta(0, '{"path": "a.py"}'),
        ToolCallEnd(0),
        Usage(10, 20),
        Stop("tool_use"),
    ]
    guard = LoopGuard()
    out, cut = stream(events, guard)
    assert cut is None and out == events
    assert guard.notes == []


def test_cut_raises_with_notice_and_note() -> None:
    guard = LoopGuard(max_output_chars=32_000)
    events = deltas(PROSE + LOOP * 200)
    out, cut = stream(events, guard)
    assert cut is not None
    [note] = guard.notes
    assert isinstance(note, GuardNote) and note.guard == "loop" and note.action == "cut"
    detail = note.detail
    assert detail["pattern"] == LOOP and detail["unit_chars"] == 29 and detail["in"] == "text"
    assert detail["span_chars"] >= 1024 and detail["repeats"] == detail["span_chars"] // 29
    assert detail["chars_saved"] == 32_000 - found_at(events, out)
    assert cut.stop == "end_turn"
    assert cut.events == [TextDelta(
        f"\n\n[agentwrap stopped a repetition loop: the same 29-character passage repeated {detail['repeats']} times.]"
    )]
    assert "29-character unit" in cut.reason
    # The cut fell within the bound: at most one check (~270 characters) after 1024 characters of loop.
    assert sum(len(e.text) for e in out) < len(PROSE) + 1024 + 300
    assert note.as_item()["guard"] == "loop"
    json.dumps(note.as_item())  # plain JSON values


def test_chars_saved() -> None:
    guard = LoopGuard(max_output_chars=100)
    with pytest.raises(Cut):
        guard.feed(TextDelta("-" * 10_000))
    assert guard.notes[0].detail["chars_saved"] == 0  # never negative
    guard = LoopGuard()
    with pytest.raises(Cut):
        guard.feed(TextDelta("-" * 10_000))
    assert guard.notes[0].detail["chars_saved"] is None
    guard = LoopGuard(max_output_chars=50_000)
    guard.feed(ThinkingDelta("a" * 100))
    with pytest.raises(Cut):
        guard.feed(TextDelta("-" * 9_900))
    # Output up to the loop's detection, thinking included.
    assert guard.notes[0].detail["chars_saved"] == 50_000 - 100 - guard.notes[0].detail["span_chars"]


def test_single_character_notice() -> None:
    guard = LoopGuard()
    with pytest.raises(Cut) as info:
        guard.feed(TextDelta("=" * 10_000))
    [event] = info.value.events
    assert event.text.startswith("\n\n[agentwrap stopped a repetition loop: the same character repeated ")


@pytest.mark.parametrize("case", [c for c in LOOPS if c.lane == "thinking"], ids=lambda c: c.name)
def test_loop_in_thinking(case: Case) -> None:
    guard = LoopGuard()
    out, cut = stream(deltas(case.text, thinking=True), guard)
    assert cut is not None
    assert guard.notes[0].detail["in"] == "thinking"
    assert "in its thinking" in cut.events[0].text
    assert all(isinstance(e, ThinkingDelta) for e in out)


def test_text_and_thinking_are_apart() -> None:
    # 25 copies in thinking and 25 in text: neither run is a loop, though 50 copies would be.
    events = []
    for _ in range(25):
        events += [ThinkingDelta(LOOP), TextDelta(LOOP)]
    out, cut = stream(events, LoopGuard())
    assert cut is None and out == events


def test_tool_call_is_a_boundary() -> None:
    events = [*deltas(LOOP * 30), ToolCallStart(0, "c1", "read_file"), ToolCallEnd(0), *deltas(LOOP * 30, seed=1)]
    out, cut = stream(events, LoopGuard())
    assert cut is None and out == events


def test_warn_records_once_and_passes() -> None:
    guard = LoopGuard(action="warn", max_output_chars=10_000)
    events = [*deltas(PROSE + LOOP * 200), *deltas("-" * 9000, seed=2), *deltas(LOOP * 200, thinking=True)]
    out, cut = stream(events, guard)
    assert cut is None and out == events
    [note] = guard.notes
    assert note.action == "warn" and note.detail["in"] == "text" and note.detail["unit_chars"] == 29
    assert guard.lane_text([json.dumps("-" * 9000).encode()]) is True
    assert len(guard.notes) == 1


def test_not_fed_after_a_cut() -> None:
    guard = LoopGuard()
    out, cut = stream(deltas(LOOP * 200), guard)
    assert cut is not None
    # Should the pipeline feed it again, it passes everything and notes nothing more.
    assert guard.feed(TextDelta("-" * 9000)) == [TextDelta("-" * 9000)]
    assert guard.lane_text([b'"' + b"-" * 9000 + b'"']) is True
    assert len(guard.notes) == 1


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError, match="sensitivity"):
        LoopGuard(sensitivity="max")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="action"):
        LoopGuard(action="drop")  # type: ignore[arg-type]


# --- the text lane --------------------------------------------------------------------------------

def literal(text: str, ascii_only: bool) -> bytes:
    return json.dumps(text, ensure_ascii=ascii_only).encode()


def lane_runs(text: str, seed: int, ascii_only: bool) -> list[list[bytes]]:
    rng = random.Random(seed)
    pieces = [e.text for e in deltas(text, seed)]
    runs, i = [], 0
    while i < len(pieces):
        n = rng.randint(1, 64)
        runs.append([literal(p, ascii_only) for p in pieces[i : i + n]])
        i += n
    return runs


def outcome(guard: LoopGuard, feed) -> tuple[list, str | None]:
    try:
        feed()
    except Cut as cut:
        return [n.as_item() for n in guard.notes], cut.events[0].text
    return [n.as_item() for n in guard.notes], None


LANE_TEXTS = [
    PROSE + LOOP * 200,
    "Résumé: \u00e9t\u00e9 \u2014 \"quoted\" \\ back\\slash\ttab\n" * 3 + "caf\u00e9 \U0001f642 ok.\n" * 400,
    "{\"key\": \"va\\\"lue\"}\n" * 500,
    NEAR_MISSES[0].text,
    "\u6211\u9700\u8981\u518d\u68c0\u67e5\u4e00\u4e0b\u8fd9\u4e2a\u6587\u4ef6\u3002\n" * 300,
]


@pytest.mark.parametrize("ascii_only", [True, False], ids=["unicode_escapes", "raw_utf8"])
@pytest.mark.parametrize("index", range(len(LANE_TEXTS)))
def test_lane_text_is_feeding_the_decoded_text(index: int, ascii_only: bool) -> None:
    text = LANE_TEXTS[index]
    runs = lane_runs(text, index, ascii_only)
    by_events = LoopGuard(max_output_chars=50_000)
    expected = outcome(by_events, lambda: [by_events.feed(TextDelta(json.loads(lit))) for run in runs for lit in run])
    by_lane = LoopGuard(max_output_chars=50_000)

    def feed_lane() -> None:
        for run in runs:
            assert by_lane.lane_text(run) is True

    assert outcome(by_lane, feed_lane) == expected
    assert (expected[1] is None) == (index == 3)


def test_lane_and_events_mixed() -> None:
    text = PROSE + LOOP * 200
    pieces = [e.text for e in deltas(text)]
    guard = LoopGuard()
    with pytest.raises(Cut):
        for i in range(0, len(pieces), 10):
            chunk = pieces[i : i + 10]
            if i % 20:
                guard.lane_text([literal(p, True) for p in chunk])
            else:
                for p in chunk:
                    guard.feed(TextDelta(p))
    detector = LoopDetector()
    assert guard.notes[0].detail["span_chars"] == detector.feed(text).span_chars


def test_lane_escapes() -> None:
    guard = LoopGuard()
    literals = [b'"a\\"b"', b'"\\u00e9\\n"', b'""', b'"\\\\"', b'"x\\""', b'"\\ud83d\\ude42"', b'"\\/\\b\\f\\r\\t"']
    assert guard.lane_text(literals) is True
    guard.finish()  # lane runs are looked at in batches; the end of the stream flushes them
    assert guard._text.chars == len("a\"b" + "\u00e9\n" + "" + "\\" + "x\"" + "\U0001f642" + "/\b\f\r\t")


@settings(max_examples=100)
@given(
    text=st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=300),
    unit=st.text(st.sampled_from('ab"\\\n\u00e9\U0001f642 '), min_size=1, max_size=40),
    copies=st.integers(0, 400),
    data=st.data(),
)
def test_lane_text_property(text: str, unit: str, copies: int, data: st.DataObject) -> None:
    full = text + unit * copies
    cuts = sorted(data.draw(st.sets(st.integers(0, len(full)), max_size=60)))
    bounds = [0, *cuts, len(full)]
    pieces = [full[a:b] for a, b in zip(bounds, bounds[1:])]
    ascii_only = data.draw(st.booleans())
    run_size = data.draw(st.integers(1, 20))
    runs = [[literal(p, ascii_only) for p in pieces[i : i + run_size]] for i in range(0, len(pieces), run_size)]
    by_events, by_lane = LoopGuard(max_output_chars=20_000), LoopGuard(max_output_chars=20_000)
    expected = outcome(by_events, lambda: [by_events.feed(TextDelta(p)) for p in pieces])
    assert outcome(by_lane, lambda: [by_lane.lane_text(run) for run in runs]) == expected
