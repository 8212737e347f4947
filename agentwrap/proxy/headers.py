"""Which headers cross the proxy, in each direction. One policy, two legs.

Toward the upstream, `upstream_headers` builds every request's headers:

- `PASS_THROUGH` (the backend speaks the agent's protocol): everything the
  agent sent except what is `NOT_FORWARDED`; in key mode also without the
  agent's own credential (`AGENT_AUTH_HEADERS`: it holds the session secret,
  not a provider key);
- `TRANSLATED` (another protocol): only `user-agent`, plus the headers the
  translation needs (content-type, anthropic-version, accept). The agent's
  protocol headers (anthropic-*, x-goog-*, Codex's session headers) and its
  auth mean nothing to the backend;

then, on both, `accept-encoding: identity` (capture and guards read the
bytes they forward; the agent is on loopback, where compression buys
nothing), the backend's configured headers and agentwrap's credential.

Toward the agent, `relayed_headers` keeps an upstream response's headers but
the hop-by-hop ones (the server frames the body itself).

No I/O.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import parse_qsl, urlencode

from agentwrap.config.model import BackendConfig
from agentwrap.proxy.auth import UpstreamAuth

__all__ = [
    "NOT_FORWARDED", "AGENT_AUTH_HEADERS", "SECRET_HEADER", "ACCEPT_IDENTITY", "PASS_THROUGH", "TRANSLATED",
    "upstream_headers", "upstream_target", "relayed_headers",
]

Headers = list[tuple[bytes, bytes]]
Policy = Literal["pass_through", "translated"]
PASS_THROUGH: Policy = "pass_through"
TRANSLATED: Policy = "translated"

# The agent may carry the session secret in this header instead of the URL path.
SECRET_HEADER = b"x-agentwrap-secret"
# Not forwarded as received: hop-by-hop fields (RFC 9110 7.6.1), and fields the
# transport or server set for their own message (host, content-length), and the secret.
NOT_FORWARDED = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"host",
        b"content-length",
        SECRET_HEADER,
    }
)
AGENT_AUTH_HEADERS = frozenset({b"authorization", b"x-api-key", b"x-goog-api-key"})
ACCEPT_IDENTITY = (b"accept-encoding", b"identity")


def upstream_headers(agent_headers: Headers, *, policy: Policy, backend: BackendConfig, auth: UpstreamAuth,
                     extra: Headers = ()) -> Headers:
    """The headers of one upstream request (see the module docstring); `extra` follows the agent's."""
    out: Headers = []
    if policy == PASS_THROUGH:
        strip_auth = auth.strip_agent_auth
        for name, value in agent_headers:
            lname = name.lower()
            if lname in NOT_FORWARDED or lname == b"accept-encoding" or (strip_auth and lname in AGENT_AUTH_HEADERS):
                continue
            out.append((lname, value))
    else:
        out += [(n, v) for n, v in agent_headers if n.lower() == b"user-agent"]
    out += extra
    out.append(ACCEPT_IDENTITY)
    out += [(n.lower().encode(), v.encode()) for n, v in backend.headers]
    if auth.header is not None:
        out.append(auth.header)
    return out


def upstream_target(path: str, query: bytes, auth: UpstreamAuth) -> str:
    """Path and query of a pass-through request. Gemini clients may carry the key as
    `?key=`; in key mode it is agentwrap's secret, not the provider's, and is dropped."""
    if query and auth.strip_agent_auth and b"key=" in query:
        pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True)
        if any(k == "key" for k, _ in pairs):  # else the query goes as received
            query = urlencode([(k, v) for k, v in pairs if k != "key"]).encode()
    return path + ("?" + query.decode("latin-1") if query else "")


def relayed_headers(headers: Headers) -> tuple[Headers, bool, bool]:
    """(headers for the agent, is it an SSE stream, does it have a Content-Length) of an upstream response."""
    out: Headers = []
    sse = sized = False
    for name, value in headers:
        lname = name.lower()
        if lname == b"content-length":
            sized = True
        elif lname in NOT_FORWARDED:
            continue
        elif lname == b"content-type" and value.startswith(b"text/event-stream"):
            sse = True
        out.append((lname, value))
    return out, sse, sized
