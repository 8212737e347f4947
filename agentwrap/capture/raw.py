"""The raw legs of a recorded exchange, for the HTML viewer: heads, bodies, a cURL command.

Sans-IO. A bundle is redacted before it is written (keys, the session secret,
auth headers), so everything here is too; `curl_command` puts a shell
variable where a redacted key was, so the command carries no secret and runs
once the variable is set.

Bodies go into a `ValueTable`: agents resend the whole conversation, the
system prompt and the tool list on every turn, so the page's data block
holds each distinct value once and every body as a small tree of references
into it, which the page puts back together when the reader opens it
(`viewer/viewer.js`, `rebuild`).
"""

from __future__ import annotations

import json
from typing import Any

from agentwrap.capture.bundle import Exchange, HttpRequest
from agentwrap.capture.redact import REDACTED
from agentwrap.protocols.endpoints import protocol_of_url
from agentwrap.protocols.sse import is_sse

__all__ = ["BODY_END", "KEY_VARIABLES", "ValueTable", "curl_command", "curl_head", "legs"]

# Objects are split this deep, and an array's elements are values of their own
# (body -> messages -> each message; Code Assist's body -> request -> contents
# -> each): the values a session resends sit there.
SPLIT_DEPTH = 3

# Headers a replayed request must not copy: curl sets them itself (host, length,
# framing), and an accept-encoding would make curl print compressed bytes.
_CURL_SKIPS = frozenset({
    "host", "content-length", "connection", "transfer-encoding", "accept-encoding", "keep-alive", "te", "upgrade",
    "proxy-connection", "expect",
})

# The usual variable of each protocol's key, put where the bundle has the redacted one.
KEY_VARIABLES = {
    "anthropic_messages": "ANTHROPIC_API_KEY",
    "openai_chat": "OPENAI_API_KEY",
    "openai_responses": "OPENAI_API_KEY",
    "gemini": "GEMINI_API_KEY",
}
BODY_END = "AGENTWRAP_BODY"


class ValueTable:
    """Distinct JSON values, each stored once; `node(value)` is a body as references into them.

    A node is an int (an index into `values`), `{"o": [[key, node], ...]}` (an
    object) or `{"a": [index, ...]}` (an array, each element one value); only
    the first `SPLIT_DEPTH` levels are split.
    """

    def __init__(self) -> None:
        self.values: list[Any] = []
        self._by_text: dict[str, int] = {}
        # Bodies read from one bundle share their repeated parts as the same objects
        # (the reader's deduplication): those are found without serialising them again.
        self._by_id: dict[int, tuple[Any, int]] = {}

    def ref(self, value: Any) -> int:
        hit = self._by_id.get(id(value))
        if hit is not None and hit[0] is value:
            return hit[1]
        key = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
        index = self._by_text.get(key)
        if index is None:
            index = self._by_text[key] = len(self.values)
            self.values.append(value)
        if isinstance(value, (dict, list)):
            self._by_id[id(value)] = (value, index)
        return index

    def node(self, value: Any, depth: int = 0) -> Any:
        if depth < SPLIT_DEPTH and isinstance(value, dict) and value:
            return {"o": [[str(k), self.node(v, depth + 1)] for k, v in value.items()]}
        if depth < SPLIT_DEPTH and isinstance(value, list) and value:
            return {"a": [self.ref(v) for v in value]}  # each element whole: a message, a tool, a part
        return self.ref(value)


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def _head(first_line: str, headers: list[tuple[str, str]]) -> str:
    return "\n".join([first_line, *(f"{n}: {v}" for n, v in headers)])


def _json_or_text(data: bytes, headers: list[tuple[str, str]], table: ValueTable) -> dict | None:
    """A body as `{"json": node}` when it is JSON, else `{"text": node}`; None when empty."""
    if not data:
        return None
    if not is_sse(headers):
        try:
            return {"json": table.node(json.loads(data))}
        except (ValueError, RecursionError):
            pass
    return {"text": table.ref(_text(data))}


