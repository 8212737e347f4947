"""The proxy the agent talks to: an h11 server on its own asyncio loop in a thread.

Does socket I/O. `server.py` moves bytes; `dispatch.py` turns each request
into a `Flow` (`flow.py`), lets the addons (`addons/`) see it, and tries the
route's backends (`routes.py`, `attempt.py`: one leg per try, the `headers.py`
policy) until one answers; `relay.py` streams the answer back; `local.py`
holds agentwrap's own answers; `auth.py` the credential types the session
needs before anything starts. Names are imported on first use, so importing
`agentwrap.proxy.auth` does not pull in asyncio and h11 on the start-up path.
"""

from importlib import import_module

__all__ = ["AddonChain", "Dispatcher", "Flow", "ProxyResponse", "ProxyServer", "SessionRoutes", "Stats", "UpstreamAuth"]

_WHERE = {
    "AddonChain": "agentwrap.proxy.addons",
    "Dispatcher": "agentwrap.proxy.dispatch",
    "Flow": "agentwrap.proxy.flow",
    "ProxyResponse": "agentwrap.proxy.flow",
    "SessionRoutes": "agentwrap.proxy.routes",
    "Stats": "agentwrap.proxy.addons.stats",
    "UpstreamAuth": "agentwrap.proxy.auth",
    "ProxyServer": "agentwrap.proxy.server",
}


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(import_module(_WHERE[name]), name)
    raise AttributeError(name)
