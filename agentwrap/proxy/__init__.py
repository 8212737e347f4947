"""The proxy the agent talks to: an h11 server on its own asyncio loop in a thread.

Does socket I/O. `server.py` moves bytes; `dispatch.py` decides where each
request goes (auth, protocol, route, backend) and what comes back.
"""

from agentwrap.proxy.dispatch import Dispatcher, ProxyResponse, Stats, UpstreamAuth
from agentwrap.proxy.server import ProxyServer

__all__ = ["Dispatcher", "ProxyResponse", "ProxyServer", "Stats", "UpstreamAuth"]
