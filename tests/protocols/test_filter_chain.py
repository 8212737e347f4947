"""FilterChain (protocols/filters.py): filters run as one stage, alone, with plain events."""

from __future__ import annotations

import pytest

from agentwrap.guards.base import Cut
from agentwrap.protocols.filters import Cutting, FilterChain, filter_events
from agentwrap.protocols.neutral import Stop, TextDelta, Usage
from tests.protocols.support import Boom, CutAt, HoldAll, NoOp


class Log(NoOp):
    """Passes everything and logs what it saw, how."""

    def __init__(self, name: str, take_text: bool = True, wants_text: bool = True) -> None:
        super().__init__()
        self.name, self.take_text, self.wants_text = name, take_text, wants_text
        self.log: list = []

    def feed(self, event):
        self.log.append(("feed", getattr(event, "text", event.kind)))
        return [event]

    def lane_text(self, literals):
        self.log.append(("lane", literals))
        return self.take_text


def test_events_go_through_every_filter_in_order() -> None:
    class Upper(Log):
        def feed(self, event):
            super().feed(event)
            return [TextDelta(event.text.upper())] if isinstance(event, TextDelta) else [event]

    first, last = Upper("first"), Log("last")
    chain = FilterChain([first, last])
    assert chain.feed(TextDelta("hi")) == [TextDelta("HI")]
    assert last.log == [("feed", "HI")] and not chain.holding


def test_a_declined_run_is_decoded_and_fed_from_the_filter_that_declined_it() -> None:
    before, decliner, after, blind = Log("before"), Log("decliner", take_text=False), Log("after"), Log("blind", wants_text=False)
    chain = FilterChain([before, blind, decliner, after])
    literals = [b'"a\\u00e9"', b'""', b'"b"']
    assert chain.lane_text(literals) == [TextDelta("aé"), TextDelta("b")]
    assert before.log == [("lane", literals)] and blind.log == []  # took it as a run / never asked
    assert decliner.log == [("lane", literals), ("feed", "aé"), ("feed", "b")]
    assert after.log == [("feed", "aé"), ("feed", "b")]
    assert FilterChain([before, after]).lane_text([b'"x"']) is None  # all took it


def test_holding_is_any_filter_that_holds() -> None:
    hold = HoldAll()
    chain = FilterChain([NoOp(), hold])
    assert chain.feed(TextDelta("a")) == [] and chain.holding
    assert chain.finish() == [TextDelta("a")] and not chain.holding


def test_a_cut_sends_what_later_filters_hold_and_drops_what_earlier_ones_hold() -> None:
    early, late = HoldAll(), HoldAll()
    chain = FilterChain([early, CutAt(2), late])
    events = [TextDelta(str(n)) for n in range(5)]
    for event in events:
        assert chain.feed(event) == []
    with pytest.raises(Cutting) as info:
        chain.finish()  # `early` releases all five; the cutter cuts at the third
    assert info.value.events == events[:2] and info.value.cut.events == [TextDelta("\n\n[cut by a test filter]")]
    assert chain.filters == [] and [n.action for n in chain.notes] == ["cut"]


def test_a_cut_in_lane_text_drops_the_run() -> None:
    class CutLane(NoOp):
        def lane_text(self, literals):
            raise Cut("enough", events=[TextDelta("[stop]")])

    late = HoldAll()
    chain = FilterChain([CutLane(), late])
    chain.feed(TextDelta("before"))
    with pytest.raises(Cutting) as info:
        chain.lane_text([b'"looping"'])
    assert info.value.events == [TextDelta("before")]


def test_a_failing_filter_is_noted_dropped_and_its_held_events_salvaged() -> None:
    class HoldThenBoom(HoldAll):
        name = "flaky"

        def feed(self, event):
            if len(self.held) == 2:
                raise ValueError("bad state")
            return super().feed(event)

    after = Log("after")
    chain = FilterChain([HoldThenBoom(), after])
    assert chain.feed(TextDelta("a")) == [] and chain.feed(TextDelta("b")) == []
    assert chain.feed(TextDelta("c")) == [TextDelta("a"), TextDelta("b"), TextDelta("c")]
    assert [n.guard for n in chain.notes] == ["flaky"] and chain.notes[0].detail["error"] == "ValueError: bad state"
    assert chain.feed(TextDelta("d")) == [TextDelta("d")]  # dropped: the stream goes on without it
    assert len(chain.filters) == 1


def test_filter_events_for_a_whole_answer() -> None:
    events = [TextDelta("a"), TextDelta("b"), Stop("end_turn"), Usage(1, 2)]
    notes: list = []
    assert filter_events(events, [Boom(1)], notes) == events and [n.action for n in notes] == ["error"]
    cut = filter_events(events, [CutAt(1)], notes)
    assert cut == [TextDelta("a"), TextDelta("\n\n[cut by a test filter]"), Stop("end_turn"), Usage(1, 2)]


