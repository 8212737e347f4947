"""One request in, one response out: secret check, flow, addons, route, failover.

The dispatcher never sees sockets: `server.py` hands it the parsed request
head and body and sends back the `ProxyResponse` it returns, whose body is
bytes or an async iterator of pieces forwarded as they arrive (relay.py).
Each request becomes a `Flow` (flow.py) that the addons (addons/) observe
and may answer; the route's backends are tried in order through the
`Backend` seam (attempt.py), as the failover plan decides.
"""

from __future__ import annotations

import asyncio
import hmac
import itertools
import time

from agentwrap.errors import AGENT_LEFT, RequestError
from agentwrap.proxy import local
from agentwrap.proxy.addons import AddonChain
from agentwrap.proxy.attempt import attempt
from agentwrap.proxy.flow import Flow, Headers, ProxyResponse
from agentwrap.proxy.headers import SECRET_HEADER
from agentwrap.proxy.relay import redact_response
from agentwrap.proxy.routes import SessionRoutes
from agentwrap.routing.failover import FailoverPlan
from agentwrap.routing.router import RequestFacts

__all__ = ["Dispatcher", "ProxyResponse", "UNREACHABLE_WINDOW_S"]

UNREACHABLE_WINDOW_S = 60.0


class Dispatcher:
    """Serves the agent's requests for one session: `routes` says where they go,
    `addons` observe and may answer them."""

    def __init__(self, *, agent_protocol: str, secret: str, routes: SessionRoutes, addons: AddonChain) -> None:
        self.agent_protocol = agent_protocol
        self.routes = routes
        self.addons = addons
        self._secret = secret.encode()
        self._ids = itertools.count(1)
        self._down: dict[str, float] = {}  # backend -> when it was first found unreachable (monotonic)

    # -- the request path -------------------------------------------------------------

    async def handle(self, method: bytes, target: bytes, headers: Headers, body: bytes) -> ProxyResponse:
        flow = Flow(next(self._ids), method, target, headers, body)
        denied = self._authorize(flow)
        flow.reply = denied or self._open(flow)
        self.addons.request(flow)
        if denied is not None:
            flow.reply = denied  # nothing an addon made of a request without the secret is served
        if flow.reply is not None:
            flow.response = flow.reply
        else:
            await self._route(flow)
        response = flow.response
        assert response is not None
        if self.routes.redactor is not None:
            redact_response(response, self.routes.redactor)
        if isinstance(response.body, (bytes, bytearray)):
            self.addons.done(flow)  # a streamed body ends its flow in the relay
        else:
            response.on_agent_left = lambda: self.addons.error(
                flow, AGENT_LEFT, "the agent closed its connection before the end of the answer; agentwrap stopped reading it")
        return response

    def _authorize(self, flow: Flow) -> ProxyResponse | None:
        """Check the session secret, as the first path segment or in the `x-agentwrap-secret`
        header (compared in constant time); set `flow.path`. None when it is there."""
        raw_path = flow.target.partition(b"?")[0]
        if raw_path.startswith(b"/"):
            first, sep, rest = raw_path[1:].partition(b"/")
            if hmac.compare_digest(first, self._secret):
                flow.authorized, raw_path = True, b"/" + rest if sep else b"/"
        if not flow.authorized:
            given = [v for n, v in flow.headers if n.lower() == SECRET_HEADER]
            flow.authorized = len(given) == 1 and hmac.compare_digest(given[0], self._secret)
        flow.path = raw_path.decode("latin-1")
        if flow.authorized:
            return None
        return local.error(self.agent_protocol, "authentication",
                           "agentwrap: this proxy needs its session secret; the request did not carry it.")

    def _open(self, flow: Flow) -> ProxyResponse | None:
        try:
            flow.open(flow.path, self.agent_protocol)
        except RequestError as exc:
            return local.error(flow.protocol, "invalid_request", f"agentwrap: {exc}")
        return None

    async def _route(self, flow: Flow) -> None:
        routes = self.routes
        if routes.router.needs_summary and flow.parsed is not None:
            try:
                flow.summary
            except RequestError as exc:
                flow.response = local.error(flow.protocol, "invalid_request", f"agentwrap: {exc}")
                return
        facts = RequestFacts.from_wire(routes.agent, flow.model, flow.headers, flow.body, flow.known_summary)
        decision = flow.decision = routes.router.choose(facts, routes.overrides)
        if decision is None:
            message = f"agentwrap: no route in profile {routes.profile.name!r} matches this request (model {flow.model!r})."
            flow.response = local.error(flow.protocol, "invalid_request", message)
            return
        plan = flow.plan = FailoverPlan(decision.backend, decision.fallbacks)
        self.addons.route(flow)
        while (step := plan.next_attempt()) is not None:
            if flow.response is not None:
                await _discard(flow.response)
                flow.response = None
            if step.delay_s:
                await asyncio.sleep(step.delay_s)
            # The route's model rewrite belongs to the route's backend; fallbacks get what the agent asked for.
            rewrite = decision.model if step.backend == decision.backend else None
            flow.response, outcome = await attempt(flow, routes.upstream(step.backend), rewrite, self.addons, routes.redactor)
            plan.record(outcome, now=time.time())
            self.addons.route(flow)
        self._unreachable(flow)

    def _unreachable(self, flow: Flow) -> None:
        """A backend that cannot be reached twice in a row within `UNREACHABLE_WINDOW_S`: the
        agent gets an error it does not retry, naming the backend, so the user learns in
        seconds instead of after minutes of the agent's silent backoff. The first failure
        stays a retryable 502 (a blip heals on the agent's retry)."""
        if not flow.attempts:
            return
        step, outcome, _ = flow.attempts[-1]
        now = time.monotonic()
        if outcome.kind != "connect_error":
            self._down.pop(step.backend, None)
            return
        first = self._down.get(step.backend)
        if first is None or now - first > UNREACHABLE_WINDOW_S:
            self._down[step.backend] = now
            return
        config = self.routes.profile.backends[step.backend]
        message = (f"agentwrap: backend {config.name!r} at {config.base_url} is unreachable ({outcome.detail or 'connection failed'}). "
                   f"Start it or fix its base_url in {self.routes.profile.source}; `agentwrap doctor --online` checks it.")
        flow.response = local.error(flow.protocol, "invalid_request", message, 400)

    # -- what the server reports ----------------------------------------------------------

    def internal_error(self, exc: Exception) -> ProxyResponse:
        """Our bug while handling a request: recorded, and answered in the agent's protocol."""
        message = f"agentwrap internal error: {type(exc).__name__}: {exc}"
        self.addons.error(None, "internal", message)
        return local.error(self.agent_protocol, "api_error", message, 500)

    def refusal(self, status: int, message: str) -> bytes:
        """The body of a refusal of a request the server could not read (malformed HTTP, too large)."""
        self.addons.error(None, "bad_request", message)
        return local.error(self.agent_protocol, "invalid_request", message, status).body

    def report(self, kind: str, message: str) -> None:
        """A failure of the server itself (a connection it could not serve)."""
        self.addons.error(None, kind, message)

    async def aclose(self) -> None:
        await self.routes.aclose()


async def _discard(response: ProxyResponse) -> None:
    """Drop a response that will not reach the agent (an attempt that is retried elsewhere)."""
    body = response.body
    if not isinstance(body, (bytes, bytearray)):
        await body.aclose()  # an async generator that never started runs no `finally`, hence:
    if response.close is not None:
        await response.close()
