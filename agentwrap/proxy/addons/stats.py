"""The session's counts (the run summary, `::status` and the bundle footer read them), as an addon.

What counts as an error: a request whose final answer has a status of 400 or
more, or failed after its head went out (an error reported once the flow's
response was decided: its status cannot show it); and every error reported
for no flow at all (the server's own failures) or after its flow ended. An attempt given up for a
fallback or a retry is not an error when a later attempt answers: a 429 that
failover recovered is a failover, not an error.

Models, backends and tokens: each request answered by a backend is counted
under the backend and the model named in the upstream request as sent, with
the token usage its answer reported. The usage is read once per answer, when
it ends (`capture.answers.usage_of_body`, the same rule capture and `runs`
use), from the upstream body's pieces, kept by reference as they pass (one
dict lookup, one append and one sum per piece); an answer longer than
`MAX_KEPT_BYTES` keeps its first MiB and its last `MAX_KEPT_BYTES` only
(every protocol reports usage at the start or the end of its answer),
looked at again whenever another `MAX_KEPT_BYTES` or `_TRIM_PIECES` pieces
came, whichever is first. A
stream the agent closed before its end (`agent_left`) is counted apart: the
agent's choice (a user interrupting a turn), not a failure.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable
from dataclasses import dataclass, field

from agentwrap.errors import AGENT_LEFT, NOT_FAILURES
from agentwrap.protocols.sse import is_sse

__all__ = ["Stats", "Use", "TOKEN_FIELDS"]

TOKEN_FIELDS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")
MAX_KEPT_BYTES = 8 * 1024 * 1024  # of one answer's end, for its usage (and its first MiB)
_HEAD_BYTES = 1024 * 1024
_TRIM_PIECES = 4096  # pieces of one answer between looks at its size
MAX_SESSION_IDS = 32  # the agent's session ids remembered (the newest)

_GUARDS = frozenset({"loop", "tool_loop", "tool_repair"})
_NOT_ACTIONS = frozenset({"pass", "failed", "error"})  # a record of a guard, not something it changed


@dataclass(slots=True)
class Use:
    """One answered request: where it went and what it used (for the summary and its cost)."""

    backend: str
    model: str | None
    url: str
    usage: dict | None  # TOKEN_FIELDS -> int, None when the answer reported none


def _count(value) -> int:
    return value if type(value) is int and value >= 0 else -1


class _Pieces(list):
    """An answer's pieces; `size`: their bytes; `limit` and `cap`: the length and the size at
    which to look at them again."""

    __slots__ = ("limit", "size", "cap")

    def __init__(self) -> None:
        super().__init__()
        self.limit = _TRIM_PIECES
        self.size = 0
        self.cap = _HEAD_BYTES + MAX_KEPT_BYTES


class _Leg:
    """Where one attempt went, and its answer's body pieces once a 2xx head came."""

    __slots__ = ("backend", "model", "url", "protocol", "sse", "head")

    def __init__(self, backend: str, model: str | None, url: str, protocol: str) -> None:
        self.backend, self.model, self.url, self.protocol = backend, model, url, protocol
        self.sse = False
        self.head: list[bytes] | None = None  # the first pieces, once a long answer was trimmed

    def usage(self, pieces: list[bytes]) -> dict | None:
        from agentwrap.capture.answers import merge_usage, usage_of_body

        try:
            found = usage_of_body(self.protocol, b"".join(pieces), sse=self.sse)
            if self.head is None or (found is not None and all(found.values())):
                return found
            # A trimmed answer: a field its end did not report comes from its first MiB, as if
            # the two were read as one (the latest non-zero value of each field), without
            # joining them. A line cut at either side of the gap is no line of JSON: skipped.
            return merge_usage(usage_of_body(self.protocol, b"".join(self.head), sse=self.sse), found)
        except Exception:  # token counts are a nicety; a parsing bug must not cost the session
            return None

    def trim(self, pieces: _Pieces) -> None:
        """Keep (in place) the first MiB and the last `MAX_KEPT_BYTES` of a long answer; look
        again after twice as many pieces (many small pieces cost a look per 4096, amortised)
        or another `MAX_KEPT_BYTES` (large pieces: what is kept stays bounded in bytes)."""
        if self.head is None:
            head, size = [], 0
            for piece in pieces:
                if head and size + len(piece) > _HEAD_BYTES:
                    break
                head.append(piece)
                size += len(piece)
            self.head = head
            del pieces[:len(head)]
        size, start = 0, len(pieces)
        while start > 0 and (start == len(pieces) or size + len(pieces[start - 1]) <= MAX_KEPT_BYTES):
            start -= 1
            size += len(pieces[start])
        del pieces[:start]
        pieces.limit = max(_TRIM_PIECES, 2 * len(pieces))
        pieces.size = size
        pieces.cap = size + MAX_KEPT_BYTES


