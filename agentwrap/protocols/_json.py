"""JSON bodies agentwrap writes itself (a request re-encoded, a whole answer translated), as bytes.

Sans-IO; stdlib only, so importing it costs nothing on the start-up path.
"""

from __future__ import annotations

import codecs
import json
from typing import Any

__all__ = ["dumps_bytes", "encodable"]

_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def _escape_surrogates(exc: UnicodeError) -> tuple[str, int]:
    # Only string literals hold non-ASCII in JSON text, so a lone UTF-16 surrogate there
    # (json.loads accepts the escape `"\ud800"`; its code point has no UTF-8) becomes the
    # escape it arrived as.
    if not isinstance(exc, UnicodeEncodeError):
        raise exc
    return "".join(f"\\u{ord(c):04x}" for c in exc.object[exc.start : exc.end]), exc.end


codecs.register_error("agentwrap.json_escape", _escape_surrogates)


def dumps_bytes(obj: Any) -> bytes:
    """Compact JSON in UTF-8, as the agents send it (JSON.stringify, serde_json). A lone
    surrogate in a string is written as its `\\uXXXX` escape; the error handler runs only
    when there is one, so other bodies cost what `json.dumps(...).encode()` does."""
    return _encoder.encode(obj).encode("utf-8", "agentwrap.json_escape")


def encodable(text: str) -> str:
    """`text` with each lone surrogate replaced by U+FFFD: for a string of the agent's request that
    agentwrap echoes in a stream it encodes (the model name, tool names), whose events are made
    with `.encode()` per event, not `dumps_bytes`."""
    if text.isascii():
        return text
    try:
        text.encode()
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text
