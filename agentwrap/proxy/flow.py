"""One agent request on its way through the proxy: the `Flow`, and the response it gets.

Everything between the server and the backends reads and writes the flow
(after mitmproxy's `HTTPFlow`): the dispatcher fills in the request, its
endpoint and its route; addons may answer it themselves (`reply`) or add
`notes`; each attempt at a backend is in `plan.history`; the answer ends in
`response`. Sans-IO: nothing here awaits or touches a socket.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agentwrap.errors import RequestError
from agentwrap.protocols.endpoints import Endpoint, classify, has_dot_segment

if TYPE_CHECKING:
    from agentwrap.protocols.neutral.summary import RequestSummary
    from agentwrap.routing.failover import FailoverPlan
    from agentwrap.routing.router import RouteDecision

__all__ = ["Flow", "ProxyResponse", "Headers", "MAX_JSON_DEPTH"]

Headers = list[tuple[bytes, bytes]]

# A model call nested deeper is refused (400) on arrival. Everything after the parse (summaries,
# translation, schema cleaning, re-encoding, capture) may then recurse per level without ever
# meeting Python's recursion limit (1,000 frames, which json.loads itself shares). Real requests
# nest about 10 levels; tool schemas and structured tool results a few dozen.
MAX_JSON_DEPTH = 256


@dataclass(slots=True)
class ProxyResponse:
    """What the server sends the agent: a head and a body of bytes or an async iterator.

    `relayed`: status, headers and body are the upstream's as received (capture then
    records the upstream leg only); False for what agentwrap made or re-encoded.
    `close` releases the upstream response when the body is never iterated (an
    attempt given up for a fallback). `on_agent_left`: the server calls it when the
    agent's connection is lost while a streamed body is being sent (before it stops
    the stream, whose relay then closes the upstream and ends the flow).
    """

    status: int
    headers: Headers
    body: bytes | AsyncIterator[bytes] = b""
    relayed: bool = False
    close: Callable[[], Awaitable[None]] | None = None
    on_agent_left: Callable[[], None] | None = None


class Flow:
    """One agent request, from arrival to the end of its response.

    Set on arrival: `xid` (1, 2, ... in arrival order), `method`, `target` (as
    received, secret segment included), `headers`, `body`, `query`. After the
    secret check: `authorized`, `path` (without the secret). After `open()`:
    `endpoint`, `protocol`, `model`, `parsed` (the JSON body of a model call).
    Then `decision` and `plan` (routing, failover), `response`.
    """

    __slots__ = (
        "xid", "method", "target", "headers", "body", "query", "authorized", "path", "endpoint", "protocol",
        "model", "parsed", "decision", "plan", "reply", "response", "notes", "guarded", "_summary", "_failed",
    )

    def __init__(self, xid: int, method: bytes, target: bytes, headers: Headers, body: bytes) -> None:
        self.xid = xid
        self.method = method
        self.target = target
        self.headers = headers
        self.body = body
        self.query = target.partition(b"?")[2]
        self.authorized = False
        self.path = ""
        self.endpoint: Endpoint | None = None
        self.protocol = ""
        self.model: str | None = None
        self.parsed: dict | None = None
        self.decision: RouteDecision | None = None
        self.plan: FailoverPlan | None = None
        self.reply: ProxyResponse | None = None  # set by a `request` hook: agentwrap answers itself
        self.response: ProxyResponse | None = None
        self.notes: list[dict] = []  # what agentwrap changed or decided, for capture (`guard` items)
        self.guarded: object | list | None = None  # what ran the stream filters (its `.notes`), or their notes
        self._summary: RequestSummary | None = None
        self._failed: set | None = None  # addon hooks that raised on this flow (reported once each)

    def __repr__(self) -> str:
        return f"<Flow {self.xid} {self.method.decode('latin-1')} {self.path or '?'}>"

    def open(self, path: str, default_protocol: str) -> None:
        """Classify `path` (the target after the secret, without the query) and parse a
        model call's body. Raises `RequestError` when the path has a dot segment or that
        body is not a JSON object (nested at most `MAX_JSON_DEPTH` deep)."""
        self.path = path
        endpoint = self.endpoint = classify(path)
        self.protocol = endpoint.protocol or default_protocol
        self.model = endpoint.model
        if has_dot_segment(path):
            raise RequestError(f"the request path {path!r} has a '.' or '..' segment, which could leave the backend's base URL")
        if endpoint.kind != "generate":
            return
        try:
            parsed = json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise RequestError(f"request body is not valid JSON ({exc})") from None
        except RecursionError:
            parsed = None
        if parsed is None or _deeper_than(parsed, MAX_JSON_DEPTH):
            raise RequestError(f"request body is nested more than {MAX_JSON_DEPTH} levels deep")
        if not isinstance(parsed, dict):
            raise RequestError("request body must be a JSON object")
        self.parsed = parsed
        if self.model is None:
            model = parsed.get("model")
            self.model = model if isinstance(model, str) else None

    @property
    def summary(self) -> RequestSummary:
        """The model call summarised by its protocol's codec, computed on first use.
        Raises `RequestError` (the body is not what the protocol allows)."""
        if self._summary is None:
            from agentwrap.protocols.codec import codec

            if self.parsed is None:
                raise RequestError("not a model call")
            self._summary = codec(self.protocol).summarize_request(self.parsed, self.path)
        return self._summary

    @property
    def known_summary(self) -> RequestSummary | None:
        """The summary if something has computed it already, else None (never computes)."""
        return self._summary

    @property
    def attempts(self) -> list:
        """(Attempt, Outcome, Verdict) of each try at a backend so far."""
        return self.plan.history if self.plan is not None else []

    def take_guard_notes(self) -> list:
        """The stream filters' notes (`GuardNote`s) for this flow, once."""
        source, self.guarded = self.guarded, None
        if source is None:
            return []
        return list(source if isinstance(source, list) else source.notes)

    def note(self, info: dict[str, Any]) -> None:
        """Record what agentwrap changed or decided about this request (capture writes it as a `guard` item)."""
        self.notes.append(info)


def _deeper_than(value: Any, levels: int) -> bool:
    """Whether arrays and objects nest more than `levels` deep in `value` (a parsed JSON value).
    Visits containers only (~0.3 ms for a 500 KB conversation, a third of its json.loads)."""
    if type(value) is dict:
        items = value.values()
    elif type(value) is list:
        items = value
    else:
        return False
    if not levels:
        return True
    levels -= 1
    for item in items:
        kind = type(item)
        if (kind is dict or kind is list) and _deeper_than(item, levels):
            return True
    return False
