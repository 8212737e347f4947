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
