"""Properties of the tap over arbitrary answers (hypothesis): whatever the filters do
(pass, hold and release, rename a call, cut anywhere), for any split of the input,
the agent's stream is valid, and what the filters did not change is what came."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from agentwrap.guards import LoopGuard
from agentwrap.protocols.neutral import MessageStart, Stop, TextDelta, ThinkingDelta, ToolCallArgsDelta, ToolCallEnd, ToolCallStart, Usage
from tests.protocols.support import NOTICE, PROTOCOLS, CutAt, HoldAll, NoOp, Rename, encode, run_tap, splits, validate

_word = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=6)
_text = st.lists(_word, min_size=1, max_size=12).map(lambda ws: [TextDelta(w) for w in ws])


def _call(n: int, name: str) -> list:
    return [ToolCallStart(n, f"call_{n}", name), ToolCallArgsDelta(n, '{"a":'), ToolCallArgsDelta(n, f"{n}}}"), ToolCallEnd(n)]


_piece = st.one_of(_text, st.just([ThinkingDelta("hm "), ThinkingDelta("", {"signature": "c2ln", "thought_signature": "c2ln", "encrypted_content": "e"})]),
                   st.just([Usage(3, 4)]))


@st.composite
def answers(draw) -> list:
    pieces = draw(st.lists(_piece, min_size=1, max_size=5))
    calls = draw(st.lists(st.sampled_from(["Bash", "Read"]), max_size=2))
    body = [e for piece in pieces for e in piece]
    body += [e for n, name in enumerate(calls) for e in _call(n, name)]
    return [MessageStart("up_1", "m"), Usage(10, 0), *body, Stop("tool_use" if calls else "end_turn"), Usage(0, 7)]


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(PROTOCOLS), answers(), st.sampled_from(["noop", "hold", "rename", "cut"]), st.integers(0, 40), st.randoms(use_true_random=False))
def test_the_agents_stream_is_valid_whatever_the_filters_do(protocol: str, answer: list, what: str, k: int, rng: random.Random) -> None:
    data = encode(protocol, answer)
    expected = validate(protocol, data)
    filters = {"noop": [NoOp()], "hold": [HoldAll(k)], "rename": [Rename("Bash", "Shell")], "cut": [CutAt(k)]}[what]
    out, tap = run_tap(protocol, data, splits(data, rng, rng.randrange(0, 30)), [*filters, LoopGuard()])
    turn = validate(protocol, out)
    if what in ("noop", "hold"):
        assert out == data
    elif what == "rename":
        assert turn.text == expected.text and turn.stop == expected.stop
        assert [name for _, name, _ in turn.tools] == [name.replace("Bash", "Shell") for _, name, _ in expected.tools]
    else:
        seen = CutAt(10**9)
        run_tap(protocol, data, [], [seen])
        assert bool(tap.notes) == (k < seen.seen)
        counter = _Counter()
        run_tap(protocol, data, [], [counter])
        if k <= counter.stop_at:  # cut before the upstream's stop went out: the notice ends the text
            assert turn.text.endswith(NOTICE.strip()) and turn.error is None


class _Counter(NoOp):
    def __init__(self) -> None:
        super().__init__()
        self.n, self.stop_at = 0, 10**9

    def feed(self, event):
        if isinstance(event, Stop) and self.stop_at == 10**9:
            self.stop_at = self.n
        self.n += 1
        return [event]

    def lane_text(self, literals):
        return False
