"""Translated whole responses and errors: a backend's JSON body (or error) for the agent.

An error keeps what the agent's retry logic needs: its protocol's error shape
and status, and the wait the backend asked for, where the agent reads it
(a `retry-after` header; Codex: the message text; Gemini CLI: RetryInfo in the
body). A whole 2xx body for an agent that asked to stream is rendered as its
protocol's SSE stream. Sans-IO.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any, NamedTuple

from agentwrap.errors import UpstreamProtocol
from agentwrap.protocols._json import dumps_bytes
from agentwrap.protocols._lenient import load_body
from agentwrap.protocols.codec import codec
from agentwrap.protocols.neutral.events import NeutralEvent
from agentwrap.protocols.translate.adapter import Adapter
from agentwrap.protocols.translate.request import Headers, TranslationContext
from agentwrap.routing.failover import retry_after_seconds

__all__ = ["TranslatedResponse", "translate_response", "error_response"]


class TranslatedResponse(NamedTuple):
    status: int
    body: bytes
    headers: Headers


_RETRY_IN = re.compile(r"try again in (\d+(?:\.\d+)?)\s*(ms|s)\b", re.IGNORECASE)


def _retry_after(headers: Iterable[tuple[Any, Any]], body: bytes, message: str) -> float | None:
    """Seconds to wait: from the Retry-After headers (read by `routing.failover`, the one
    parser of them; an HTTP date is left to the agent's own backoff), else from the body:
    Google's RetryInfo, or OpenAI's "try again in Ns" in the message."""
    wait = retry_after_seconds(headers)
    if wait is not None:
        return wait
    data = load_body(body)
    data = data[0] if isinstance(data, list) and data else data
    error = data.get("error") if isinstance(data, dict) else None
    for detail in error.get("details", []) if isinstance(error, dict) and isinstance(error.get("details"), list) else []:
        delay = detail.get("retryDelay") if isinstance(detail, dict) else None
        if isinstance(delay, str) and delay.endswith("s"):
            try:
                return float(delay[:-1])
            except ValueError:
                pass
    match = _RETRY_IN.search(message)
    if match:
        value = float(match.group(1))
        return value / 1000 if match.group(2).lower() == "ms" else value
    return None


def error_response(agent_protocol: str, error_type: str, message: str, retry_after: float | None = None, status: int | None = None) -> TranslatedResponse:
    """An error in the agent protocol's shape, with Retry-After kept where it applies."""
    if retry_after is not None and agent_protocol == "openai_responses" and not _RETRY_IN.search(message):
        # Codex reads the wait from the message text ("try again in Ns").
        message = f"{message} Please try again in {retry_after:g}s."
    code, body = codec(agent_protocol).encode_error(error_type, message, status)
    headers: Headers = [(b"content-type", b"application/json")]
    if retry_after is not None:
        headers.append((b"retry-after", str(max(1, round(retry_after))).encode()))
        if agent_protocol == "gemini":
            # Gemini CLI reads the delay from google.rpc.RetryInfo in the body.
            data = json.loads(body)
            data["error"]["details"] = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{retry_after:g}s"}]
            body = dumps_bytes(data)
    return TranslatedResponse(code, body, headers)


def translate_response(ctx: TranslationContext, status: int, body: bytes, headers: Iterable[tuple[Any, Any]] = (),
                       filters: Iterable[Any] = (), *, notes: list | None = None) -> TranslatedResponse:
    """The agent's response for a whole backend response (an error, or a JSON body).

    For an agent that asked to stream, a whole 2xx body is rendered as the
    agent protocol's SSE stream. `filters` (stream filters, guards) see the
    answer's events after the translation adapter; their notes go to `notes`.
    """
    backend = codec(ctx.backend_protocol)
    if status >= 400:
        error_type, message = backend.decode_error(status, body)
        return error_response(ctx.agent_protocol, error_type, message, _retry_after(headers, body, message))
    data = load_body(body)
    if not isinstance(data, (dict, list)):
        return error_response(ctx.agent_protocol, "api_error", "agentwrap: the upstream answered with a body that is not JSON", status=502)
    adapter = Adapter(ctx)
    events: list[NeutralEvent] = []
    try:
        for event in backend.decode_response(data):
            events += adapter.feed(event)
    except UpstreamProtocol as exc:
        return error_response(ctx.agent_protocol, "api_error", f"agentwrap: {exc}", status=502)
    events += adapter.finish()
    filters = list(filters)
    if filters:
        from agentwrap.protocols.filters import filter_events  # the guards, only when there are filters

        events = filter_events(events, filters, notes)
    error = next((e for e in events if e.kind == "stream_error"), None)
    if error is not None:
        return error_response(ctx.agent_protocol, error.error_type, error.message, _retry_after(headers, body, error.message))
    backend_id = next((e.id for e in events if e.kind == "message_start"), "")
    response_id = ctx.agent_response_id(backend_id)
    if ctx.stream:
        encoder = ctx.agent_encoder(response_id)
        out = b"".join(encoder.feed(e) for e in events) + encoder.finish()
        return TranslatedResponse(200, out, [(b"content-type", b"text/event-stream")])
    rendered = codec(ctx.agent_protocol).encode_response(events, ctx.agent_model, response_id, created=ctx.created)
    return TranslatedResponse(200, dumps_bytes(rendered), [(b"content-type", b"application/json")])
