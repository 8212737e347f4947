"""Profile rules -> a route decision; failover between backends.

Sans-IO: plain data in, a decision out. Nothing here imports asyncio, httpx or socket.
"""

from agentwrap.routing.failover import (
    MAX_RETRY_AFTER_S,
    RETRYABLE_STATUSES,
    Attempt,
    FailoverPlan,
    Outcome,
    Verdict,
    retry_after_seconds,
)
from agentwrap.routing.router import (
    ESTIMATED_BYTES_PER_TOKEN,
    RequestFacts,
    RouteDecision,
    Router,
    SessionOverrides,
    background_models_for,
    background_reason,
    choose_route,
    needs_summary,
)

__all__ = [
    "ESTIMATED_BYTES_PER_TOKEN",
    "MAX_RETRY_AFTER_S",
    "RETRYABLE_STATUSES",
    "Attempt",
    "FailoverPlan",
    "Outcome",
    "RequestFacts",
    "RouteDecision",
    "Router",
    "SessionOverrides",
    "Verdict",
    "background_models_for",
    "background_reason",
    "choose_route",
    "needs_summary",
    "retry_after_seconds",
]
