"""The failover state machine, driven with plain outcomes."""

from __future__ import annotations

from datetime import datetime, timezone
from email.utils import format_datetime

import pytest

from agentwrap.routing import FailoverPlan, Outcome, retry_after_seconds

NOW = 1_800_000_000.0


def http_date(offset_s: float) -> str:
    return format_datetime(datetime.fromtimestamp(NOW + offset_s, tz=timezone.utc), usegmt=True)


def drive(plan: FailoverPlan, outcomes: list[Outcome]) -> list[tuple[str, float, str]]:
    """Feed outcomes in order; return (backend, delay, action) per attempt made."""
    trace = []
    for outcome in outcomes:
        attempt = plan.next_attempt()
        assert attempt is not None, f"plan finished early; trace so far {trace}"
        verdict = plan.record(outcome, now=NOW)
        trace.append((attempt.backend, attempt.delay_s, verdict.action))
    assert plan.next_attempt() is None, "plan should be finished"
    return trace


S = Outcome.http_status
RA = "retry-after"

# (fallbacks, outcomes, expected trace of (backend, delay, action))
TABLE = [
    pytest.param((), [Outcome.ok()], [("a", 0, "done")], id="ok-first-time"),
    pytest.param(("b",), [Outcome.connect_error("refused"), Outcome.ok()], [("a", 0, "failover"), ("b", 0, "done")], id="refused-then-fallback"),
    pytest.param(("b",), [Outcome.timeout("no first byte"), Outcome.ok()], [("a", 0, "failover"), ("b", 0, "done")], id="timeout-then-fallback"),
    pytest.param(("b",), [Outcome.protocol_error("reset"), Outcome.ok()], [("a", 0, "failover"), ("b", 0, "done")], id="broken-then-fallback"),
    *[
        pytest.param(("b",), [S(status), Outcome.ok()], [("a", 0, "failover"), ("b", 0, "done")], id=f"http-{status}-then-fallback")
        for status in (429, 500, 502, 503, 504, 529)
    ],
    *[
        pytest.param(("b",), [S(status)], [("a", 0, "give_up")], id=f"http-{status}-verbatim")
        for status in (400, 401, 403, 404, 413, 422)
    ],
    pytest.param(("b",), [S(429, {RA: "2"}), Outcome.ok()], [("a", 0, "retry"), ("a", 2, "done")], id="retry-after-honoured"),
    pytest.param(
        ("b",),
        [S(429, {RA: "2"}), S(429, {RA: "2"}), Outcome.ok()],
        [("a", 0, "retry"), ("a", 2, "failover"), ("b", 0, "done")],
        id="retry-after-only-once-per-backend",
    ),
    pytest.param(
        ("b",),
        [S(529, {RA: "1"}), S(529, {RA: "1"}), S(529, {RA: "3"}), S(529, {RA: "3"})],
        [("a", 0, "retry"), ("a", 1, "failover"), ("b", 0, "retry"), ("b", 3, "give_up")],
        id="each-backend-gets-its-own-retry",
    ),
    pytest.param(("b",), [S(429, {RA: "60"}), Outcome.ok()], [("a", 0, "failover"), ("b", 0, "done")], id="retry-after-too-long"),
    pytest.param((), [S(429, {RA: "60"})], [("a", 0, "give_up")], id="retry-after-too-long-no-fallback"),
    pytest.param((), [S(503, {RA: "0"}), Outcome.ok()], [("a", 0, "retry"), ("a", 0, "done")], id="retry-after-zero"),
    pytest.param((), [S(503, {RA: http_date(5)}), Outcome.ok()], [("a", 0, "retry"), ("a", 5, "done")], id="retry-after-http-date"),
    pytest.param((), [S(503, {RA: http_date(-30)}), Outcome.ok()], [("a", 0, "retry"), ("a", 0, "done")], id="retry-after-date-in-past"),
    pytest.param((), [S(503, {RA: "soon"})], [("a", 0, "give_up")], id="retry-after-unreadable"),
    pytest.param((), [S(429, [(b"Retry-After-Ms", b"1500")]), Outcome.ok()], [("a", 0, "retry"), ("a", 1.5, "done")], id="retry-after-ms-bytes"),
    pytest.param(("b",), [S(400, {RA: "1"})], [("a", 0, "give_up")], id="retry-after-on-400-ignored"),
    pytest.param(("b", "c"), [Outcome.connect_error(), S(502), S(503)], [("a", 0, "failover"), ("b", 0, "failover"), ("c", 0, "give_up")], id="chain-exhausted"),
    pytest.param(("b",), [Outcome.timeout("mid-stream", sent_to_agent=True)], [("a", 0, "give_up")], id="never-after-first-byte"),
    pytest.param(("b",), [S(529, {RA: "1"}, sent_to_agent=True)], [("a", 0, "give_up")], id="never-after-first-byte-status"),
    pytest.param(("a", "b", "a"), [Outcome.connect_error(), Outcome.connect_error()], [("a", 0, "failover"), ("b", 0, "give_up")], id="duplicates-dropped"),
    pytest.param(("b",), [S(302)], [("a", 0, "done")], id="redirect-is-an-answer"),
]


@pytest.mark.parametrize(("fallbacks", "outcomes", "expected"), TABLE)
def test_failover_table(fallbacks, outcomes, expected) -> None:
    plan = FailoverPlan("a", fallbacks, max_retry_after_s=10)
    assert drive(plan, outcomes) == expected
    assert plan.finished
    assert plan.last_outcome is outcomes[-1]
    assert plan.succeeded is (expected[-1][2] == "done")
    assert [h[0].number for h in plan.history] == list(range(1, len(outcomes) + 1))


def test_reasons_say_what_happened() -> None:
    plan = FailoverPlan("a", ["b"])
    plan.next_attempt()
    v = plan.record(S(529, {"retry-after": "2"}))
    assert v.reason == "HTTP 529 from a: retrying a in 2 s (Retry-After)"
    attempt = plan.next_attempt()
    assert attempt.reason == "HTTP 529 from a asked to retry after 2 s"
    v = plan.record(Outcome.connect_error("connection refused"))
    assert v.reason == "connection error (connection refused) from a: trying fallback b"
    assert plan.next_attempt().reason.startswith("fallback after connection error")
    v = plan.record(S(401))
    assert v.action == "give_up" and v.reason == "HTTP 401 from b is passed to the agent as is"
    assert plan.verdict == v


def test_misuse_is_refused() -> None:
    plan = FailoverPlan("a")
    with pytest.raises(RuntimeError):
        plan.record(Outcome.ok())
    plan.next_attempt()
    with pytest.raises(RuntimeError):
        plan.next_attempt()


@pytest.mark.parametrize(
    ("headers", "now", "expected"),
    [
        ({}, None, None),
        ({"retry-after": "3"}, None, 3.0),
        ({"Retry-After": " 2.5 "}, None, 2.5),
        ({"retry-after": "-1"}, None, None),
        ({"retry-after": "inf"}, None, None),
        ({"retry-after": "nan"}, None, None),
        ({"retry-after": http_date(7)}, NOW, 7.0),
        ({"retry-after": http_date(7)}, None, None),  # a date needs the clock
        ({"retry-after": "Wed, 99 Foo 2026"}, NOW, None),
        ({"retry-after-ms": "250", "retry-after": "9"}, None, 0.25),
        ({"retry-after-ms": "x", "retry-after": "9"}, None, 9.0),
        ([(b"retry-after", b"4")], None, 4.0),
    ],
)
def test_retry_after_seconds(headers, now, expected) -> None:
    assert retry_after_seconds(headers, now) == expected
