"""Codec lookup by protocol id, and errors in the agent's own protocol.

Agents' retry logic matches on these shapes, so agentwrap's own failures
(missing secret, bad JSON, unreachable upstream) are rendered exactly as the
agent's provider would render them.
"""

from __future__ import annotations

import json
from importlib import import_module

__all__ = ["encode_error", "stream_error", "codec"]

_MODULES = {
    "anthropic_messages": "agentwrap.protocols.anthropic",
    "openai_chat": "agentwrap.protocols.openai_chat",
    "openai_responses": "agentwrap.protocols.openai_responses",
    "gemini": "agentwrap.protocols.gemini",
}


def codec(protocol: str):
    """The codec module of a protocol id (imported on first use)."""
    return import_module(_MODULES[protocol])


def encode_error(protocol: str, error_type: str, message: str, status: int | None = None) -> tuple[int, bytes]:
    """(HTTP status, body) of an error response in `protocol`'s shape."""
    return codec(protocol).encode_error(error_type, message, status)


def stream_error(protocol: str, error_type: str, message: str) -> bytes:
    """One SSE event that reports an error mid-stream, valid after any complete event."""
    _, body = encode_error(protocol, error_type, message)
    if protocol == "anthropic_messages":
        return b"event: error\ndata: " + body + b"\n\n"
    if protocol == "openai_responses":
        err = json.loads(body).get("error", {})
        failed = {
            "type": "response.failed",
            "response": {
                "object": "response",
                "status": "failed",
                "error": {"code": err.get("code") or "server_error", "message": err.get("message", message)},
                "output": [],
            },
        }
        return b"event: response.failed\ndata: " + json.dumps(failed).encode() + b"\n\n"
    return b"data: " + body + b"\n\n"
