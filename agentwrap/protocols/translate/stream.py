"""Streamed translation: a backend's SSE bytes in, the agent protocol's SSE bytes out.

Theory of operation. `StreamTranslator` is a pipeline of stages with one shape:

    SseParser -> backend StreamDecoder -> [Adapter, *filters] -> agent StreamEncoder

and, beside it, the text lane (lane.py): once `LANE_AFTER` plain text deltas
have taken that path, their template is learned and matching events go from
the backend's bytes to the agent's without being decoded. The codecs' decoders
and encoders all offer the lane (`codec.LaneDecoder`, `codec.LaneEncoder`);
the lane is used only where it is exact, and byte-equal to the general path.
A malformed or truncated upstream stream becomes the agent protocol's error
event, never a hang or a silent cut.

Guards plug in as stream filters after the adapter (filters.py): a lane run
goes to each filter's `lane_text` and takes the lane only if all of them take
it (else it is decoded and fed from the one that declined), and only while no
filter holds anything. A filter's `Cut` ends the stream well-formed (`done`
turns True: the shell stops reading and closes the upstream); the filters'
notes collect in `notes`. Sans-IO.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from agentwrap.errors import UpstreamProtocol
from agentwrap.protocols import lane
from agentwrap.protocols.codec import codec
from agentwrap.protocols.neutral.events import NeutralEvent, Stop, StreamError, TextDelta, Usage
from agentwrap.protocols.sse import SseEvent, SseParser
from agentwrap.protocols.translate.adapter import Adapter
from agentwrap.protocols.translate.request import TranslationContext

if TYPE_CHECKING:
    from agentwrap.protocols.codec import LaneDecoder, LaneEncoder
    from agentwrap.protocols.filters import Cutting, FilterChain

__all__ = ["StreamTranslator"]


def _counts(usage: Usage) -> list[int]:
    return [usage.input_tokens, usage.output_tokens, usage.cache_read_tokens, usage.cache_write_tokens]


class StreamTranslator:
    """Backend SSE bytes in, agent SSE bytes out; any split of the input works.

    Never raises on upstream data: a malformed or truncated stream ends with
    the agent protocol's error event. Plain text deltas take the text lane
    (lane.py) once `LANE_AFTER` of them have taken the general path.
    `filters` run after the translation adapter (see the module docstring);
    `done` turns True when no more input is wanted (a cut, a failed stream):
    the shell should stop reading, call `finish()` and close the upstream.
    `notes` holds the filters' `GuardNote`s as they are made.
    """

    content_type = "text/event-stream"
    LANE_AFTER = 3  # general-path text deltas before a template is learned: the shortest answers never pay for it
    LEARN_SLICE = 1024  # bytes of a large chunk parsed at a time while the lane is being learned
    HOLD_MAX = 64 * 1024  # a longer unfinished event goes to the parser (and its size limit)

    def __init__(self, ctx: TranslationContext, filters: Iterable[Any] = ()) -> None:
        self.ctx = ctx
        self._parser = SseParser()
        self._decoder: LaneDecoder = codec(ctx.backend_protocol).StreamDecoder(ctx.id_hint)
        self._adapter = Adapter(ctx)
        self._chain: FilterChain | None = None
        self._filter = self._adapter.feed
        self._cutting: Any = ()  # the filters' Cutting, caught where it may come from (no filters: nothing)
        filters = list(filters)
        if filters:
            # Imported with the first filter: an unguarded stream never pays for the guards.
            from agentwrap.protocols.filters import Cutting, FilterChain

            self._cutting = Cutting
            self._chain = FilterChain([self._adapter, *filters])
            self._filter = self._chain.feed
        self._encoder: LaneEncoder | None = None
        self._failed = False
        self._finished = False
        self.done = False
        # The text lane: None until learned; False when this stream has none.
        self._lane: Any = None
        self._plain = 0  # text deltas seen on the general path
        self._held = b""  # an unfinished event the lane keeps from the parser
        self._usage_raw: list[bytes] = []  # usage objects the lane took, not yet merged
        self.lane_events = 0  # events translated on the lane (for tests and capture notes)
        self.lane_templates = 0  # templates learned (again when the stream's shape changed)
        self._eol = b""  # the stream's line end, from its first line: the lane's template uses it
        self._sep = b"\n\n"

    @property
    def notes(self) -> list:
        """The filters' `GuardNote`s so far, in order, and the notes of filters that failed."""
        if self._chain is None:
            return []
        self._chain.collect()
        return self._chain.notes

    def _emit(self, events: Iterable[NeutralEvent]) -> bytes:
        if self._finished:
            return b""
        out = []
        filt = self._filter
        try:
            for event in events:
                if self._encoder is None:
                    backend_id = event.id if event.kind == "message_start" else ""
                    self._encoder = self.ctx.agent_encoder(self.ctx.agent_response_id(backend_id))
                for adjusted in filt(event):
                    out.append(self._encoder.feed(adjusted))
        except self._cutting as exc:
            out.append(self._cut(exc))
        return b"".join(out)

    def _encode(self, events: list[NeutralEvent]) -> bytes:
        """Events that have been through the filters, to the encoder."""
        if self._encoder is None:
            self._encoder = self.ctx.agent_encoder(self.ctx.agent_response_id(""))
        feed = self._encoder.feed
        return b"".join([feed(e) for e in events])

    def _cut(self, cutting: Cutting) -> bytes:
        """A filter cut the stream: what it let through, its notice, a normal stop, the ending."""
        self.done = self._finished = True
        cut = cutting.cut
        out = self._encode([*cutting.events, *cut.events, Stop(cut.stop)])  # type: ignore[list-item]
        if self._usage_raw:
            out += self._encode([self._merged_usage()])
        return out + self._encoder.finish()

    def feed(self, chunk: bytes) -> bytes:
        """Translate one chunk of the backend's body."""
        if self._failed or self._finished:
            return b""
        out: list[bytes] = []
        try:
            if not self._eol and b"\n" in chunk:
                self._eol = b"\r\n" if chunk[chunk.index(b"\n") - 1 : chunk.index(b"\n")] == b"\r" else b"\n"
            if self._lane is None and len(chunk) > self.LEARN_SLICE:
                chunk = self._learning(chunk, out)
            if self._lane:
                chunk = self._run_lane(chunk, out)
            if chunk and not self.done:
                self._general(self._parser.feed(chunk), out)
        except UpstreamProtocol as exc:
            out.append(self._fail("api_error", f"agentwrap: {exc}"))
        except self._cutting as exc:
            out.append(self._cut(exc))
        return b"".join(out)

    def _learning(self, chunk: bytes, out: list[bytes]) -> bytes:
        """Take a large chunk through the general path in slices until the lane is learned
        (or known absent), so that the rest of the chunk can take it; return the rest."""
        size, pos, end = self.LEARN_SLICE, 0, len(chunk)
        while self._lane is None and pos < end:
            self._general(self._parser.feed(chunk[pos : pos + size]), out)
            pos += size
            if self._failed or self.done:
                return b""
        return chunk[pos:] if pos < end else b""

    def _general(self, events: list[SseEvent], out: list[bytes]) -> None:
        if self._usage_raw:
            out.append(self._flush_usage())
        decode = self._decoder.feed
        for sse in events:
            if self.done:
                return
            neutral = decode(sse)
            out.append(self._emit(neutral))
            if self._lane is not False and neutral and neutral[0].kind == "text_delta":
                # A plain text delta: alone, or with the usage a Gemini chunk always carries.
                # LANE_AFTER of them in a row on this path (none on the lane between) learn
                # the template, or learn it again when the stream's shape has changed.
                if len(neutral) == 1 or (len(neutral) == 2 and neutral[1].kind == "usage" and self._decoder.lane_usage_key):
                    if self._lane and self._lane.matches(self._raw(sse)):
                        continue  # the lane's own kind, here only for where the chunk was cut
                    self._plain += 1
                    if self._plain >= self.LANE_AFTER:
                        self._plain = 0
                        self._learn(sse, neutral[0].text, len(neutral) == 2)

    def _raw(self, sse: SseEvent) -> bytes:
        """The event's bytes as the lane sees them (the stream's line ends, no id line)."""
        eol = self._eol.decode()
        return ((f"event: {sse.event}{eol}" if sse.event is not None else "") + f"data: {sse.data}{eol}{eol}").encode()

    def _learn(self, sse: SseEvent, text: str, with_usage: bool) -> None:
        if self._encoder is None:
            self._lane = False
            return
        decoder = self._decoder
        usage_key = decoder.lane_usage_key if with_usage else None
        template = lane.learn(self._raw(sse), text, decoder.lane_locate, decoder.lane_volatile, usage_key, self._eol)
        self.lane_templates += template is not None
        if template is not None or self._lane is None:
            self._lane = template or False
        self._sep = self._eol + self._eol

    def _run_lane(self, chunk: bytes, out: list[bytes]) -> bytes:
        """Translate `chunk` event by event, lane events on the lane and the others on the
        general path; return what is left for the parser. An unfinished last event is held
        back (not given to the parser) so that the next chunk can start on the lane.

        Events are framed at the stream's blank lines (LF or CRLF, as learned): any such
        blank line ends an event, so each piece given to the parser leaves it idle."""
        if self._held:
            chunk, self._held = self._held + chunk, b""
        parser, sep = self._parser, self._sep
        pos = 0
        if not parser.idle:  # the end of an event that began on the general path
            end = chunk.find(sep)
            if end < 0:
                return chunk
            pos = end + len(sep)
            self._general(parser.feed(chunk[:pos]), out)
        ready, find, chain = self._decoder.lane_ready, chunk.find, self._chain
        while self._lane and not self._failed and not self.done and parser.idle and ready() and (chain is None or not chain.holding):
            template = self._lane  # learned again, maybe, by the general path below
            usages: list[bytes] | None = [] if template.has_usage else None
            literals, stop = template.scan(chunk, pos, usages)
            if literals:
                if not self._lane_run(literals, usages, out):
                    # The encoder cannot take them, or one is not UTF-8: the events before
                    # that one still take the lane, the general path decides from there.
                    pos = self._lane_one_by_one(template, chunk, pos, out)
                    break
                pos = stop
            end = find(sep, pos)
            if end < 0:
                if len(chunk) - pos > self.HOLD_MAX:
                    break
                self._held = chunk[pos:]
                return b""
            end += len(sep)
            self._general(parser.feed(chunk[pos:end]), out)
            pos = end
        return chunk[pos:] if pos else chunk

    def _lane_one_by_one(self, template: Any, chunk: bytes, pos: int, out: list[bytes]) -> int:
        """Take the lane's events at `pos` one at a time while each can; return where one could not."""
        while True:
            usages: list[bytes] | None = [] if template.has_usage else None
            literals, stop = template.scan(chunk, pos, usages, limit=1)
            if not literals or not self._lane_run(literals, usages, out):
                return pos
            pos = stop

    def _lane_run(self, literals: list[bytes], usages: list[bytes] | None, out: list[bytes]) -> bool:
        if usages:
            # Usage makes no bytes mid-stream in any encoder and merging keeps the latest
            # non-zero count of each kind, so a run's usage objects (valid JSON: the
            # template's grammar says so) are merged once, before the next event of the
            # general path or the end.
            last = self._usage_raw[-1] if self._usage_raw else None
            distinct = [u for u in usages if u != last and (last := u)]
        if b'""' in literals:
            literals = [lit for lit in literals if lit != b'""']  # empty texts make no delta
        if literals:
            joined = literals[0] if len(literals) == 1 else b",".join(literals)
            try:
                joined.decode()  # the template checked the escapes; this checks the UTF-8
            except UnicodeDecodeError:
                return False
            chain = self._chain
            if chain is None:
                run = self._encoder.text_run(literals, joined)
                if run is None:
                    return False
                self._adapter.lane_text(literals)
                self.lane_events += len(literals)
            else:
                # The filters first (one may cut here: the run is dropped); then the run takes
                # the lane if the encoder's open block takes text, else the general encoding.
                instead = chain.lane_text(literals)
                run = self._encoder.text_run(literals, joined) if instead is None else None
                if run is None:
                    events = instead if instead is not None else [TextDelta(t) for t in json.loads(b"[" + joined + b"]")]
                    run = self._encode(events)
                else:
                    self.lane_events += len(literals)
            self._plain = 0
            out.append(run)
        if usages:
            self._usage_raw += distinct
        return True

    def _flush_usage(self) -> bytes:
        """Merge the usage the lane has held back into the encoder (no bytes, as a rule)."""
        return self._emit([self._merged_usage()])

    def _merged_usage(self) -> Usage:
        raw = self._usage_raw
        self._usage_raw = []
        usage_of, keys = self._decoder.lane_usage, self._decoder.lane_usage_keys
        # The latest non-zero count of each kind: the last object's counts, and for a kind
        # it has none of, the latest earlier one that has (looked for only when one of that
        # kind's keys appears among the held objects at all).
        merged = usage_of(json.loads(raw[-1]))
        if len(raw) > 1:
            counts = _counts(merged)
            joined = b"".join(raw)
            need = [i for i, count in enumerate(counts) if not count and any(k in joined for k in keys[i])]
            n = len(raw) - 2
            while need and n >= 0:
                older = _counts(usage_of(json.loads(raw[n])))
                for i in [i for i in need if older[i]]:
                    counts[i] = older[i]
                    need.remove(i)
                n -= 1
            merged = Usage(*counts)
        return merged

    def finish(self) -> bytes:
        """End of the backend's body: the agent's closing events (or error), once."""
        if self._finished:
            return b""
        out = b""
        if not self._failed:
            try:
                if self._usage_raw:
                    out += self._flush_usage()
                held, self._held = self._held, b""
                for sse in self._parser.feed(held) + self._parser.finish():
                    out += self._emit(self._decoder.feed(sse))
                out += self._emit(self._decoder.finish())
                if self._chain is None:
                    out += self._emit(self._adapter.finish())
                elif not self.done:
                    out += self._encode(self._chain.finish())
            except UpstreamProtocol as exc:
                out += self._fail("api_error", f"agentwrap: {exc}")
            except self._cutting as exc:
                out += self._cut(exc)
        if self._finished:  # cut
            return out
        return out + self._close()

    def abort(self, error_type: str, message: str) -> bytes:
        """The transport failed mid-stream: the agent's error event and closing."""
        if self._finished:
            return b""
        out = b"" if self._failed else self._fail(error_type, message)
        return out + self._close()

    def _fail(self, error_type: str, message: str) -> bytes:
        self._failed = True
        error = StreamError(error_type, message, 504 if error_type == "timeout" else 502)
        # An error event may report the usage so far.
        out = (self._flush_usage() if self._usage_raw else b"") + self._emit([error])
        self.done = True
        return out

    def _close(self) -> bytes:
        self._finished = self.done = True
        if self._encoder is None:
            self._encoder = self.ctx.agent_encoder(self.ctx.agent_response_id(""))
        return self._encoder.finish()
