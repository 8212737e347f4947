"""`LoopGuard`: the content-loop detector (`guards/loop.py`, whose docstring
holds the thresholds and their reasoning) as a stream filter.

Pure.
"""

from __future__ import annotations

from json.decoder import scanstring
from typing import Literal

from agentwrap.guards.base import Cut, GuardNote
from agentwrap.guards.loop import PATTERN_CHARS, LoopDetector, LoopFinding, Sensitivity
from agentwrap.protocols.neutral import NeutralEvent, TextDelta, ThinkingDelta, ToolCallStart

__all__ = ["LoopGuard", "LANE_BATCH_BYTES"]


def _ignore(text: str) -> None:
    return None


LANE_BATCH_BYTES = 256  # text-lane bytes gathered before the detector looks at them


class LoopGuard:
    """The loop guard as a stream filter: cuts (or warns about) a repetition loop.

    Text and thinking go to separate detectors; a tool call is a boundary for
    both. Every event passes unchanged. On a finding it appends a `GuardNote`
    and, for `action="cut"`, raises `Cut` with a one-line notice; for "warn" it
    records once and stops looking. `max_output_chars` (the request's output
    limit in characters, if known) gives the note's `chars_saved`: that limit
    less the output up to the loop's detection (text and thinking), at least 0.
    Raises ValueError for an unknown sensitivity or action.
    """

    name = "loop"
    wants_text = True

    def __init__(self, *, sensitivity: Sensitivity = "normal", action: Literal["cut", "warn"] = "cut",
                 max_output_chars: int | None = None) -> None:
        if action not in ("cut", "warn"):
            raise ValueError(f"Unknown loop guard action {action!r}: use cut or warn.")
        self.sensitivity = sensitivity
        self.action = action
        self.max_output_chars = max_output_chars
        self.notes: list[GuardNote] = []
        self._text = LoopDetector(sensitivity)
        self._thinking = LoopDetector(sensitivity)
        self._feed_text = self._text.feed  # bound once: this is the per-token path
        self._feed_thinking = self._thinking.feed
        self._pending: list[bytes] = []  # text-lane literals not looked at yet
        self._pending_bytes = 0

    def feed(self, event: NeutralEvent) -> list[NeutralEvent]:
        if self._pending:
            self._flush()
        kind = type(event)
        if kind is TextDelta:
            if (found := self._feed_text(event.text)) is not None:
                self._found(found, "text")
        elif kind is ThinkingDelta:
            if (found := self._feed_thinking(event.text)) is not None:
                self._found(found, "thinking")
        elif kind is ToolCallStart:
            self._text.boundary()
            self._thinking.boundary()
        return [event]

    def lane_text(self, literals: list[bytes]) -> bool:
        """Text-lane runs are gathered, undecoded, and looked at once `LANE_BATCH_BYTES` of them
        have come: the detector checks only every ~250 characters anyway (split-invariant), so
        a loop is found at most one batch later, and a run costs a list append."""
        if self._feed_text is _ignore:
            return True
        self._pending += literals
        self._pending_bytes += len(literals[0]) if len(literals) == 1 else sum(map(len, literals))
        if self._pending_bytes >= LANE_BATCH_BYTES:
            self._flush()
        return True

    def _flush(self) -> None:
        literals, self._pending, self._pending_bytes = self._pending, [], 0
        if self._feed_text is _ignore:
            return
        raw = b"".join(literals)
        if b"\\" not in raw:
            # No escapes: the only quotes are the literals' own.
            text = raw.replace(b'"', b"").decode()
        else:
            # The literals' contents joined are one JSON string's (an escape is whole
            # within its literal): one C scan for the batch. (A surrogate pair split
            # across two literals becomes one character here, two lone ones apart.)
            text = scanstring('"' + b"".join([lit[1:-1] for lit in literals]).decode() + '"', 1)[0]
        if (found := self._feed_text(text)) is not None:
            self._found(found, "text")

    def finish(self) -> list[NeutralEvent]:
        if self._pending:
            try:
                self._flush()
            except Cut:
                pass  # the answer is over: the loop is recorded, nothing is left to cut
        return []

    def _found(self, found: LoopFinding, lane: str) -> None:
        self._feed_text = self._feed_thinking = _ignore  # once per stream
        # Output so far: up to the loop's detection (whatever the split), and the other lane.
        other = self._thinking if lane == "text" else self._text
        seen = found.start_char + found.span_chars + other.chars
        saved = None if self.max_output_chars is None else max(0, self.max_output_chars - seen)
        self.notes.append(GuardNote("loop", self.action, {
            "pattern": found.unit[:PATTERN_CHARS],
            "unit_chars": found.unit_chars,
            "repeats": found.repeats,
            "span_chars": found.span_chars,
            "in": lane,
            "chars_saved": saved,
        }))
        if self.action == "cut":
            what = "character" if found.unit_chars == 1 else f"{found.unit_chars}-character passage"
            where = " in its thinking" if lane == "thinking" else ""
            notice = (f"\n\n[agentwrap stopped a repetition loop{where}: "
                      f"the same {what} repeated {found.repeats} times.]")
            raise Cut(f"repetition loop in {lane}: {found.unit_chars}-character unit x{found.repeats}",
                      events=[TextDelta(notice)])
