"""A capture bundle as read back: the run's header and footer, and each exchange with its
four legs (the agent's request, the upstream request, the upstream response, what the
agent got), routes and attempts, guard notes and errors. Plain data; `reader.py` fills it."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from agentwrap.capture.dedup import serialise
from agentwrap.capture.writer import FORMAT_VERSION
from agentwrap.errors import BundleFormatError

if TYPE_CHECKING:
    from agentwrap.capture.dedup import Expander
    from agentwrap.capture.delta import DeltaBodies

__all__ = ["Body", "Bundle", "Chunk", "ErrorRecord", "Exchange", "HttpRequest", "HttpResponse", "RouteRecord"]


class Body:
    """A recorded body: bytes stored as they were, as parts of earlier bodies
    (`{"id", "parts"}`, version 2), or a JSON value stored deduplicated
    (`{"json", "style"}`, version 1).

    `exact` is False when a version 1 body was JSON that no known
    serialisation style reproduces byte for byte; `bytes` then parses to the
    same JSON value. Raises `BundleFormatError` when a body refers to content
    the bundle does not hold.
    """

    __slots__ = ("_stored", "_expander", "_deltas", "_path", "_value", "_bytes")

    def __init__(self, stored: Any, expander: Expander, path: str, deltas: DeltaBodies | None = None) -> None:
        self._stored = stored
        self._expander = expander
        self._deltas = deltas
        self._path = path
        self._value: Any = _UNSET
        self._bytes: bytes | None = None

    @property
    def is_json(self) -> bool:
        """True when the body is stored as a JSON value (version 1 bundles)."""
        return isinstance(self._stored, dict) and "json" in self._stored

    @property
    def is_delta(self) -> bool:
        """True when the body is stored as parts of earlier bodies (version 2)."""
        return isinstance(self._stored, dict) and "parts" in self._stored

    @property
    def exact(self) -> bool:
        return not self.is_json or self._stored.get("style") is not None

    @property
    def json(self) -> Any:
        """The body's JSON value (shared with other bodies: read-only), or None if it is not JSON."""
        if self._value is _UNSET:
            if self.is_json:
                try:
                    self._value = self._expander.expand(self._stored["json"])
                except KeyError as exc:
                    missing = exc.args[0].hex()[:16] if exc.args and isinstance(exc.args[0], bytes) else "?"
                    raise BundleFormatError(
                        f"{self._path}: a body refers to content missing from the bundle ({missing})"
                    ) from None
            else:
                data = self.bytes
                try:
                    self._value = json.loads(data) if data else None
                except (ValueError, RecursionError):
                    self._value = None
        return self._value

    def text_field(self, key: str) -> str | None:
        """A top-level text value of a JSON object body (its `model`, say), without expanding the rest."""
        if self.is_json:
            top = self._stored.get("json")
            value = top.get(key) if isinstance(top, dict) else None
            if isinstance(value, bytes):  # a reference: a long text stored as a blob of its own
                try:
                    value = self._expander.expand(value)
                except KeyError:
                    return None
        else:
            value = _leading_text(self.bytes, key) if self._value is _UNSET else _UNSET
            if value is _UNSET:
                top = self.json
                value = top.get(key) if isinstance(top, dict) else None
        return value if isinstance(value, str) else None

    @property
    def bytes(self) -> bytes:
        if self._bytes is None:
            if self.is_json:
                self._bytes = serialise(self.json, self._stored.get("style"))
            elif self.is_delta:
                try:
                    self._bytes = self._deltas.bytes(self._stored["id"])
                except (KeyError, AttributeError):
                    raise BundleFormatError(f"{self._path}: a body refers to content missing from the bundle") from None
            else:
                self._bytes = bytes(self._stored or b"")
        return self._bytes


_UNSET = object()
_FIRST_TEXT = re.compile(rb'\{[ \t\r\n]*"([A-Za-z_]+)"[ \t\r\n]*:[ \t\r\n]*("(?:[^"\\]|\\.)*")[ \t\r\n]*([,}])')


def _leading_text(data: bytes, key: str) -> Any:
    """The text value of `key` when it is the first field of a JSON object body (a request's
    `model` usually is), without parsing the rest; `_UNSET` when it cannot tell. (Of a key
    given twice, a full parse would take the last; no agent sends that.)"""
    m = _FIRST_TEXT.match(data)
    if m is None or m.group(1) != key.encode():
        return _UNSET
    try:
        return json.loads(m.group(2))
    except (ValueError, UnicodeDecodeError):
        return _UNSET


@dataclass(slots=True)
class Chunk:
    at_ns: int
    data: bytes
    after: int = 0  # agent chunks: how many upstream chunks the agent had got before this one


@dataclass(slots=True)
class ErrorRecord:
    at_ns: int
    kind: str
    message: str


