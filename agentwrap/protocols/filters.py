"""Stream filters run as one chain: the middle of every guarded stream.

Theory of operation. `FilterChain` runs an ordered list of filters
(`guards.base.StreamFilter`) as one stage, for `StreamTranslator`
(translate/stream.py), `StreamTap` (tap.py) and whole answers
(`filter_response`, `filter_events`):

- `feed(event)` / `feed_all(events)`: each event goes through every filter in
  order; what a filter returns is what the next one sees;
- `lane_text(literals)`: a run of text deltas from the text lane goes to the
  `lane_text` of each filter that wants text (`wants_text`), in order. None
  means every one took it unchanged; if one declines, the run is decoded
  (one `json.loads`) into `TextDelta`s and fed from that filter on, and the
  events that come out are returned instead;
- `finish()`: the end of the stream; each filter first sees what the filters
  before it released, then releases what it holds;
- `holding`: whether some filter holds events. A filter that can hold says so
  with a `holding` attribute (`ToolRepair`); one without it never holds
  (`LoopGuard`, the translation adapter). The pipelines take the text lane
  and forward raw bytes only while nothing is held.

The deferred lane. A text event on the lane costs the pipeline a regex match
and a slice; calling every guard's `lane_text` per event would cost more
than that again (a Python call and its checks each). So a filter may declare
a gate: `lane_gate`, the source of a bytes regex (b"" for none) that finds
what it must see at once, and `lane_open()`, True while it would take any run
without a gate match unchanged. While every such filter is open, a run that
matches no gate is taken for them without a call: the chain keeps it and
hands the kept runs over together (`LANE_DEFER_BYTES` at a time, or before
anything else reaches the filters: another run, an event, the end). The run
has gone out meanwhile, which is what their `lane_text` returning True would
have let happen anyway; their state just moves later. A filter without a gate
(the key guard: it must see every byte before it goes out) is called per run
as before.

A filter raising `Cut` ends the stream: the chain raises `Cutting`, whose
`events` are what must reach the agent before the cut's own notice: what the
cutting filter passed before it (fed through the filters after it), then
whatever those later filters still held (their `finish()`), since it all came
before the cut point. What the filters before the cutting one still hold came
after it, and is dropped. The caller then sends `Cutting.events`,
`cut.events` and `Stop(cut.stop)` to its encoder and finishes it.

A filter raising anything else is our bug: the chain appends a `GuardNote`
(`action="error"`, naming the exception), salvages what the filter held
(its `finish()`, if that works), drops it for the rest of the stream and
carries on as if it had passed the event. `notes` collects every filter's
notes (`collect()`, which the pipelines call once per read) and these.

Sans-IO.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from agentwrap.errors import UpstreamProtocol
from agentwrap.guards.base import Cut, GuardNote
from agentwrap.protocols._json import dumps_bytes
from agentwrap.protocols.codec import codec
from agentwrap.protocols.neutral.events import NeutralEvent, Stop, TextDelta

__all__ = ["FilterChain", "Cutting", "filter_events", "filter_response", "LANE_DEFER_BYTES"]

LANE_DEFER_BYTES = 256  # gate-free lane text kept for the gated filters before they get it
_TAKEN = object()  # every filter without a gate took a run


class Cutting(Exception):
    """A filter cut the stream: send `events`, then `cut.events`, then `Stop(cut.stop)`, then finish."""

    def __init__(self, cut: Cut, events: list[NeutralEvent]) -> None:
        super().__init__(cut.reason)
        self.cut = cut
        self.events = events


class FilterChain:
    """An ordered list of stream filters run as one; see the module docstring."""

    __slots__ = ("filters", "notes", "texting", "_all", "_seen", "_holders", "_texters", "_lane_fns",
                 "_gated", "_gate", "_sync", "_only_gated", "_kept", "_kept_bytes")

    def __init__(self, filters: Iterable[Any]) -> None:
        self.filters: list[Any] = list(filters)
        self.notes: list[GuardNote] = []
        self._all = list(self.filters)  # notes are collected from dropped filters too
        self._seen = [0] * len(self._all)
        self._kept: list[bytes] = []  # gate-free lane runs the gated filters have not been given yet
        self._kept_bytes = 0
        self._lists()

    def _lists(self) -> None:
        self._holders = [f for f in self.filters if hasattr(f, "holding")]
        self._texters = [f for f in self.filters if getattr(f, "wants_text", True)]
        self._lane_fns = tuple(f.lane_text for f in self._texters)  # bound once: called per lane run
        self.texting = bool(self._texters)  # whether a filter wants the lane's text runs
        self._gated = tuple(f for f in self._texters if hasattr(f, "lane_gate"))
        gates = [f.lane_gate for f in self._gated if f.lane_gate]
        self._gate = re.compile(b"|".join(gates)).search if gates else None
        # per texter: its lane_text, or None for a gated one (taken by keeping the run)
        self._sync = tuple(None if hasattr(f, "lane_gate") else f.lane_text for f in self._texters)
        self._only_gated = len(self._gated) == len(self._texters)

    @property
    def holding(self) -> bool:
        """Whether a filter holds events back."""
        for f in self._holders:
            if f.holding:
                return True
        return False

    def collect(self) -> None:
        """Copy the filters' new notes into `notes`."""
        for k, f in enumerate(self._all):
            notes = getattr(f, "notes", None)
            if notes and len(notes) > self._seen[k]:
                self.notes += notes[self._seen[k] :]
                self._seen[k] = len(notes)

    # -- the stage interface -----------------------------------------------------------

    def feed(self, event: NeutralEvent) -> list[NeutralEvent]:
        """What the filters make of one event. Raises `Cutting`."""
        if self._kept:
            self._hand_over()
        return self._run(0, [event])

    def feed_all(self, events: list[NeutralEvent]) -> list[NeutralEvent]:
        """What the filters make of `events`, in order. Raises `Cutting`."""
        if self._kept:
            self._hand_over()
        return self._run(0, events) if events else events

    def lane_text(self, literals: list[bytes]) -> list[NeutralEvent] | None:
        """None when every filter that wants text took the run unchanged; else the events to
        send instead (the run decoded and fed from the filter that declined it on).
        Raises `Cutting` (the run is dropped)."""
        if self._gated:
            joined = literals[0] if len(literals) == 1 else b"".join(literals)
            gate = self._gate
            if (gate is None or gate(joined) is None) and (self._kept or self._open()):
                # Keep it for the gated filters; the others (if any) get it now.
                if not self._only_gated and (stopped := self._ungated(literals)) is not _TAKEN:
                    return stopped
                self._kept += literals
                self._kept_bytes += len(joined)
                if self._kept_bytes >= LANE_DEFER_BYTES:
                    self._hand_over()
                return None
            if self._kept:
                self._hand_over()
        return self._lane(literals)

    def _open(self) -> bool:
        for f in self._gated:
            if not f.lane_open():
                return False
        return True

    def _ungated(self, literals: list[bytes]) -> Any:
        """A gate-free run, to each filter without a gate: `_TAKEN` when all took it, else what
        the chain sends instead (as `_lane`)."""
        for k, fn in enumerate(self._sync):
            if fn is None:
                continue
            try:
                took = fn(literals)
            except Cut as cut:
                self._kept = []
                raise self._cutting(cut, self.filters.index(self._texters[k]), []) from None
            except Exception as exc:  # our bug: that filter goes, the ones after it get the run
                self._caught_up(k, literals)
                self._drop(self._texters[k], exc, "lane_text")
                return self._lane(literals, k)  # the ones after it moved down to k
            if not took:
                # It declined: the run decoded and fed from it on (the ones before it have it).
                self._caught_up(k, literals)
                return self._declined(literals, k)
        return _TAKEN

    def _caught_up(self, k: int, literals: list[bytes]) -> None:
        """The filter without a gate at texter `k` stopped a gate-free run: the gated filters get
        what was kept, and those before `k` the run as well (open and gate-free, they take it)."""
        self._hand_over()
        for f in self._texters[:k]:
            if hasattr(f, "lane_gate"):
                self._hand(f, literals)

    def _hand_over(self) -> None:
        """The kept runs to the gated filters, in order. Raises `Cutting`."""
        kept, self._kept, self._kept_bytes = self._kept, [], 0
        for f in self._gated:
            self._hand(f, kept)

    def _hand(self, f: Any, literals: list[bytes]) -> None:
        try:
            took = f.lane_text(literals)
        except Cut as cut:
            self._kept = []
            raise self._cutting(cut, self.filters.index(f), []) from None
        except Exception as exc:
            self._drop(f, exc, "lane_text")
            return
        if not took:  # it said it was open: the text has gone out, it can no longer act on it
            self._drop(f, RuntimeError("declined gate-free text while open"), "lane_text")

    def _lane(self, literals: list[bytes], start: int = 0) -> list[NeutralEvent] | None:
        fns = self._lane_fns
        while True:
            fn = None
            try:
                for fn in fns[start:] if start else fns:  # the common case: every filter takes the run
                    if not fn(literals):
                        break
                else:
                    return None
            except Cut as cut:
                raise self._cutting(cut, self.filters.index(self._texters[fns.index(fn)]), []) from None
            except Exception as exc:  # our bug: that filter goes, the rest still get the run
                k = fns.index(fn)
                self._drop(self._texters[k], exc, "lane_text")
                fns, start = self._lane_fns, k  # the ones after it moved down to k
                continue
            return self._declined(literals, fns.index(fn))

    def _declined(self, literals: list[bytes], k: int) -> list[NeutralEvent]:
        """Texter `k` declined the run: decoded and fed from its filter on (the ones before took it)."""
        texts = json.loads(b"[" + b",".join(literals) + b"]")
        return self._run(self.filters.index(self._texters[k]), [TextDelta(t) for t in texts if t])

    def finish(self) -> list[NeutralEvent]:
        """The end of the stream: everything still held, in order. Raises `Cutting`."""
        if self._kept:
            self._hand_over()
        return self._run(0, [], finishing=True)

    # -- the chain ---------------------------------------------------------------------

    def _run(self, start: int, events: list[NeutralEvent], finishing: bool = False) -> list[NeutralEvent]:
        i = start
        while i < len(self.filters):
            if not events and not finishing:
                return events
            f = self.filters[i]
            if len(events) == 1:
                try:
                    out = f.feed(events[0])
                except Cut as cut:
                    raise self._cutting(cut, i, []) from None
                except Exception as exc:
                    out = self._drop(f, exc, "feed", events[0])
            else:
                out = []
                for k, event in enumerate(events):
                    try:
                        out += f.feed(event)
                    except Cut as cut:
                        raise self._cutting(cut, i, out) from None
                    except Exception as exc:
                        out += self._drop(f, exc, "feed", event)
                        out += events[k + 1 :]
                        break
            if finishing and i < len(self.filters) and self.filters[i] is f:
                try:
                    out = out + f.finish()
                except Cut as cut:
                    raise self._cutting(cut, i, out) from None
                except Exception as exc:
                    self._drop(f, exc, "finish")
            if i < len(self.filters) and self.filters[i] is f:
                i += 1  # (else it was dropped: the next filter is at i now)
            events = out
        return events

    def _cutting(self, cut: Cut, i: int, passed: list[NeutralEvent]) -> Cutting:
        """What goes out before a cut raised by the filter at `i`: see the module docstring."""
        events = passed
        for f in self.filters[i + 1 :]:
            out: list[NeutralEvent] = []
            broken = False
            for k, event in enumerate(events):
                try:
                    out += f.feed(event)
                except Cut:
                    pass  # already cutting
                except Exception as exc:
                    out += self._drop(f, exc, "feed", event) + events[k + 1 :]
                    broken = True
                    break
            if not broken:
                try:
                    out += f.finish()
                except Cut:
                    pass
                except Exception as exc:
                    self._drop(f, exc, "finish")
            events = out
        self.filters = []  # nothing more goes through: the stream ends here
        self._kept = []
        self._lists()
        self.collect()
        return Cutting(cut, events)

    def _drop(self, f: Any, exc: Exception, during: str, event: Any = None) -> list[NeutralEvent]:
        """Record a filter's bug and drop it. From `feed`: return what it held (its `finish()`,
        if that works) and the event it failed on, unless that was among what it held."""
        self.notes.append(GuardNote(getattr(f, "name", type(f).__name__), "error",
                                    {"error": f"{type(exc).__name__}: {exc}", "during": during, "dropped": True}))
        self.filters = [g for g in self.filters if g is not f]
        self._lists()
        if during != "feed":
            return []
        try:
            salvaged = list(f.finish())
        except Exception:
            salvaged = []
        if not any(e is event for e in salvaged):
            salvaged.append(event)
        return salvaged


