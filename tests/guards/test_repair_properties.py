"""Property tests for the tool-repair guard (hypothesis)."""

from __future__ import annotations

import json
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentwrap.guards.repair import ToolRepair, repair_arguments, validate
from agentwrap.protocols.neutral import MessageStart, Stop, TextDelta, ToolCallArgsDelta, ToolCallEnd, ToolCallStart
from tests.guards.helpers import outcome, run
from tests.guards.repair_corpus import CHANNEL, SCHEMAS, TEXTS, TOOLS

# A longer search: REPAIR_EXAMPLES=3000 python -m pytest tests/guards/test_repair_properties.py
SETTINGS = settings(max_examples=int(os.environ.get("REPAIR_EXAMPLES", "100")), deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _cut(text: str, cuts: list[int]) -> list[str]:
    points = sorted({c % (len(text) + 1) for c in cuts} | {0, len(text)})
    return [text[a:b] for a, b in zip(points, points[1:]) if b > a]


valid_bash = st.fixed_dictionaries(
    {"command": st.text(max_size=40)},
    optional={"timeout": st.integers(0, 10**9), "run_in_background": st.booleans(), "description": st.text(max_size=20)},
)


@SETTINGS
@given(args=valid_bash, indent=st.sampled_from([None, 2]), ascii_only=st.booleans(), cuts=st.lists(st.integers(0, 400), max_size=12))
def test_valid_call_passes_identical_however_split(args: dict, indent: int | None, ascii_only: bool, cuts: list[int]) -> None:
    raw = json.dumps(args, indent=indent, ensure_ascii=ascii_only)
    events = [MessageStart("m", "x"), ToolCallStart(0, "c1", "Bash"), *[ToolCallArgsDelta(0, p) for p in _cut(raw, cuts)], ToolCallEnd(0), Stop("tool_use")]
    out, filt = run(events)
    assert out == events
    assert filt.notes == []


json_ish = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.sampled_from(["command", "timeout", "todos", "paths", "file_path", "x"]), children, max_size=3),
    max_leaves=8,
)
mutations = st.sampled_from(["", "}", ",", "'", '"', "\n", "True", "```", " trailing", "{"])


@SETTINGS
@given(
    tool=st.sampled_from([t.name for t in TOOLS if t.tool_kind == "function"]),
    value=json_ish,
    seed=st.sampled_from([c[2] for c in CHANNEL]),
    mutation=mutations,
    where=st.integers(0, 200),
    use_seed=st.booleans(),
)
def test_repair_is_idempotent(tool: str, value: object, seed: str, mutation: str, where: int, use_seed: bool) -> None:
    base = seed if use_seed else json.dumps(value)
    where %= len(base) + 1
    raw = base[:where] + mutation + base[where:]
    schema = SCHEMAS[tool]
    first = repair_arguments(raw, schema, tool_name=tool)
    if not first.ok:
        assert first.text == raw and not first.changed
        return
    assert validate(json.loads(first.text or "{}"), schema) is None
    second = repair_arguments(first.text, schema, tool_name=tool)
    assert second.ok and not second.changed and second.text == first.text


@SETTINGS
@given(tool=st.sampled_from([t.name for t in TOOLS]) | st.text(max_size=12), raw=st.text(max_size=80) | json_ish.map(json.dumps), cuts=st.lists(st.integers(0, 100), max_size=5))
def test_arbitrary_calls_never_raise(tool: str, raw: str, cuts: list[int]) -> None:
    events = [ToolCallStart(0, "c1", tool or "x"), *[ToolCallArgsDelta(0, p) for p in _cut(raw, cuts)], ToolCallEnd(0), Stop("tool_use")]
    out, filt = run(events)
    if not any(n.action == "repaired" for n in filt.notes):
        assert out == events
    else:
        (_, _, name, args), = outcome(out)["calls"]
        assert validate(json.loads(args or "{}"), SCHEMAS[name]) is None


@SETTINGS
@given(case=st.sampled_from(CHANNEL), cuts=st.lists(st.integers(0, 400), max_size=6))
def test_repaired_stream_is_left_alone_the_second_time(case: tuple, cuts: list[int]) -> None:
    _, name, raw, _ = case
    events = [ToolCallStart(0, "c1", name), *[ToolCallArgsDelta(0, p) for p in _cut(raw, cuts)], ToolCallEnd(0), Stop("tool_use")]
    once, _ = run(events)
    twice, filt = run(once)
    assert twice == once
    assert all(n.action == "failed" for n in filt.notes)


