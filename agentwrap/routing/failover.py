"""Failover policy: which backend to try next after an attempt fails.

Sans-IO: the dispatcher drives a small state machine and does the waiting and
the sending itself.

```python
plan = FailoverPlan(decision.backend, decision.fallbacks)
while (attempt := plan.next_attempt()) is not None:
    await asyncio.sleep(attempt.delay_s)          # the shell waits, not the plan
    outcome = ...                                 # send to attempt.backend
    verdict = plan.record(outcome, now=time.time())
# verdict.action: "done" (serve the response) or "give_up" (serve the last
# upstream error verbatim: plan.last_outcome says what it was)
```

Theory of operation. The chain is the route's backend followed by its
fallbacks (duplicates dropped). After a failure:

- nothing more is tried once any byte went to the agent (`sent_to_agent`);
- a connection error, a timeout before the first byte or a broken response
  moves to the next backend;
- HTTP 429, 500, 502, 503, 504 and 529 first honour a `Retry-After` (or
  `retry-after-ms`) on the same backend when it asks for at most
  `max_retry_after_s` and that backend has not been retried yet (once per
  backend), then move to the next backend;
- any other status is the answer: it goes to the agent verbatim;
- when the chain is used up, the last upstream error goes to the agent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "RETRYABLE_STATUSES",
    "MAX_RETRY_AFTER_S",
    "Attempt",
    "Outcome",
    "Verdict",
    "FailoverPlan",
    "retry_after_seconds",
]

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504, 529})
MAX_RETRY_AFTER_S = 10.0

OutcomeKind = Literal["ok", "status", "connect_error", "timeout", "protocol_error"]
Action = Literal["done", "retry", "failover", "give_up"]
HeaderPairs = Iterable[tuple[bytes | str, bytes | str]] | Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Attempt:
    """Send the request to `backend` after waiting `delay_s` seconds. `number` counts from 1."""

    backend: str
    delay_s: float = 0.0
    number: int = 1
    reason: str = "route's backend"


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one attempt ended. `headers` are the upstream response's (for Retry-After)."""

    kind: OutcomeKind
    status: int | None = None
    headers: tuple[tuple[str, str], ...] = ()
    sent_to_agent: bool = False
    detail: str = ""

    @classmethod
    def ok(cls, status: int = 200) -> Outcome:
        return cls("ok", status)

    @classmethod
    def http_status(cls, status: int, headers: HeaderPairs = (), *, sent_to_agent: bool = False) -> Outcome:
        """An upstream answer; a status below 400 counts as success."""
        if status < 400:
            return cls("ok", status, _norm_headers(headers), sent_to_agent)
        return cls("status", status, _norm_headers(headers), sent_to_agent)

    @classmethod
    def of(cls, status: int, headers: HeaderPairs = ()) -> Outcome:
        """A response head: success below 400, else an HTTP status (its headers kept for Retry-After)."""
        return cls("ok", status) if status < 400 else cls("status", status, _norm_headers(headers))

    @classmethod
    def connect_error(cls, detail: str = "") -> Outcome:
        return cls("connect_error", detail=detail)

    @classmethod
    def timeout(cls, detail: str = "", *, sent_to_agent: bool = False) -> Outcome:
        return cls("timeout", sent_to_agent=sent_to_agent, detail=detail)

    @classmethod
    def protocol_error(cls, detail: str = "", *, sent_to_agent: bool = False) -> Outcome:
        return cls("protocol_error", sent_to_agent=sent_to_agent, detail=detail)

    def describe(self) -> str:
        if self.kind == "status":
            return f"HTTP {self.status}"
        text = {"ok": "success", "connect_error": "connection error", "timeout": "timeout", "protocol_error": "broken response"}[self.kind]
        return f"{text} ({self.detail})" if self.detail else text


@dataclass(frozen=True, slots=True)
class Verdict:
    action: Action
    reason: str


def _norm_headers(headers: HeaderPairs) -> tuple[tuple[str, str], ...]:
    items = headers.items() if isinstance(headers, Mapping) else headers
    out = []
    for name, value in items:
        n = name.decode("latin-1") if isinstance(name, bytes) else name
        v = value.decode("latin-1") if isinstance(value, bytes) else value
        out.append((n.lower(), v))
    return tuple(out)


def _header(headers: tuple[tuple[str, str], ...], name: str) -> str | None:
    for n, v in headers:
        if n == name:
            return v.strip()
    return None


