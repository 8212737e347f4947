"""Encode capture events as bundle items: redacted, deduplicated CBOR.

Sans-IO: `BundleEncoder` turns the events a `Recorder` queues into the bytes
to append to the bundle file (see docs/bundle-format.md); it keeps the state
that spans items (bodies kept for deltas, stream redaction, run totals) and
never touches a file, a clock or a thread.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import Any

import cbor2

from agentwrap.capture.delta import BodyDeltas
from agentwrap.capture.redact import Redactor, StreamRedactor
from agentwrap.errors import NOT_FAILURES
from agentwrap.protocols.endpoints import protocol_of_target, protocol_of_url
from agentwrap.protocols.sse import is_sse

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "MAGIC", "BundleEncoder"]

FORMAT_NAME = "agentwrap-bundle"
FORMAT_VERSION = 2
# CBOR tag 55799 ("self-described CBOR", RFC 8949 section 3.4.6) on the header
# item: `file` and CBOR tools recognise the bundle, and foreign files are told
# apart by their first three bytes.
MAGIC = b"\xd9\xd9\xf7"
LOCATOR = struct.Struct(">BQ")  # CBOR uint in its 8-byte form: 0x1b + offset


class _Encoded:
    """CBOR bytes written as they are inside an item (`_default` splices them in)."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data


def _default(encoder: Any, value: Any) -> None:
    if type(value) is _Encoded:
        encoder.write(value.data)
        return
    # A safety net: `Redactor.value` already turned anything that is not plain data into text.
    encoder.encode(str(value))


def _array_head(n: int) -> bytes:
    """The head of a CBOR array of n items (RFC 8949 section 3)."""
    if n < 24:
        return bytes((0x80 | n,))
    if n < 0x100:
        return bytes((0x98, n))
    if n < 0x10000:
        return b"\x99" + n.to_bytes(2, "big")
    return b"\x9a" + n.to_bytes(4, "big")


def _dump(item: Any) -> bytes:
    return cbor2.dumps(item, default=_default)


CACHE_ENTRIES = 4096
MAX_TAPPED_BYTES = 64 * 1024 * 1024  # a longer response is recorded but its tokens are not counted


class _UsageTap:
    """Collects one response body to read its token usage when the exchange ends."""

    __slots__ = ("protocol", "sse", "body")

    def __init__(self, protocol: str, headers: list[tuple[str, str]]) -> None:
        self.protocol = protocol
        self.sse = is_sse(headers)
        self.body = bytearray()

    def feed(self, data: bytes) -> None:
        if len(self.body) + len(data) <= MAX_TAPPED_BYTES:
            self.body += data

    def usage(self) -> dict | None:
        # Imported here, on the writer thread: the session's start-up does not pay for it.
        from agentwrap.capture.answers import usage_of_body

        return usage_of_body(self.protocol, bytes(self.body), sse=self.sse)


def _usage_tap(protocol: str | None, headers: list[tuple[str, str]]) -> _UsageTap | None:
    return _UsageTap(protocol, headers) if protocol else None


class _Exchange:
    __slots__ = ("protocol", "up_protocol", "request_raw", "up", "agent", "chunks", "last_at", "tap", "upstream_seen", "status", "failed")

    def __init__(self, protocol: str | None, request_raw: bytes, redactor: Redactor) -> None:
        self.protocol = protocol
        self.up_protocol = protocol  # the backend's, once the upstream request is seen
        self.request_raw: bytes | None = request_raw
        self.up = StreamRedactor(redactor)
        self.agent = StreamRedactor(redactor)
        self.chunks = 0
        self.last_at = 0
        self.tap: _UsageTap | None = None
        self.upstream_seen = False
        self.status: int | None = None
        self.failed = False