@dataclass(slots=True)
class RouteRecord:
    """One `route` item: the routing decision, or (with an `attempt` key) how one attempt went."""

    at_ns: int
    info: dict


@dataclass(slots=True)
class HttpRequest:
    at_ns: int
    method: str
    target: str  # the agent's request target, or the upstream URL
    headers: list[tuple[str, str]]
    body: Body


@dataclass(slots=True)
class HttpResponse:
    at_ns: int
    status: int
    headers: list[tuple[str, str]]
    body: Body | None = None  # only agent responses carry one


@dataclass
class Exchange:
    """One request of the agent and everything that followed from it.

    `routes` holds every `route` item in order: the routing decision (backend,
    model, reason, fallbacks) and, after a failover or a retry, one item per
    attempt (`attempt`, `backend`, `outcome`, `decision`, `why`), each recorded
    when its attempt had ended. `route` is the decision's info (the last item
    without `attempt`). `upstream_requests` and
    `upstream_responses` hold every attempt's; `upstream_request` and
    `upstream_response` are the last ones (what the agent's answer came from).
    """

    id: int
    request: HttpRequest | None = None
    route: dict | None = None
    upstream_request: HttpRequest | None = None
    upstream_response: HttpResponse | None = None
    routes: list[RouteRecord] = field(default_factory=list)
    upstream_requests: list[HttpRequest] = field(default_factory=list)
    upstream_responses: list[HttpResponse] = field(default_factory=list)
    chunks: list[Chunk] = field(default_factory=list)
    agent_response: HttpResponse | None = None
    agent_chunks: list[Chunk] = field(default_factory=list)
    errors: list[ErrorRecord] = field(default_factory=list)
    guards: list[dict] = field(default_factory=list)
    end_ns: int | None = None
    other: list[dict] = field(default_factory=list)  # item types this reader does not know

    @property
    def complete(self) -> bool:
        return self.end_ns is not None

    @property
    def attempts(self) -> list[RouteRecord]:
        """The recorded attempts (route items with an `attempt` number), in order."""
        return [r for r in self.routes if "attempt" in r.info]

    @property
    def path(self) -> str:
        """The agent's request target without the (redacted) session-secret segment."""
        target = self.request.target if self.request else ""
        if target.startswith("/[REDACTED]"):
            target = target[len("/[REDACTED]"):] or "/"
        return target

    @property
    def status(self) -> int | None:
        """The status the agent got."""
        if self.agent_response is not None:
            return self.agent_response.status
        return self.upstream_response.status if self.upstream_response else None

    @property
    def response_body(self) -> bytes:
        """The upstream response body as recorded (chunks joined)."""
        return b"".join(c.data for c in self.chunks)

    def agent_stream(self) -> list[bytes]:
        """The body pieces the agent got, in order (see docs/bundle-format.md, "agent leg").

        Two readings beyond the three rules: upstream pieces of an attempt that did not
        answer (a failover after a body was read) are not the agent's; and agent pieces
        without an agent head on a translated exchange are the whole translated stream
        (agentwrap wrote translated streams so before it recorded their head)."""
        if self.agent_response is not None:
            if self.agent_response.body is not None:
                return [self.agent_response.body.bytes]
            if self.agent_chunks:
                return [c.data for c in self.agent_chunks]
        if self.agent_chunks and self.translated:
            return [c.data for c in self.agent_chunks]
        answered = self.upstream_response.at_ns if self.upstream_response is not None else None
        start = 0
        if answered is not None and len(self.upstream_responses) > 1:
            while start < len(self.chunks) and self.chunks[start].at_ns < answered:
                start += 1
        out: list[bytes] = []
        extra = iter(self.agent_chunks)
        pending = next(extra, None)
        for i in range(start, len(self.chunks)):
            while pending is not None and pending.after <= i:
                out.append(pending.data)
                pending = next(extra, None)
            out.append(self.chunks[i].data)
        while pending is not None:
            out.append(pending.data)
            pending = next(extra, None)
        return out

    @property
    def translated(self) -> bool:
        """True when the answering attempt went to a backend of another protocol than the agent's."""
        from agentwrap.protocols.endpoints import protocol_of_url

        if self.upstream_request is None:
            return False
        agent, upstream = protocol_of_url(self.path), protocol_of_url(self.upstream_request.target)
        return agent is not None and upstream is not None and agent != upstream

    @property
    def agent_body(self) -> bytes:
        return b"".join(self.agent_stream())


@dataclass
class Bundle:
    path: str
    header: dict
    exchanges: list[Exchange]
    footer: dict | None
    complete: bool
    errors: list[ErrorRecord] = field(default_factory=list)  # errors of the run, not of one exchange
    guards: list[dict] = field(default_factory=list)
    other: list[dict] = field(default_factory=list)
    version: int = FORMAT_VERSION  # the version the file was written in
    truncated: bool = False  # the file ends inside an item (the run was cut short)