def filter_events(events: list[NeutralEvent], filters: Iterable[Any], notes: list | None = None) -> list[NeutralEvent]:
    """A whole answer's events through `filters` (a cut answer ends with the cut's notice and stop);
    every note made is appended to `notes`."""
    chain = FilterChain(filters)
    try:
        out = chain.feed_all(list(events)) + chain.finish()
    except Cutting as cutting:
        out = [*cutting.events, *cutting.cut.events, Stop(cutting.cut.stop)]
        out += [e for e in events if e.kind == "usage"][-1:]  # the answer's usage, for the agent's accounting
    chain.collect()
    if notes is not None:
        notes += chain.notes
    return out


def filter_response(protocol: str, body: bytes, filters: Iterable[Any], *, notes: list | None = None,
                    data: Any = None) -> bytes:
    """A whole (not streamed) 2xx answer in `protocol` through `filters`: `body` itself unless a
    filter changed something, else the answer re-encoded (`encode_response`). A body that is not
    the protocol's answer (not JSON, an error) is returned as it is. Notes go to `notes`;
    `data`: the body already parsed, if the caller has it."""
    try:
        if data is None:  # (a JSON null is parsed again, and is no answer either way)
            data = json.loads(body)
        events = codec(protocol).decode_response(data)
    except (ValueError, UnicodeDecodeError, UpstreamProtocol):
        return body
    if any(e.kind == "stream_error" for e in events):
        return body
    out = filter_events(events, filters, notes)
    if len(out) == len(events) and all(a is b or a == b for a, b in zip(out, events)):
        return body
    start = next((e for e in events if e.kind == "message_start"), None)
    created = next((data[k] for k in ("created", "created_at") if isinstance(data, dict) and type(data.get(k)) is int), 0)
    rendered = codec(protocol).encode_response(out, start.model if start else "", start.id if start else "", created=created)
    return dumps_bytes(rendered)