MARKERS = ["<tool_call>", "</tool_call>", "<function=Bash>", "</function>", "<parameter=command>", "</parameter>", "<Bash>", "</Bash>",
           "<command>", "</command>", "```", "```json\n", "\n", '{"name": "Bash", "arguments": ', '{"command": "ls"}', "}", "<think>",
           "</think>", "`", "[TOOL_CALLS]", "<｜tool▁calls▁begin｜>", "<｜tool▁call▁begin｜>", "<｜tool▁sep｜>", "<｜tool▁call▁end｜>",
           "<invoke name=\"Bash\">", "<function_calls>", "<", "{", "[", " ", "x", "é"]
texts = st.lists(st.sampled_from(MARKERS) | st.text(max_size=6), max_size=25).map("".join)


@SETTINGS
@given(text=texts, cuts_a=st.lists(st.integers(0, 600), max_size=20), cuts_b=st.lists(st.integers(0, 600), max_size=20))
def test_arbitrary_text_never_raises_and_any_split_gives_the_same(text: str, cuts_a: list[int], cuts_b: list[int]) -> None:
    results = []
    for cuts in (cuts_a, cuts_b):
        events = [MessageStart("m", "x"), *[TextDelta(p) for p in _cut(text, cuts)], Stop("end_turn")]
        out, filt = run(events)
        if not any(n.action == "extracted" for n in filt.notes):
            assert out == events  # nothing extracted: the very same events
        got = outcome(out)
        for _, _, name, args in got["calls"]:
            assert validate(json.loads(args), SCHEMAS[name]) is None
        assert len(got["text"]) <= len(text)
        results.append(got)
    assert results[0] == results[1]


@SETTINGS
@given(text=st.text(alphabet=st.characters(blacklist_characters="<`[{"), max_size=200), cuts=st.lists(st.integers(0, 300), max_size=20), lead=st.sampled_from(["", "Hi. "]))
def test_text_without_markers_passes_unheld(text: str, cuts: list[int], lead: str) -> None:
    filt = ToolRepair(TOOLS, "openai_chat")
    for piece in _cut(lead + text, cuts):
        assert filt.feed(TextDelta(piece)) == [TextDelta(piece)]
    assert filt.finish() == []


@SETTINGS
@given(case=st.sampled_from(TEXTS), cuts=st.lists(st.integers(0, 600), max_size=25))
def test_text_calls_found_however_split(case: tuple, cuts: list[int]) -> None:
    _, text, visible, calls = case
    out, _ = run([MessageStart("m", "x"), *[TextDelta(p) for p in _cut(text, cuts)], Stop("end_turn")])
    got = outcome(out)
    assert got["text"] == visible
    assert [(name, json.loads(args)) for _, _, name, args in got["calls"]] == calls


lane_pieces = st.lists(st.text(alphabet=st.sampled_from(list(" \n\t\r ab\"\\é✓{}]>")), max_size=6), min_size=1, max_size=12)


@SETTINGS
@given(pieces=lane_pieces, ascii_only=st.booleans(), runs=st.integers(1, 5), then=st.sampled_from([t[1] for t in TEXTS] + ["x", "```", "<Bash>"]))
def test_lane_keeps_the_same_state_as_feed(pieces: list[str], ascii_only: bool, runs: int, then: str) -> None:
    """Text taken on the lane leaves the scanner as feeding it would: what follows is
    decided the same way (a fence or an XML-style call must start a line)."""
    lane, fed = ToolRepair(TOOLS, "anthropic_messages"), ToolRepair(TOOLS, "anthropic_messages")
    out_lane = lane.feed(TextDelta("Hi. "))
    out_fed = fed.feed(TextDelta("Hi. "))
    literals = [json.dumps(p, ensure_ascii=ascii_only).encode() for p in pieces]
    for i in range(0, len(literals), runs):
        chunk = literals[i : i + runs]
        if lane.lane_text(chunk):
            out_lane += [TextDelta(json.loads(lit)) for lit in chunk if lit != b'""']
        else:
            for lit in chunk:
                out_lane += lane.feed(TextDelta(json.loads(lit))) if lit != b'""' else []
    for p in pieces:
        out_fed += fed.feed(TextDelta(p)) if p else []
    assert lane._scanner.line_start == fed._scanner.line_start
    for filt, out in ((lane, out_lane), (fed, out_fed)):
        out += filt.feed(TextDelta(then)) + filt.feed(Stop("end_turn")) + filt.finish()
    assert outcome(out_lane) == outcome(out_fed)
