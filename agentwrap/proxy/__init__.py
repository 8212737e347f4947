"""The proxy the agent talks to: an h11 server on its own asyncio loop in a thread.

Does socket I/O. `server.py` moves bytes; `dispatch.py` decides where each
request goes (auth, protocol, route, backend) and what comes back; `auth.py`
holds the credential types the session needs before anything starts. Names
are imported on first use, so importing `agentwrap.proxy.auth` does not pull
in asyncio and h11 on the start-up path.
"""

from importlib import import_module

__all__ = ["Dispatcher", "ProxyResponse", "ProxyServer", "Stats", "UpstreamAuth"]

_WHERE = {
    "Dispatcher": "agentwrap.proxy.dispatch",
    "ProxyResponse": "agentwrap.proxy.dispatch",
    "Stats": "agentwrap.proxy.dispatch",
    "UpstreamAuth": "agentwrap.proxy.auth",
    "ProxyServer": "agentwrap.proxy.server",
}


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(import_module(_WHERE[name]), name)
    raise AttributeError(name)
