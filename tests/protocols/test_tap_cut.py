"""A cut anywhere in a pass-through stream ends it valid (protocols/tap.py, resume.py).

For every recorded stream of each protocol and streams made with each encoder,
and every event k a filter sees, a filter cutting on the k-th event gives a
stream the grammar validators accept (tests/support/grammar.py; a recorded upstream's
own deviations tolerated, see tests/protocols/support.py), whose last text is
the cut's notice and whose stop reason is a normal one, unless the upstream's
own stop had already gone out before the cut.
"""

from __future__ import annotations

import random

import pytest

from agentwrap.protocols.neutral import Stop, StreamError
from tests.protocols.support import NOTICE, PROTOCOLS, CutAt, NoOp, event_cuts, run_tap, splits, streams, validate

NORMAL_STOPS = {
    "anthropic_messages": {"end_turn", "tool_use"},
    "openai_chat": {"stop", "tool_calls"},
    "openai_responses": {"completed"},
    "gemini": {"STOP"},
}


class Recorder(NoOp):
    """Sees every event (declines lane runs) and records them."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list = []

    def feed(self, event):
        self.events.append(event)
        return [event]

    def lane_text(self, literals):
        return False


def _cases() -> list[tuple[str, str, bytes]]:
    return [(protocol, name, data) for protocol in PROTOCOLS for name, data in streams(protocol)]


@pytest.mark.parametrize(("protocol", "name", "data"), _cases(), ids=[c[1] for c in _cases()])
def test_a_cut_at_every_event_ends_the_stream_valid(protocol: str, name: str, data: bytes) -> None:
    recorder = Recorder()
    run_tap(protocol, data, [], [recorder])
    seen = recorder.events
    last = next((n for n, e in enumerate(seen) if isinstance(e, (Stop, StreamError))), len(seen))
    rng = random.Random(name)
    assert seen, name
    for k in range(len(seen)):
        for cuts in ([], splits(data, rng, 6), event_cuts(data)):
            cutter = CutAt(k)
            out, tap = run_tap(protocol, data, cuts, [cutter])
            assert tap.done
            turn = validate(protocol, out, name)
            if k <= last:
                assert turn.text.endswith(NOTICE.strip("\n")) and turn.text.count(NOTICE.strip("\n")) == 1, (k, turn.text[-80:])
                assert turn.error is None and turn.stop in NORMAL_STOPS[protocol], (k, turn.stop)
            else:  # the upstream's stop went out before the cut
                assert NOTICE.strip("\n") not in out.decode()
            assert [n.action for n in tap.notes] == ["cut"]
