"""The one exception tree of agentwrap.

```
AgentwrapError
├─ ConfigError         profile, TOML, flags: the user can fix it
├─ AgentNotFound       the agent binary is not on PATH
├─ UpstreamError
│  ├─ UpstreamProtocol malformed or truncated stream
│  └─ UpstreamTimeout
├─ RequestError        the agent sent something we cannot serve (400)
└─ CaptureError
   └─ BundleFormatError
```

An upstream's error status is not an exception: it is relayed to the agent
(or translated into its protocol), and a replayed run's divergences are
collected and reported, not raised.

Split by who must act. Foreign exceptions are translated at the edge that
meets them (`backends/http.py` for sockets, TLS and h11; `config/` for TOML
and pydantic), so nothing above those edges catches them.
"""

from __future__ import annotations

__all__ = [
    "AgentwrapError",
    "ConfigError",
    "AgentNotFound",
    "UpstreamError",
    "UpstreamProtocol",
    "UpstreamTimeout",
    "RequestError",
    "CaptureError",
    "BundleFormatError",
    "AGENT_LEFT",
    "NOT_FAILURES",
]

# Kinds of reported error (the addons' `error` hook, a bundle's `error` items) that record what
# happened but are no failure, so the run's error counts leave them out. `agent_left`: the agent
# closed its connection before the end of a streamed answer (a user interrupting a turn).
AGENT_LEFT = "agent_left"
NOT_FAILURES = frozenset({AGENT_LEFT})


class AgentwrapError(Exception):
    """Base of every error agentwrap raises on purpose."""


class ConfigError(AgentwrapError):
    """A profile, TOML file, flag or environment value the user can fix."""


class AgentNotFound(AgentwrapError):
    """The agent's binary is not on PATH."""


class UpstreamError(AgentwrapError):
    """The upstream could not be used: connection, status, stream or time."""


class UpstreamProtocol(UpstreamError):
    """The upstream broke HTTP or its stream format (malformed, truncated, reset)."""


class UpstreamTimeout(UpstreamError):
    """The upstream did not connect or answer in time."""


class RequestError(AgentwrapError):
    """The agent's request cannot be served as sent (malformed HTTP or JSON)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


class CaptureError(AgentwrapError):
    """A capture bundle could not be written or read."""


class BundleFormatError(CaptureError):
    """A bundle is corrupt or of a format version this agentwrap cannot read."""