# -- the deferred lane: gated filters get gate-free runs kept, together ------------------------


class Gated(Log):
    """A filter with a lane gate: runs matching `gate` it must see at once; `open` says
    whether it would take any other run unchanged right now."""

    def __init__(self, name: str, gate: bytes = rb"<", take_text: bool = True) -> None:
        super().__init__(name, take_text)
        self.lane_gate = gate
        self.open = True

    def lane_open(self) -> bool:
        return self.open


def _runs(log):
    return [b"".join(lits) for how, lits in log if how == "lane"]


def test_gate_free_runs_are_kept_and_handed_over_before_anything_else() -> None:
    gated = Gated("gated")
    chain = FilterChain([gated])
    for n in range(5):
        assert chain.lane_text([f'"t{n}"'.encode()]) is None
    assert gated.log == []  # nothing called per run
    assert chain.feed(TextDelta("next")) == [TextDelta("next")]
    # the five runs, in order, in one call, before the event
    assert gated.log == [("lane", [b'"t0"', b'"t1"', b'"t2"', b'"t3"', b'"t4"']), ("feed", "next")]


def test_kept_runs_are_handed_over_once_enough_bytes_have_come_and_at_the_end() -> None:
    from agentwrap.protocols.filters import LANE_DEFER_BYTES

    gated = Gated("gated")
    chain = FilterChain([gated])
    literal = b'"' + b"x" * 30 + b'"'
    count = -(-LANE_DEFER_BYTES // len(literal))  # the first count to reach the bound
    for _ in range(count):
        chain.lane_text([literal])
    assert _runs(gated.log) == [literal * count]  # handed over when the bytes reached the bound
    chain.lane_text([b'"tail"'])
    assert chain.finish() == []
    assert _runs(gated.log) == [literal * count, b'"tail"']


def test_a_run_matching_the_gate_hands_over_what_was_kept_then_itself() -> None:
    class Picky(Gated):
        def lane_text(self, literals):
            super().lane_text(literals)
            return b"<" not in b"".join(literals)

    gated = Picky("gated")
    chain = FilterChain([gated])
    chain.lane_text([b'"plain "'])
    assert gated.log == []
    assert chain.lane_text([b'"<tag>"']) == [TextDelta("<tag>")]  # it declined the gated run: decoded, fed
    assert gated.log == [("lane", [b'"plain "']), ("lane", [b'"<tag>"']), ("feed", "<tag>")]


def test_a_closed_filter_is_asked_per_run() -> None:
    gated = Gated("gated")
    gated.open = False
    chain = FilterChain([gated])
    chain.lane_text([b'"a"'])
    chain.lane_text([b'"b"'])
    assert _runs(gated.log) == [b'"a"', b'"b"']


def test_a_filter_without_a_gate_is_asked_per_run_beside_a_gated_one() -> None:
    plain, gated = Log("plain"), Gated("gated")
    chain = FilterChain([plain, gated])
    assert chain.lane_text([b'"a"']) is None and chain.lane_text([b'"b"']) is None
    assert _runs(plain.log) == [b'"a"', b'"b"'] and gated.log == []
    chain.finish()
    assert gated.log == [("lane", [b'"a"', b'"b"'])]


def test_an_ungated_filter_declining_a_gate_free_run() -> None:
    """The gated filter before it gets the kept runs and the run; the decliner and the filters
    after it get the run decoded."""
    before, decliner, after = Gated("before"), Log("decliner", take_text=False), Gated("after")
    chain = FilterChain([before, decliner, after])
    decliner.take_text = True
    chain.lane_text([b'"one "'])
    decliner.take_text = False
    assert chain.lane_text([b'"two"']) == [TextDelta("two")]
    assert before.log == [("lane", [b'"one "']), ("lane", [b'"two"'])]
    assert after.log == [("lane", [b'"one "']), ("feed", "two")]
    assert decliner.log == [("lane", [b'"one "']), ("lane", [b'"two"']), ("feed", "two")]


def test_a_gated_filter_that_declines_kept_text_is_dropped_as_a_bug() -> None:
    liar = Gated("liar", take_text=False)
    chain = FilterChain([liar])
    chain.lane_text([b'"already sent"'])
    assert chain.feed(TextDelta("x")) == [TextDelta("x")]
    assert chain.filters == [] and chain.notes[0].action == "error" and chain.notes[0].guard == "liar"


def test_a_cut_while_handing_over_ends_the_stream_before_the_event() -> None:
    class CutOnLane(Gated):
        def lane_text(self, literals):
            raise Cut("loop", events=[TextDelta("[cut]")])

    chain = FilterChain([CutOnLane("cutter", gate=b"")])
    assert chain.lane_text([b'"kept"']) is None
    with pytest.raises(Cutting) as info:
        chain.feed(TextDelta("after"))
    assert info.value.events == [] and info.value.cut.events == [TextDelta("[cut]")]
    assert chain.filters == []