def retry_after_seconds(headers: HeaderPairs, now: float | None = None) -> float | None:
    """Seconds the upstream asks to wait, from `retry-after-ms` or `Retry-After`
    (delay-seconds or an HTTP-date, RFC 9110 §10.2.3); None when absent or unreadable.

    An HTTP-date needs `now` (Unix seconds); without it the date is ignored.
    """
    norm = _norm_headers(headers)
    ms = _header(norm, "retry-after-ms")
    if ms:
        try:
            value = float(ms) / 1000.0
            if value >= 0 and value == value:  # not NaN
                return value
        except ValueError:
            pass
    raw = _header(norm, "retry-after")
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        pass
    else:
        return value if value >= 0 and value == value and value != float("inf") else None
    if now is None:
        return None
    from email.utils import parsedate_to_datetime  # only for the rare date form; costs ~5 ms to import

    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now)


class FailoverPlan:
    """The attempts for one request: the route's backend, then its fallbacks."""

    def __init__(self, backend: str, fallbacks: Iterable[str] = (), *, max_retry_after_s: float = MAX_RETRY_AFTER_S) -> None:
        chain: list[str] = []
        for name in (backend, *fallbacks):
            if name not in chain:
                chain.append(name)
        self.chain: tuple[str, ...] = tuple(chain)
        self.max_retry_after_s = max_retry_after_s
        self.history: list[tuple[Attempt, Outcome, Verdict]] = []
        self.last_outcome: Outcome | None = None
        self.verdict: Verdict | None = None  # the final one, once finished
        self._index = 0
        self._retried: set[str] = set()
        self._pending: Attempt | None = Attempt(self.chain[0], 0.0, 1, "route's backend")
        self._current: Attempt | None = None

    @property
    def finished(self) -> bool:
        return self.verdict is not None

    @property
    def succeeded(self) -> bool:
        return self.verdict is not None and self.verdict.action == "done"

    def next_attempt(self) -> Attempt | None:
        """The next attempt to make, or None when the plan is finished.

        Raises RuntimeError if the previous attempt's outcome was not recorded.
        """
        if self._current is not None:
            raise RuntimeError("record() the outcome of the current attempt before asking for the next one")
        attempt, self._pending = self._pending, None
        self._current = attempt
        return attempt

    def record(self, outcome: Outcome, *, now: float | None = None) -> Verdict:
        """Record how the current attempt ended and decide what happens next.

        `now` (Unix seconds) is needed only to read a Retry-After given as a date.
        """
        attempt = self._current
        if attempt is None:
            raise RuntimeError("record() called with no attempt in flight; call next_attempt() first")
        self._current = None
        self.last_outcome = outcome
        verdict = self._decide(attempt, outcome, now)
        self.history.append((attempt, outcome, verdict))
        if verdict.action in ("done", "give_up"):
            self.verdict = verdict
        return verdict

    def _decide(self, attempt: Attempt, outcome: Outcome, now: float | None) -> Verdict:
        backend = attempt.backend
        what = f"{outcome.describe()} from {backend}"
        if outcome.kind == "ok":
            return Verdict("done", f"{backend} answered")
        if outcome.sent_to_agent:
            return Verdict("give_up", f"{what} after bytes went to the agent; not retried")
        if outcome.kind == "status" and outcome.status not in RETRYABLE_STATUSES:
            return Verdict("give_up", f"{what} is passed to the agent as is")
        if outcome.kind == "status":
            wait = retry_after_seconds(outcome.headers, now)
            if wait is not None and backend not in self._retried:
                if wait <= self.max_retry_after_s:
                    self._retried.add(backend)
                    self._pending = Attempt(backend, wait, attempt.number + 1, f"{what} asked to retry after {wait:g} s")
                    return Verdict("retry", f"{what}: retrying {backend} in {wait:g} s (Retry-After)")
                what += f" (Retry-After {wait:g} s is over the {self.max_retry_after_s:g} s limit)"
        if self._index + 1 < len(self.chain):
            self._index += 1
            nxt = self.chain[self._index]
            self._pending = Attempt(nxt, 0.0, attempt.number + 1, f"fallback after {what}")
            return Verdict("failover", f"{what}: trying fallback {nxt}")
        tail = "no fallbacks left" if len(self.chain) > 1 else "no fallbacks configured"
        return Verdict("give_up", f"{what}; {tail}")
