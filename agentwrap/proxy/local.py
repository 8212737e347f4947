"""Answers agentwrap gives itself: its errors in the agent's protocol, and the
side endpoints a backend of another protocol does not have. No I/O."""

from __future__ import annotations

import json

from agentwrap.protocols import codec as wire
from agentwrap.proxy.flow import Flow, Headers, ProxyResponse

__all__ = ["json_response", "error", "side_endpoint"]


def json_response(status: int, body: bytes, extra: Headers = ()) -> ProxyResponse:
    return ProxyResponse(status, [(b"content-type", b"application/json"), *extra], body)


def error(protocol: str, error_type: str, message: str, status: int | None = None) -> ProxyResponse:
    """An error response in `protocol`'s own shape and status, so the agent's retry logic applies."""
    status, body = wire.encode_error(protocol, error_type, message, status)
    return json_response(status, body)


def side_endpoint(flow: Flow) -> ProxyResponse:
    """A request to the agent protocol's endpoint other than a model call, when the route's
    backend speaks another protocol: answered here where it can be, else a 404 in the
    agent's protocol."""
    path = flow.path
    if path.endswith("/api/hello"):
        return json_response(200, b"{}")
    if path.endswith("/count_tokens"):
        return json_response(200, json.dumps({"input_tokens": max(1, len(flow.body) // 4)}).encode())
    if path.endswith(":countTokens"):
        return json_response(200, json.dumps({"totalTokens": max(1, len(flow.body) // 4)}).encode())
    return error(flow.protocol, "not_found", f"agentwrap: {flow.method.decode()} {path} has no equivalent on this route's backend")
