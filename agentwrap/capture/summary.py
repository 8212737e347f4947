"""What each request of a run was routed to and cost, and the run's totals of it.

Plain functions of a read `Bundle` (no I/O): `show` (`render.to_json`) and
`runs` (`summarize`) both take a request's model, route, attempts and cost
from here, so the two always agree.

- `route_view(ex)`: the routing decision (backend, model, requested model,
  reason, fallbacks).
- `attempts_view(ex)`: every recorded attempt after a failover or a retry
  (backend, model, outcome, decision, why), in order.
- `routed_model(ex)`: the model the answer came from: the one named in the
  last upstream request as sent, else the route's, else the agent's.
- `summarize(bundle)`: models used, requests, errors, tokens and cost of a run,
  reading usage cheaply (`answers.usage_of_body`), for `agentwrap runs`.
"""

from __future__ import annotations

import re
from typing import Any

from agentwrap.capture.answers import TOKEN_FIELDS, usage_of_body
from agentwrap.capture.cost import run_cost, run_time
from agentwrap.capture.bundle import Bundle, Exchange, HttpRequest
from agentwrap.protocols.endpoints import classify, protocol_of_target
from agentwrap.protocols.sse import is_sse

__all__ = [
    "attempts_view", "content_type_header", "final_backend", "final_upstream_request", "requested_model", "route_view",
    "routed_model", "summarize",
]

_GEMINI_MODEL = re.compile(r"/models/([^/:?]+):(?:stream)?[gG]enerate[cC]ontent")


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def requested_model(ex: Exchange) -> str | None:
    """The model the agent asked for: the route's record of it, else its request body or path."""
    route = ex.route or {}
    model = _text(route.get("requested_model"))
    if model is None and ex.request is not None:
        model = ex.request.body.text_field("model") or classify(ex.path.partition("?")[0]).model
    return model


def _sent_model(req: HttpRequest) -> str | None:
    """The model named in a request as sent upstream (its body's `model`, or a Gemini URL's)."""
    model = req.body.text_field("model")
    if model is None:
        m = _GEMINI_MODEL.search(req.target.partition("?")[0])
        model = m.group(1) if m else None
    return model


def route_view(ex: Exchange) -> dict | None:
    """The routing decision as recorded: backend, model, requested_model, reason, fallbacks."""
    route = ex.route
    if not route:
        return None
    fallbacks = route.get("fallbacks")
    return {
        "backend": _text(route.get("backend")),
        "model": _text(route.get("model")),
        "requested_model": _text(route.get("requested_model")),
        "reason": _text(route.get("reason")),
        "fallbacks": [str(f) for f in fallbacks] if isinstance(fallbacks, list) else [],
    }


def _attempt_requests(ex: Exchange) -> list[list[HttpRequest]]:
    """The upstream requests each recorded attempt sent (none for a scripted, replayed
    or local answer), by time: an attempt's item is recorded when it has ended."""
    out: list[list[HttpRequest]] = []
    since = None
    for rec in ex.attempts:
        out.append([r for r in ex.upstream_requests if (since is None or r.at_ns >= since) and r.at_ns <= rec.at_ns])
        since = rec.at_ns
    return out


def attempts_view(ex: Exchange) -> list[dict]:
    """Every recorded attempt: number, backend, model, upstream_url, outcome, decision, why.

    The dispatcher records attempts only when a route has fallbacks or an
    attempt did not simply succeed; a plain request has none. An attempt's
    model is the one its upstream request named; for an attempt that sent
    none, the route's model on the route's own backend and the agent's
    requested model on a fallback (a route's model rewrite belongs to its backend).
    """
    route = ex.route or {}
    out = []
    for rec, sent in zip(ex.attempts, _attempt_requests(ex)):
        info = rec.info
        backend = _text(info.get("backend"))
        model = _text(info.get("model")) or (_sent_model(sent[-1]) if sent else None)
        if model is None:
            same = backend is not None and backend == route.get("backend")
            model = _text(route.get("model")) if same else requested_model(ex)
        number = info.get("attempt")
        out.append({
            "number": number if isinstance(number, int) and not isinstance(number, bool) else None,
            "backend": backend,
            "model": model,
            "upstream_url": sent[-1].target if sent else None,
            "outcome": _text(info.get("outcome")),
            "decision": _text(info.get("decision")),
            "why": _text(info.get("why")),
        })
    return out


def final_upstream_request(ex: Exchange) -> HttpRequest | None:
    """The upstream request the agent's answer came from: the last attempt's, if it sent one."""
    if not ex.attempts:
        return ex.upstream_request
    sent = _attempt_requests(ex)[-1]
    return sent[-1] if sent else None


def final_backend(ex: Exchange) -> str | None:
    """The backend the agent's answer came from: the last attempt's, else the route's."""
    attempts = ex.attempts
    if attempts:
        return _text(attempts[-1].info.get("backend"))
    return _text((ex.route or {}).get("backend"))


def routed_model(ex: Exchange) -> str | None:
    """The model the answer came from: as sent upstream, else as routed, else as asked."""
    attempts = attempts_view(ex)
    if attempts and attempts[-1]["model"]:
        return attempts[-1]["model"]
    req = final_upstream_request(ex)
    model = _sent_model(req) if req is not None else None
    return model or _text((ex.route or {}).get("model")) or requested_model(ex)


def content_type_header(ex: Exchange) -> list[tuple[str, str]]:
    """The content-type header of the response the agent got (its own, else the upstream's)."""
    for resp in (ex.agent_response, ex.upstream_response):
        if resp is not None:
            for n, v in resp.headers:
                if n.lower() == "content-type":
                    return [(n, v)]
    return []


def _usage(ex: Exchange) -> dict | None:
    protocol = protocol_of_target(ex.request.target) if ex.request else None
    if protocol is None:
        return None
    return usage_of_body(protocol, ex.agent_body, sse=is_sse(content_type_header(ex)))


def summarize(bundle: Bundle) -> dict:
    """The run's `models` (routed, in order of first use), `requests`, `errors`, `tokens`
    (summed, None if no answer reported usage), `cost_usd` (None if no request could be
    priced) and `unpriced_requests` (requests with usage but no known price)."""
    at = run_time(bundle.header.get("started_at"))
    models: list[str] = []
    tokens: dict[str, int] | None = None
    priced: list[tuple[str | None, str | None, dict]] = []
    errors = len(bundle.errors)
    for ex in bundle.exchanges:
        if ex.errors or (ex.status or 0) >= 400:
            errors += 1
        model = routed_model(ex) if (ex.route or ex.upstream_request is not None) else None
        if model and model not in models:
            models.append(model)
        usage = _usage(ex)
        if not usage:
            continue
        tokens = tokens or dict.fromkeys(TOKEN_FIELDS, 0)
        for k in TOKEN_FIELDS:
            tokens[k] += usage.get(k, 0)
        sent = final_upstream_request(ex)
        priced.append((model, sent.target if sent is not None else None, usage))
    cost, unpriced = run_cost(priced, at)
    return {
        "models": models,
        "requests": len(bundle.exchanges),
        "errors": errors,
        "tokens": tokens,
        "cost_usd": cost,
        "unpriced_requests": unpriced,
    }