def _request_leg(title: str, req: HttpRequest, table: ValueTable, *, kind: str) -> dict:
    value = req.body.json
    if value is not None:
        body: dict | None = {"json": table.node(value)}
    else:
        body = {"text": table.ref(_text(req.body.bytes))} if req.body.bytes else None
    return {"kind": kind, "title": title, "head": _head(f"{req.method} {req.target}", req.headers), "body": body,
            "request": req}


def legs(ex: Exchange, table: ValueTable) -> list[dict]:
    """The exchange's legs in the order they happened: the agent's request, each upstream
    request with its response head (the last one with its body), and what the agent got
    where agentwrap changed or made it. Each leg: `kind`, `title`, `head` (text), `body`
    (a `ValueTable` node as `{"json": node}` or `{"text": node}`, or None); request legs
    also hold the recorded `request`."""
    out: list[dict] = []
    if ex.request is not None:
        out.append(_request_leg("request from the agent", ex.request, table, kind="request"))
    sent = ex.upstream_requests
    for i, req in enumerate(sent):
        label = f"upstream request {i + 1} of {len(sent)}" if len(sent) > 1 else "upstream request"
        out.append(_request_leg(label, req, table, kind="upstream_request"))
        until = sent[i + 1].at_ns if i + 1 < len(sent) else None
        for resp in ex.upstream_responses:
            if resp.at_ns >= req.at_ns and (until is None or resp.at_ns < until):
                last = resp is ex.upstream_response
                body = _json_or_text(ex.response_body, resp.headers, table) if last else None
                title = f"upstream response {resp.status}" + ("" if last or body else " (body not recorded)")
                out.append({"kind": "upstream_response", "title": title, "head": _head(f"HTTP {resp.status}", resp.headers),
                            "body": body})
    if ex.agent_response is not None or ex.agent_chunks:
        resp = ex.agent_response or ex.upstream_response
        headers = resp.headers if resp is not None else []
        status = resp.status if resp is not None else "?"
        who = "made by agentwrap" if not sent else "as agentwrap changed it"
        out.append({"kind": "agent_response", "title": f"response the agent got ({who})",
                    "head": _head(f"HTTP {status}", headers), "body": _json_or_text(ex.agent_body, headers, table)})
    return out


def _quote(text: str, variable: str) -> str:
    """`text` as one POSIX shell word, with each `[REDACTED]` in it a reference to `$variable`."""
    words = []
    for i, part in enumerate(text.split(REDACTED)):
        if i:
            words.append(f'"${variable}"')
        if part:
            words.append("'" + part.replace("'", "'\\''") + "'")
    return "".join(words) or "''"


def curl_head(req: HttpRequest | None) -> str | None:
    """The cURL command for a recorded upstream request, up to its body: the method, URL and
    headers, and, when the request had a body, the here-document that reads it (the body
    follows, then a line `AGENTWRAP_BODY`). None when the request went nowhere a cURL can
    (a scripted or replayed answer).

    The key is `$ANTHROPIC_API_KEY` (or the protocol's usual variable) where the bundle has
    it redacted, so the command carries no secret.
    """
    if req is None or not req.target.startswith(("http://", "https://")):
        return None
    variable = KEY_VARIABLES.get(protocol_of_url(req.target) or "", "API_KEY")
    lines = [f"curl -sS -N -X {req.method} {_quote(req.target, variable)}"]
    for name, value in req.headers:
        if name.lower() not in _CURL_SKIPS:
            lines.append(f"  -H {_quote(f'{name}: {value}', variable)}")
    if req.body.is_json or req.body.bytes:  # (a JSON body is never empty; not serialised just to see)
        lines.append(f"  --data-binary @- <<'{BODY_END}'")
    return " \\\n".join(lines)


def curl_command(req: HttpRequest | None) -> str | None:
    """The whole cURL command for a recorded upstream request (`curl_head`, then the body as
    recorded), or None."""
    head = curl_head(req)
    if head is None or req is None:
        return None
    body = req.body.bytes
    return f"{head}\n{_text(body)}\n{BODY_END}\n" if body else head + "\n"
