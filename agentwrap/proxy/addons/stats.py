"""The session's counts (the run summary, `::status` and the bundle footer read them), as an addon.

What counts as an error: a request whose final answer has a status of 400 or
more, or failed after its head went out (an error reported once the flow's
response was decided: its status cannot show it); and every error reported
for no flow at all (the server's own failures). An attempt given up for a
fallback or a retry is not an error when a later attempt answers: a 429 that
failover recovered is a failover, not an error.

Models, backends and tokens: each request answered by a backend is counted
under the backend and the model named in the upstream request as sent, with
the token usage its answer reported. The usage is read once per answer, when
it ends (`capture.answers.usage_of_body`, the same rule capture and `runs`
use), from the upstream body's pieces, kept by reference as they pass; an
answer longer than `MAX_KEPT_BYTES` keeps its first and last pieces only
(every protocol reports usage at the start or the end of its answer).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["Stats", "Use", "TOKEN_FIELDS"]

TOKEN_FIELDS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")
MAX_KEPT_BYTES = 8 * 1024 * 1024  # of one answer, for its usage: a longer one keeps a head and a tail
_HEAD_BYTES = 1024 * 1024
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


class _Answer:
    """One upstream answer's body pieces, kept for its usage."""

    __slots__ = ("backend", "model", "url", "protocol", "sse", "head", "tail", "size", "answered")

    def __init__(self, backend: str, model: str | None, url: str, protocol: str) -> None:
        self.backend, self.model, self.url, self.protocol = backend, model, url, protocol
        self.sse = False
        self.head: list[bytes] = []
        self.tail: deque[bytes] | None = None  # once past the head
        self.size = 0
        self.answered = False  # a 2xx response head came

    def add(self, data: bytes) -> None:
        if self.tail is None:
            self.head.append(data)
            self.size += len(data)
            if self.size > MAX_KEPT_BYTES:
                self._split()
            return
        self.tail.append(data)
        self.size += len(data)
        while self.size > MAX_KEPT_BYTES - _HEAD_BYTES and len(self.tail) > 1:
            self.size -= len(self.tail.popleft())

    def _split(self) -> None:
        kept, size = [], 0
        for piece in self.head:
            if kept and size + len(piece) > _HEAD_BYTES:
                break
            kept.append(piece)
            size += len(piece)
        self.tail = deque(self.head[len(kept):])
        self.head = kept
        self.size = sum(len(p) for p in self.tail)
        while self.size > MAX_KEPT_BYTES - _HEAD_BYTES and len(self.tail) > 1:
            self.size -= len(self.tail.popleft())

    def usage(self) -> dict | None:
        from agentwrap.capture.answers import usage_of_body

        body = b"".join(self.head)
        if self.tail is not None:
            # A cut line at either side of the gap is no `data:` line of JSON: it is skipped.
            body += b"\n\n" + b"".join(self.tail)
        try:
            return usage_of_body(self.protocol, body, sse=self.sse)
        except Exception:  # token counts are a nicety; a parsing bug must not cost the session
            return None


@dataclass(slots=True)
class Stats:
    """The session's counts. `session_of(headers)`: the agent's session id a request carries
    (agents/, `AgentSpec.session_of`), if any."""

    session_of: Callable[[list], str | None] | None = None
    requests: int = 0
    errors: int = 0
    unauthorized: int = 0
    failovers: int = 0
    commands: int = 0
    by_backend: dict[str, int] = field(default_factory=dict)
    guard_actions: dict[str, int] = field(default_factory=dict)  # guard -> times it acted (cut, repaired, ...)
    uses: list[Use] = field(default_factory=list)  # every request a backend answered, in order
    tokens: dict[str, int] | None = None  # summed usage; None until an answer reported some
    session_ids: dict[str, None] = field(default_factory=dict)  # the agent's session ids, the latest used last
    _answers: dict[int, _Answer] = field(default_factory=dict)  # flow xid -> its current attempt's answer
    _failed: set[int] = field(default_factory=set)  # flows that failed after their response was decided

    def request(self, flow) -> None:
        self.requests += 1
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
        self._answers[flow.xid] = _Answer(leg.config.name, _sent_model(leg), leg.url, leg.protocol)

    def upstream_response(self, flow, status: int, headers) -> None:
        answer = self._answers.get(flow.xid)
        if answer is None:
            return
        if status >= 400:
            answer.answered = False
            return
        from agentwrap.protocols.sse import is_sse

        answer.answered = True
        answer.sse = is_sse(headers)

    def chunk(self, flow, data: bytes) -> None:
        answer = self._answers.get(flow.xid)
        if answer is not None and answer.answered:
            answer.add(data)

    def error(self, flow, kind: str, message: str) -> None:
        if flow is None:
            self.errors += 1
        elif flow.response is not None:
            self._failed.add(flow.xid)

    def done(self, flow) -> None:
        response = flow.response
        failed = flow.xid in self._failed
        if failed:
            self._failed.discard(flow.xid)
        if failed or (response is not None and response.status >= 400):
            self.errors += 1
        answer = self._answers.pop(flow.xid, None)
        if answer is not None and answer.answered and response is not None and response.status < 400:
            usage = answer.usage()
            self.uses.append(Use(answer.backend, answer.model, answer.url, usage))
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
