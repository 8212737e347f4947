"""The pass-through tap: stream filters on a stream the agent gets in its own protocol.

Theory of operation (docs/architecture.md, "Guards: the stream-filter
pipeline"). When agent and upstream speak the same protocol, the upstream's
bytes are the answer: `StreamTap` forwards them and lets filters watch,
hold, rewrite or cut.

- The stream is framed at its blank lines (LF or CRLF, as it uses;
  framing.py); an unfinished event waits for the next read, up to
  `max_event_bytes`.
- Text events are matched by the text lane (lane.py), learned from the
  stream's own events against the same protocol's decoder: a run of them
  goes to the filters as JSON string literals (`lane_text`) once per read,
  and out as one slice of the input, never decoded.
- Other events go through the protocol's `StreamDecoder`: filters see
  neutral events, and the decoder keeps the state of what the agent has
  received (resume.py). An event the neutral model does not know (ping, a
  new block type, a server-tool item) decodes to nothing and passes as it came.
- While a filter holds events, their bytes wait in a window; once the
  filters have let out exactly what a prefix of it decoded to, that
  prefix's bytes go out unchanged (a valid tool call: byte for byte).
- When they let out something else, `StreamEncoder.resume(state)` encodes
  it, and the rest of the stream goes through that encoder (with the
  encoder's text lane), so indices, ids, sequence numbers and closing
  events stay consistent; events the neutral model does not carry are
  dropped from then on.
- A cut, and malformed upstream data (not JSON or UTF-8, an oversized event,
  a stream ending mid-event or without its last event), end the stream
  through the resumed encoder: the notice and a normal stop, or the
  protocol's error event, then its proper ending; `done` turns True. A
  stream that ended without its closing event gets it.

With no filters nobody builds a tap: the proxy relays bytes as they come.
The shape is `StreamTranslator`'s: `feed(bytes) -> bytes`, `finish()`,
`abort(kind, message)`, `done`, `notes`. Sans-IO.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from agentwrap.errors import UpstreamProtocol
from agentwrap.protocols import lane
from agentwrap.protocols.codec import codec
from agentwrap.protocols.filters import Cutting, FilterChain
from agentwrap.protocols.framing import EventFramer
from agentwrap.protocols.neutral.events import MessageStart, NeutralEvent, Stop, StreamError, TextDelta
from agentwrap.protocols.sse import MAX_SSE_EVENT_BYTES, SseParser

__all__ = ["StreamTap", "MAX_WINDOW_BYTES"]

MAX_WINDOW_BYTES = 32 * 1024 * 1024  # raw bytes held for the filters; beyond, the rest is re-encoded


def _same(outs: list, ins: list) -> bool:
    return len(outs) == len(ins) and all(a is b or a == b for a, b in zip(outs, ins))


class StreamTap:
    """The agent protocol's SSE bytes in, the same out, with filters; see the module docstring.

    Never raises on upstream data. `lane_events` counts the text events that
    went by on the lane (for tests and capture notes).
    """

    content_type = "text/event-stream"
    LANE_AFTER = 3  # decoded text deltas before the lane is learned (as in StreamTranslator)

    def __init__(self, protocol: str, filters: Iterable[Any] = (), *, id_hint: str = "",
                 max_event_bytes: int = MAX_SSE_EVENT_BYTES) -> None:
        self.protocol = protocol
        self._codec = codec(protocol)
        self._decoder: Any = self._codec.StreamDecoder(id_hint)
        self._observes = getattr(self._decoder, "lane_observes", True)
        self._chain = FilterChain(filters)
        self.done = False
        self.lane_events = 0
        self._id_hint = id_hint
        self._parser = SseParser(max_event_bytes)
        self._framer = EventFramer(max_event_bytes)
        self._lane: Any = None  # None until learned; False when this stream has none
        self._plain = 0
        self._encoder: Any = None  # once something was rewritten: the encoder of the rest
        self._window: list[tuple[bytes | None, Any, int]] = []  # held: (raw bytes, what to observe, inputs)
        self._w_in: list[NeutralEvent] = []  # what the held events decoded to
        self._w_out: list[NeutralEvent] = []  # what the filters let out meanwhile
        self._w_bytes = 0
        self._start: MessageStart | None = None  # the stream's ids, even if its start never went out

    # -- the stage interface ---------------------------------------------------------------

    @property
    def notes(self) -> list:
        """Every filter's `GuardNote`s so far, in order, and the notes of filters that failed."""
        self._chain.collect()
        return self._chain.notes

    @property
    def reencoded(self) -> bool:
        """True once the output stopped being the upstream's own bytes (a rewrite, a cut, an
        error event): from then on the resumed encoder writes the rest."""
        return self._encoder is not None

    def feed(self, chunk: bytes) -> bytes:
        """Take one chunk of the upstream's body; return what goes to the agent now."""
        if self.done or not chunk:
            return b""
        out: list[bytes]
        template = self._lane
        if template and not self._framer.pieces and self._encoder is None and not self._window and self._decoder.lane_ready():
            # The common read of a slow stream: exactly one text event, passed on as it came.
            m = template.one(chunk)
            if m is not None and (literal := m["t"]) != b'""' and literal.isascii():
                try:
                    instead = self._chain.lane_text([literal]) if self._chain.texting else None
                except Cutting as cutting:
                    out = []
                    self._cut(cutting, out)
                    return b"".join(out)
                if instead is None:
                    self.lane_events += 1
                    self._plain = 0
                    if self._observes:
                        self._decoder.observe_lane([literal], chunk, m["u"] if template.has_usage else None)
                    return chunk
                out = []
                self.lane_events += 1
                self._pass(chunk, ([literal], chunk, m["u"] if template.has_usage else None),
                           [TextDelta(json.loads(literal))], instead, out)
                return b"".join(out)
        out = []
        try:
            framer = self._framer
            if framer.pieces or not framer.eol:
                chunk = framer.gather(chunk)
            if chunk:
                self._frame(chunk, out)
        except UpstreamProtocol as exc:
            self._fail("api_error", f"agentwrap: {exc}", out)
        except Cutting as cutting:
            self._cut(cutting, out)
        return out[0] if len(out) == 1 else b"".join(out)

    def finish(self) -> bytes:
        """End of the upstream's body: what is left, and the proper ending if it was missing."""
        if self.done:
            return b""
        self.done = True
        out: list[bytes] = []
        try:
            rest = self._framer.take()
            if rest.strip(b"\r\n"):  # a last event without its blank line: complete it
                eol = self._framer.eol or b"\n"
                self._event(rest + (eol if rest.endswith(eol) else eol + eol), out)
            elif rest and self._encoder is None:
                self._pass(rest, [], [], [], out)  # line ends only: in order with the rest
            tail = self._decoder.finish()
            outs = self._chain.feed_all(tail) + self._chain.finish()
            if self._encoder is None:
                if tail:
                    self._window.append((None, None, len(tail)))  # made here: cannot go out as bytes
                self._w_in += tail
                self._w_out += outs
                self._settle(out)
                if self._encoder is None and (self._window or not self._decoder.state().ended):
                    self._settle(out, force=True)  # close what the upstream left open
            else:
                self._encode(outs, out)
            if self._encoder is not None:
                out.append(self._encoder.finish())
        except UpstreamProtocol as exc:
            self._fail("api_error", f"agentwrap: {exc}", out)
        except Cutting as cutting:
            self._cut(cutting, out)
        return b"".join(out)

    def abort(self, error_type: str, message: str) -> bytes:
        """The transport failed mid-stream: the protocol's error event and a valid end."""
        if self.done:
            return b""
        out: list[bytes] = []
        self._fail(error_type, message, out)
        return b"".join(out)

    # -- framing ---------------------------------------------------------------------------

    def _frame(self, data: bytes, out: list[bytes]) -> None:
        sep = self._framer.sep
        size = len(sep)
        find, chain, decoder = data.find, self._chain, self._decoder
        pos = 0
        while True:
            template = self._lane
            # The lane while nothing is held: passing its bytes on (nothing held in the window
            # means no filter holds anything), or re-encoding (the filters say).
            if template and (not self._window if self._encoder is None else not chain.holding) and decoder.lane_ready():
                usages: list[bytes] | None = [] if template.has_usage else None
                literals, stop = template.scan(data, pos, usages)
                if literals:
                    pos = self._lane_run(data, pos, stop, literals, usages, out)
                    if self.done:
                        return
            end = find(sep, pos)
            if end < 0:
                break
            end += size
            self._event(data[pos:end], out)
            pos = end
            if self.done:
                return
        if pos < len(data):
            self._framer.keep(data, pos)

    # -- events ----------------------------------------------------------------------------

    def _event(self, raw: bytes, out: list[bytes]) -> None:
        """One framed event through the decoder and the filters."""
        sses = self._parser.feed(raw)
        decoder = self._decoder
        if len(sses) == 1:
            neutral = decoder.feed(sses[0])
            seen: Any = [decoder.data]
        else:
            neutral, seen = [], []
            for sse in sses:
                neutral += decoder.feed(sse)
                seen.append(decoder.data)
        if neutral:
            first = neutral[0]
            if self._start is None and type(first) is MessageStart:
                self._start = first
            elif type(first) is TextDelta and self._lane is not False and len(sses) == 1:
                self._learn(raw, neutral)
        if self._encoder is not None:
            if neutral:
                self._encode(self._chain.feed_all(neutral), out)
            return
        outs = self._chain.feed_all(neutral) if neutral else neutral
        self._pass(raw, seen, neutral, outs, out)

    def _learn(self, raw: bytes, neutral: list[NeutralEvent]) -> None:
        """A decoded plain text delta: LANE_AFTER of them learn the lane (again, if the
        stream's shape has changed), as in `StreamTranslator`."""
        decoder = self._decoder
        with_usage = len(neutral) == 2 and neutral[1].kind == "usage" and decoder.lane_usage_key
        if len(neutral) != 1 and not with_usage:
            return
        if self._lane and self._lane.matches(raw):
            return  # the lane's own kind, decoded only because something was held
        self._plain += 1
        if self._plain < self.LANE_AFTER:
            return
        self._plain = 0
        template = lane.learn(raw, neutral[0].text, decoder.lane_locate, decoder.lane_volatile,
                              decoder.lane_usage_key if with_usage else None, self._framer.eol or b"\n")
        if template is not None or self._lane is None:
            self._lane = template or False

    def _lane_run(self, data: bytes, pos: int, stop: int, literals: list[bytes], usages: list[bytes] | None,
                  out: list[bytes]) -> int:
        """A run of text events the lane matched at `pos`; return where the framing goes on."""
        texts = [lit for lit in literals if lit != b'""'] if b'""' in literals else literals
        joined = b",".join(texts)
        try:
            joined.isascii() or joined.decode()  # the template checked the escapes; this checks the UTF-8
        except UnicodeDecodeError:
            if len(literals) == 1:
                return pos  # the decoder says what is wrong with it
            while True:  # the good ones before it still take the lane
                its_usage: list[bytes] | None = [] if usages is not None else None
                one, end = self._lane.scan(data, pos, its_usage, limit=1)
                if not one:
                    return pos
                pos = self._lane_run(data, pos, end, one, its_usage, out)
                if pos != end or self.done:
                    return pos
        self.lane_events += len(literals)
        self._plain = 0
        chain = self._chain
        instead = chain.lane_text(texts) if texts and chain.texting else None
        usage = usages[-1] if usages else None
        encoder = self._encoder
        if encoder is None:
            raw = data[pos:stop]
            if instead is None:
                out.append(raw)
                self._decoder.observe_lane(literals, raw, usage)
            else:
                inputs = [TextDelta(t) for t in json.loads(b"[" + joined + b"]")]
                self._pass(raw, (literals, raw, usage), inputs, instead, out)
            return stop
        run = encoder.text_run(texts, joined) if instead is None and texts else None
        if run is not None:
            out.append(run)
        else:
            self._encode(instead if instead is not None else [TextDelta(t) for t in json.loads(b"[" + joined + b"]")], out)
        if usage is not None:  # the usage so far (Gemini): no bytes before the end
            encoder.feed(self._decoder.lane_usage(json.loads(usage)))
        return stop

    # -- the window of held events ----------------------------------------------------------

    def _pass(self, raw: bytes | None, seen: Any, inputs: list, outs: list, out: list[bytes]) -> None:
        """An event the filters have seen: its bytes go out now if they let it pass as it came
        and nothing is held, else it joins the window."""
        window = self._window
        if not window and _same(outs, inputs) and not self._chain.holding:
            out.append(raw)  # type: ignore[arg-type]
            self._observe(seen)
            return
        window.append((raw, seen, len(inputs)))
        self._w_in += inputs
        self._w_out += outs
        self._w_bytes += len(raw or b"")
        self._settle(out, force=self._w_bytes > MAX_WINDOW_BYTES)

    def _observe(self, seen: Any) -> None:
        if type(seen) is tuple:
            self._decoder.observe_lane(*seen)
        else:
            for data in seen:
                self._decoder.observe(data)

    def _settle(self, out: list[bytes], force: bool = False) -> None:
        """Send the window's events whose filtered events are exactly what they decoded to, as
        their bytes; when the filters let out something else (or `force`), resume the
        encoder from what was sent and encode what they let out: the rest is re-encoded."""
        window, w_in, w_out = self._window, self._w_in, self._w_out
        n, limit = 0, min(len(w_in), len(w_out))
        while n < limit and (w_out[n] is w_in[n] or w_out[n] == w_in[n]):
            n += 1
        covered = k = 0
        for raw, seen, count in window:
            if raw is None or covered + count > n:
                break
            covered += count
            k += 1
            out.append(raw)
            self._observe(seen)
            self._w_bytes -= len(raw)
        if k:
            del window[:k], w_in[:covered], w_out[:covered]
            n -= covered
        diverged = n < len(w_out) or (len(w_out) < len(w_in) and not self._chain.holding)
        if not (force or diverged):
            return
        self._resume()
        events = list(w_out)
        window.clear()
        w_in.clear()
        w_out.clear()
        self._w_bytes = 0
        self._encode(events, out)

    def _resume(self) -> None:
        if self._encoder is not None:
            return
        state = self._decoder.state()
        start = self._start
        if not state.response_id:
            state.response_id = start.id if start is not None and start.id else self._id_hint or "agentwrap"
        if not state.model:
            state.model = start.model if start is not None and start.model else "unknown"
        self._encoder = self._codec.StreamEncoder.resume(state)

    def _encode(self, events: list[NeutralEvent], out: list[bytes]) -> None:
        feed = self._encoder.feed
        for event in events:
            out.append(feed(event))

    # -- endings ---------------------------------------------------------------------------

    def _cut(self, cutting: Cutting, out: list[bytes]) -> None:
        """A filter cut the stream: what the filters let through before it, the notice, a
        normal stop and the protocol's ending, from the resumed encoder."""
        self.done = True
        self._framer.take()
        if self._encoder is None:
            self._w_out += cutting.events
            self._settle(out, force=True)
        else:
            self._encode(cutting.events, out)
        cut = cutting.cut
        self._encode([*cut.events, Stop(cut.stop)], out)  # type: ignore[list-item]
        out.append(self._encoder.finish())

    def _fail(self, error_type: str, message: str, out: list[bytes]) -> None:
        """The upstream's data is broken (or its transport failed): what the filters held, the
        protocol's error event and a valid end. The unfinished event is dropped."""
        self.done = True
        self._framer.take()
        error = StreamError(error_type, message, 504 if error_type == "timeout" else 502)  # type: ignore[arg-type]
        try:
            outs = self._chain.feed(error)
        except Cutting as cutting:
            outs = [*cutting.events, error]
        if self._encoder is None:
            self._window.append((None, None, 1))
            self._w_in.append(error)
            self._w_out += outs
            self._settle(out, force=True)
        else:
            self._encode(outs, out)
        out.append(self._encoder.finish())