class BundleEncoder:
    """Events in, bundle bytes out. `offset` is the number of bytes produced so far."""

    def __init__(self, secret_values: Iterable[str]) -> None:
        self.redactor = Redactor(secret_values)
        self._deltas = BodyDeltas(self.redactor)
        # An agent sends the same headers and targets with every request: each distinct
        # header pair and URL is redacted once (up to CACHE_ENTRIES of each).
        self._header_cache: dict[tuple, tuple[tuple[str, str], bytes]] = {}
        self._url_cache: dict[tuple, tuple[str, str | None]] = {}
        self._info_cache: dict[tuple, _Encoded] = {}
        self._open: dict[int, _Exchange] = {}
        self.offset = 0
        self.totals: dict[str, Any] = {
            "requests": 0, "upstream_requests": 0, "errors": 0, "request_bytes": 0, "response_bytes": 0, "tokens": None,
        }

    @property
    def exchanges_open(self) -> bool:
        """True while an exchange has begun and not ended."""
        return bool(self._open)

    def _emit(self, items: list[Any]) -> bytes:
        data = b"".join(_dump(i) for i in items)
        self.offset += len(data)
        return data

    def header(self, header: dict) -> bytes:
        fields = {k: v for k, v in self.redactor.value(dict(header)).items() if k not in ("t", "format", "version")}
        item = {"t": "header", "format": FORMAT_NAME, "version": FORMAT_VERSION, **fields}
        data = MAGIC + _dump(item)
        self.offset += len(data)
        return data

    def _headers(self, headers) -> tuple[list[tuple[str, str]], _Encoded]:
        """Redacted header pairs, and the CBOR array of them (each pair encoded once)."""
        cache = self._header_cache
        pairs, encoded = [], []
        for pair in headers:
            got = cache.get(pair)
            if got is None:
                redacted = self.redactor.headers((pair,))[0]
                got = (redacted, _dump(redacted))
                if len(cache) < CACHE_ENTRIES:
                    cache[pair] = got
            pairs.append(got[0])
            encoded.append(got[1])
        return pairs, _Encoded(_array_head(len(encoded)) + b"".join(encoded))

    def _url(self, url: str, protocol_of: Any) -> tuple[str, str | None]:
        """The redacted URL and its protocol (by `protocol_of`)."""
        key = (url, protocol_of)
        got = self._url_cache.get(key)
        if got is None:
            got = (self.redactor.url(url), protocol_of(url))
            if len(self._url_cache) < CACHE_ENTRIES:
                self._url_cache[key] = got
        return got

    def encode(self, op: tuple) -> bytes:
        """One queued event (a tuple whose first field names it) to bytes."""
        return getattr(self, "_" + op[0])(*op[1:])

    # -- events ------------------------------------------------------------------

    def _body(self, raw: bytes) -> Any:
        return self._deltas.encode(raw)

    def _request(self, xid: int, at: int, method: str, target: str, headers, body: bytes) -> bytes:
        target, protocol = self._url(target, protocol_of_target)
        self._open[xid] = _Exchange(protocol, body, self.redactor)
        self.totals["requests"] += 1
        self.totals["request_bytes"] += len(body)
        return self._emit([{"t": "request", "x": xid, "at": at, "method": method, "target": target,
                            "headers": self._headers(headers)[1], "body": self._body(body)}])

    def _ex(self, xid: int | None) -> _Exchange | None:
        return self._open.get(xid) if xid is not None else None

    def _route(self, xid: int, at: int, info: dict) -> bytes:
        # The routing decision is the same for most requests of a run: redacted and encoded once.
        try:
            key = tuple((k, tuple(v) if type(v) is list else v) for k, v in info.items())
            encoded = self._info_cache.get(key)
        except TypeError:  # a value that is not hashable: no cache
            key = encoded = None
        if encoded is None:
            encoded = _Encoded(_dump(self.redactor.value(dict(info))))
            if key is not None and len(self._info_cache) < CACHE_ENTRIES:
                self._info_cache[key] = encoded
        return self._emit([{"t": "route", "x": xid, "at": at, "info": encoded}])

    def _guard(self, xid: int | None, at: int, info: dict) -> bytes:
        return self._emit([{"t": "guard", "x": xid, "at": at, "info": self.redactor.value(dict(info))}])

    def _upstream_request(self, xid: int, at: int, method: str, url: str, headers, body: bytes) -> bytes:
        self.totals["upstream_requests"] += 1
        ex = self._ex(xid)
        url, protocol = self._url(url, protocol_of_url)
        if ex is not None:
            # A translated call speaks the backend's protocol: its usage is read in that one.
            ex.up_protocol = protocol or ex.protocol
        if ex is not None and ex.request_raw is not None and body == ex.request_raw:
            stored: Any = {"same_as": "request"}
        else:
            stored = self._body(body)
        if ex is not None:
            ex.request_raw = None
        return self._emit([{"t": "upstream_request", "x": xid, "at": at, "method": method, "url": url,
                            "headers": self._headers(headers)[1], "body": stored}])

    def _upstream_response(self, xid: int, at: int, status: int, headers) -> bytes:
        hs, encoded = self._headers(headers)
        ex = self._ex(xid)
        if ex is not None:
            ex.upstream_seen = True
            ex.status = status
            ex.tap = _usage_tap(ex.up_protocol, hs)
        return self._emit([{"t": "upstream_response", "x": xid, "at": at, "status": status, "headers": encoded}])

    def _tap(self, ex: _Exchange, data: bytes) -> None:
        if ex.tap is not None:
            try:
                ex.tap.feed(data)
            except Exception:  # token totals are a nicety; a parsing bug must not stop capture
                ex.tap = None

    def _chunk(self, xid: int, at: int, data: bytes) -> bytes:
        self.totals["response_bytes"] += len(data)
        ex = self._ex(xid)
        if ex is None:
            return self._emit([{"t": "chunk", "x": xid, "at": at, "data": self.redactor.bytes(data)}])
        ex.chunks += 1
        ex.last_at = at
        self._tap(ex, data)
        return self._emit([{"t": "chunk", "x": xid, "at": at, "data": ex.up.feed(data)}])

    def _chunks(self, xid: int, ats: list[int], datas: list[bytes]) -> bytes:
        """Consecutive upstream pieces of one exchange, as one `chunks` item (offsets and
        sizes per piece, the bytes joined and redacted once)."""
        data = b"".join(datas)
        self.totals["response_bytes"] += len(data)
        ex = self._ex(xid)
        sizes = [len(d) for d in datas]
        if ex is None:
            return self._emit([{"t": "chunks", "x": xid, "at": ats[0], "ats": ats, "sizes": sizes, "data": self.redactor.bytes(data)}])
        ex.chunks += len(datas)
        ex.last_at = ats[-1]
        self._tap(ex, data)
        return self._emit([{"t": "chunks", "x": xid, "at": ats[0], "ats": ats, "sizes": sizes, "data": ex.up.feed(data)}])

    def _stream_run(self, xid: int, run: list[tuple]) -> bytes:
        """Interleaved upstream and agent pieces of one exchange: one `chunks` item and one
        `agent_chunk` item holding all agent pieces (`ats`, `sizes`, `afters` per piece)."""
        ex = self._ex(xid)
        base = ex.chunks if ex is not None else 0
        up_ats, up_datas, ag_ats, ag_datas, afters = [], [], [], [], []
        for op in run:
            if op[0] == "chunk":
                up_ats.append(op[2])
                up_datas.append(op[3])
            else:
                ag_ats.append(op[2])
                ag_datas.append(op[3])
                afters.append(base + len(up_datas))
        out = [self._chunks(xid, up_ats, up_datas)] if up_datas else []
        if len(ag_datas) == 1:
            out.append(self._agent_chunk(xid, ag_ats[0], ag_datas[0], afters[0]))
        elif ag_datas:
            data = b"".join(ag_datas)
            if ex is not None and not ex.upstream_seen:
                self._tap(ex, data)
            stored = ex.agent.feed(data) if ex is not None else self.redactor.bytes(data)
            out.append(self._emit([{"t": "agent_chunk", "x": xid, "at": ag_ats[0], "after": afters[0], "data": stored,
                                    "ats": ag_ats, "sizes": [len(d) for d in ag_datas], "afters": afters}]))
        return b"".join(out)

    def _agent_response(self, xid: int, at: int, status: int, headers, body: bytes | None) -> bytes:
        hs, encoded = self._headers(headers)
        item: dict[str, Any] = {"t": "agent_response", "x": xid, "at": at, "status": status, "headers": encoded}
        if body is not None:
            # An answer, not a resent conversation: stored as it is (redacted).
            self.totals["response_bytes"] += len(body)
            item["body"] = self.redactor.bytes(body)
        ex = self._ex(xid)
        if ex is not None:
            ex.status = status
            if not ex.upstream_seen and ex.protocol:
                ex.tap = _usage_tap(ex.protocol, hs)
                self._tap(ex, body or b"")
        return self._emit([item])

    def _agent_chunk(self, xid: int, at: int, data: bytes, after: int | None = None) -> bytes:
        ex = self._ex(xid)
        if after is None:
            after = ex.chunks if ex is not None else 0
        if ex is not None and not ex.upstream_seen:
            self._tap(ex, data)
        stored = ex.agent.feed(data) if ex is not None else self.redactor.bytes(data)
        return self._emit([{"t": "agent_chunk", "x": xid, "at": at, "after": after, "data": stored}])

    def _error(self, xid: int | None, at: int, kind: str, message: str) -> bytes:
        ex = self._ex(xid)
        if kind in NOT_FAILURES:
            pass  # recorded, not counted
        elif ex is not None:
            ex.failed = True
        else:
            self.totals["errors"] += 1
        r = self.redactor
        return self._emit([{"t": "error", "x": xid, "at": at, "kind": r.text(kind), "message": r.text(message)}])

    def _close_exchange(self, xid: int, ex: _Exchange, at: int) -> list[dict]:
        """Items that release what an exchange still holds, and its share of the totals."""
        out: list[dict] = []
        held = ex.up.finish()
        if held:
            out.append({"t": "chunk", "x": xid, "at": ex.last_at or at, "data": held})
        held = ex.agent.finish()
        if held:
            out.append({"t": "agent_chunk", "x": xid, "at": at, "after": ex.chunks, "data": held})
        if ex.failed or (ex.status or 0) >= 400:
            self.totals["errors"] += 1
        if ex.tap is not None:
            try:
                usage = ex.tap.usage()
            except Exception:
                usage = None
            if usage:
                tokens = self.totals["tokens"] or dict.fromkeys(usage, 0)
                for k in tokens:
                    tokens[k] += usage.get(k, 0)
                self.totals["tokens"] = tokens
        return out

    def _end(self, xid: int, at: int) -> bytes:
        ex = self._open.pop(xid, None)
        out = self._close_exchange(xid, ex, at) if ex is not None else []
        out.append({"t": "end", "x": xid, "at": at})
        return self._emit(out)

    def footer(self, at: int, footer: dict) -> bytes:
        """The footer item and its locator; exchanges still open are released first."""
        out: list[dict] = []
        unfinished = list(self._open.items())
        self._open.clear()
        for xid, ex in unfinished:
            out.extend(self._close_exchange(xid, ex, at))
        totals = dict(self.totals, unfinished=len(unfinished))
        fields = self.redactor.value(dict(footer))
        totals.update(fields.pop("totals", None) or {})
        fields = {k: v for k, v in fields.items() if k not in ("t", "at")}
        head = self._emit(out)
        start = self.offset
        data = _dump({"t": "footer", "at": at, **fields, "totals": totals}) + LOCATOR.pack(0x1B, start)
        self.offset += len(data)
        return head + data
