"""The shape every stream guard has: a pure filter over neutral events.

A pipeline is an ordered list of filters between a decoder and an encoder:

    backend StreamDecoder -> [filter, filter, ...] -> agent StreamEncoder

Each filter sees the events the filter before it let through:

- `feed(event)` returns what goes on: `[]` holds the event (the filter may
  release it later), `[event]` passes it, anything else rewrites it;
- `lane_text(literals) -> bool` is the text lane's entry: a run of plain
  text deltas as JSON string literals, still escaped (`b'"hello \\u00e9"'`).
  True means "passed unchanged" (the filter has taken the text into its
  state, as `feed` would for each delta); False means "give me these as
  `TextDelta` events through `feed`", and the filter must not have changed
  its state. The pipeline then decodes the run and feeds it from that
  filter on (the filters before it already passed it). A filter that does
  not need to see text sets `wants_text = False` and is never called with
  them; one that does decodes them only if it must (one `json.loads` per
  run). The lane is taken only while no filter holds anything: a filter
  that may hold says so with a `holding` attribute (True while it holds
  events back; `ToolRepair`), one without it never holds (`LoopGuard`);
- optional, for the deferred lane (protocols/filters.py): `lane_gate`, the
  source of a bytes regex finding text the filter must see before it goes
  out (b"": none), and `lane_open()`, True while any run without a match
  would pass unchanged. While open, such a filter gets gate-free runs
  together, a few hundred bytes at a time or before anything else reaches
  it, after they have gone out (`LoopGuard`, `ToolRepair`). The key guard
  has no gate: it must see every byte first;
- `finish()` is the end of the upstream stream: release what is held;
- `feed` and `lane_text` may raise `Cut`: the stream ends there, well-formed
  (the pipeline closes the upstream, sends `Cut.events` and a normal `Stop`
  through the encoder, which closes whatever block is open). The event (or
  lane run) that raised is dropped.

The pipelines that run filters: `protocols/filters.py` (`FilterChain`), used by
`protocols.translate.StreamTranslator`, `protocols.tap.StreamTap` and, for
whole answers, `filter_response` / `translate_response`.

A filter that changes the stream says so with a note (`GuardNote`) appended
to its `notes`, which capture records and the summary counts. A filter that
raises anything but `Cut` is our bug: the pipeline records the exception
with the filter's name, drops that filter for the rest of the stream and
keeps serving the agent.

Pure: nothing here does I/O, reads the clock or imports asyncio.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from agentwrap.protocols.neutral import NeutralEvent

__all__ = ["StreamFilter", "Cut", "GuardNote"]


@dataclass(slots=True)
class GuardNote:
    """What a guard did, for the capture bundle (`guard` item) and the run summary.

    `guard` names the guard ("loop", "tool_repair", ...), `action` what it did
    ("cut", "warn", "repaired", ...), `detail` the evidence as plain JSON values.
    """

    guard: str
    action: str
    detail: dict[str, Any] = field(default_factory=dict)

    def as_item(self) -> dict[str, Any]:
        return {"guard": self.guard, "action": self.action, **self.detail}


class Cut(Exception):
    """Raised by a filter to end the stream here, well-formed.

    `events` go to the agent before the stream is closed (typically one
    `TextDelta` with a notice); `stop` is the stop reason the agent gets
    ("end_turn" so that it carries on normally). The raising filter has
    already appended its `GuardNote`.
    """

    def __init__(self, reason: str, events: list[NeutralEvent] | None = None, stop: str = "end_turn") -> None:
        super().__init__(reason)
        self.reason = reason
        self.events = list(events or [])
        self.stop = stop


@runtime_checkable
class StreamFilter(Protocol):
    name: str
    wants_text: bool
    notes: list[GuardNote]

    def feed(self, event: NeutralEvent) -> list[NeutralEvent]: ...

    def lane_text(self, literals: list[bytes]) -> bool: ...

    def finish(self) -> list[NeutralEvent]: ...
