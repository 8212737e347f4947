"""KeyGuard: a key the model repeats never reaches the agent, however its text is split."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from agentwrap.guards.keys import KeyGuard
from agentwrap.protocols.neutral import Stop, TextDelta, ThinkingDelta, ToolCallStart

KEY = "sk-ant-api03-Zq8vXk2LmN4pR7tY9wB1cD3eF5gH"


def _run(pieces: list[str], keys=(KEY,)) -> tuple[str, list]:
    g = KeyGuard(keys)
    out = []
    for p in pieces:
        out += g.feed(TextDelta(p))
    out += g.finish()
    return "".join(e.text for e in out if e.kind == "text_delta"), g.notes


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60), st.text(max_size=60), st.lists(st.integers(0, 200), max_size=8))
def test_a_key_never_comes_out_however_split(before, after, cuts):
    text = f"{before}{KEY}{after}{KEY}"
    points = sorted({min(c, len(text)) for c in cuts} | {0, len(text)})
    pieces = [text[a:b] for a, b in zip(points, points[1:])]
    out, notes = _run(pieces)
    assert KEY not in out
    assert len(out) == len(text)  # same length: only the key's characters were replaced
    assert notes and notes[0].action == "redacted"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(max_size=30), max_size=10))
def test_text_without_a_key_passes_as_it_came(pieces):
    g = KeyGuard([KEY])
    for p in pieces:
        e = TextDelta(p)
        out = g.feed(e)
        assert out == [e] or (KEY[:8] in "".join(pieces)), (p, out)
    assert not g.notes


def test_a_held_beginning_is_released_before_other_events_and_at_the_end():
    g = KeyGuard([KEY])
    assert g.feed(TextDelta("key: " + KEY[:12])) == [TextDelta("key: ")]
    assert g.holding
    call = ToolCallStart(0, "c1", "Bash")
    assert g.feed(call) == [TextDelta(KEY[:12]), call]
    assert g.feed(TextDelta("x " + KEY[:10])) == [TextDelta("x ")]
    assert g.finish() == [TextDelta(KEY[:10])]


def test_thinking_is_scrubbed_too_and_signatures_are_kept():
    g = KeyGuard([KEY])
    out = g.feed(ThinkingDelta(f"the key is {KEY}", provider_meta={"signature": "s"}))
    assert KEY not in out[0].text and out[0].provider_meta == {"signature": "s"}


def test_lane_runs_pass_undecoded_unless_they_hold_a_key_or_its_beginning():
    g = KeyGuard([KEY])
    lit = [json.dumps(t).encode() for t in ("Hello ", "world, no key here.")]
    assert g.lane_text(lit) is True
    assert g.lane_text([json.dumps(f"x {KEY} y").encode()]) is False
    assert g.lane_text([json.dumps("ends with " + KEY[:9]).encode()]) is False
    assert g.lane_text([json.dumps("ends with " + KEY[:5]).encode()]) is True  # too short to say anything


def test_stop_passes():
    assert KeyGuard([KEY]).feed(Stop("end_turn")) == [Stop("end_turn")]


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40), st.lists(st.integers(0, 120), max_size=8), st.lists(st.booleans(), min_size=10, max_size=10))
def test_a_key_split_between_lane_runs_and_deltas_never_comes_out(before, cuts, lane):
    text = f"{before}{KEY} and more"
    points = sorted({min(c, len(text)) for c in cuts} | {0, len(text)})
    pieces = [text[a:b] for a, b in zip(points, points[1:]) if b > a]
    g, out = KeyGuard([KEY]), []
    for i, p in enumerate(pieces):
        if lane[i % len(lane)] and g.lane_text([json.dumps(p).encode()]):
            out.append(p)
        else:
            out += [e.text for e in g.feed(TextDelta(p))]
    out += [e.text for e in g.finish()]
    assert KEY not in "".join(out)