@dataclass(slots=True)
class Stats:
    """The session's counts. `session_of(headers)`: the agent's session id a request carries,
    if any (`AgentSpec.resume.from_request`, agents/)."""

    session_of: Callable[[list], str | None] | None = None
    requests: int = 0
    errors: int = 0
    unauthorized: int = 0
    failovers: int = 0
    commands: int = 0
    agent_left: int = 0  # streams the agent closed before their end
    by_backend: dict[str, int] = field(default_factory=dict)
    guard_actions: dict[str, int] = field(default_factory=dict)  # guard -> times it acted (cut, repaired, ...)
    # every request a backend answered: (backend, model, URL) -> its usages, TOKEN_FIELDS in a row
    # of machine integers (-1: no count; -2 first: no usage), 32 bytes a request however long the run
    _uses: dict[tuple, array] = field(default_factory=dict)
    tokens: dict[str, int] | None = None  # summed usage; None until an answer reported some
    session_ids: dict[str, None] = field(default_factory=dict)  # the agent's session ids, the latest used last
    _legs: dict[int, _Leg] = field(default_factory=dict)  # flow xid -> its current attempt
    _pieces: dict[int, _Pieces] = field(default_factory=dict)  # flow xid -> its 2xx answer's pieces so far
    _failed: set[int] = field(default_factory=set)  # flows that failed after their response was decided
    _live: set[int] = field(default_factory=set)  # flows not yet done

    @property
    def uses(self) -> list[Use]:
        """Every request a backend answered, grouped by backend, model and URL (first answered first)."""
        out = []
        for (backend, model, url), rows in self._uses.items():
            for i in range(0, len(rows), 4):
                row = rows[i : i + 4]
                usage = None if row[0] == -2 else {k: (None if v < 0 else v) for k, v in zip(TOKEN_FIELDS, row)}
                out.append(Use(backend, model, url, usage))
        return out

    def request(self, flow) -> None:
        self.requests += 1
        self._live.add(flow.xid)
        if not flow.authorized:
            self.unauthorized += 1
        elif self.session_of is not None:
            sid = self.session_of(flow.headers)
            if sid:
                ids = self.session_ids
                ids.pop(sid, None)
                ids[sid] = None
                if len(ids) > MAX_SESSION_IDS:
                    del ids[next(iter(ids))]

    def route(self, flow) -> None:
        if not flow.attempts:
            return
        attempt, _, verdict = flow.attempts[-1]
        self.by_backend[attempt.backend] = self.by_backend.get(attempt.backend, 0) + 1
        if verdict.action == "retry" or verdict.action == "failover":
            self.failovers += 1

    def upstream_request(self, flow, leg) -> None:
        self._legs[flow.xid] = _Leg(leg.config.name, _sent_model(leg), leg.url, leg.protocol)
        self._pieces.pop(flow.xid, None)

    def upstream_response(self, flow, status: int, headers) -> None:
        leg = self._legs.get(flow.xid)
        if leg is None or status >= 400:
            self._pieces.pop(flow.xid, None)
            return
        leg.sse = is_sse(headers)
        self._pieces[flow.xid] = _Pieces()

    def chunk(self, flow, data: bytes) -> None:
        # Per upstream piece: one lookup and one append (the pieces are the relay's own objects).
        pieces = self._pieces.get(flow.xid)
        if pieces is not None:
            pieces.append(data)
            pieces.size += len(data)
            if pieces.size > pieces.cap or len(pieces) >= pieces.limit:  # now and then: a long answer keeps its ends only
                self._legs[flow.xid].trim(pieces)

    def error(self, flow, kind: str, message: str) -> None:
        if kind == AGENT_LEFT:
            self.agent_left += 1
        if kind in NOT_FAILURES:
            return
        if flow is None or flow.xid not in self._live:  # the server's own, or after the flow ended
            self.errors += 1
        elif flow.response is not None:  # during an attempt it ends in an error response, or a fallback
            self._failed.add(flow.xid)

    def done(self, flow) -> None:
        self._live.discard(flow.xid)
        response = flow.response
        failed = flow.xid in self._failed
        if failed:
            self._failed.discard(flow.xid)
        if failed or (response is not None and response.status >= 400):
            self.errors += 1
        leg = self._legs.pop(flow.xid, None)
        pieces = self._pieces.pop(flow.xid, None)
        if leg is not None and pieces is not None and response is not None and response.status < 400:
            usage = leg.usage(pieces)
            rows = self._uses.get(key := (leg.backend, leg.model, leg.url))
            if rows is None:
                rows = self._uses[key] = array("q")
            rows.extend([-2, -2, -2, -2] if usage is None else [_count(usage.get(k)) for k in TOKEN_FIELDS])
            if usage:
                tokens = self.tokens = self.tokens or dict.fromkeys(TOKEN_FIELDS, 0)
                for k in TOKEN_FIELDS:
                    tokens[k] += usage.get(k) or 0
        for note in flow.notes:
            guard = note.get("guard")
            if guard == "command":
                self.commands += 1
            elif guard in _GUARDS and note.get("action") not in _NOT_ACTIONS:
                self.guard_actions[guard] = self.guard_actions.get(guard, 0) + 1

    @property
    def pending(self) -> int:
        """Requests not yet done (a stream's counts are final once its flow is)."""
        return len(self._live)

    @property
    def session_id(self) -> str | None:
        """The agent's session id its latest request carried, if any."""
        return next(reversed(self.session_ids), None)


def _sent_model(leg) -> str | None:
    """The model an upstream request names: its body's, else (Gemini) its path's."""
    payload = leg.json
    model = payload.get("model") if isinstance(payload, dict) else None
    if isinstance(model, str) and model:
        return model
    from agentwrap.protocols.endpoints import classify

    return classify(leg.target.partition("?")[0]).model
