"""Building the proxy for one session: its routes, addons and server on a bound socket."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from agentwrap.agents import AgentSpec
from agentwrap.proxy.auth import UpstreamAuth
from agentwrap.session.launch import listen_loopback
from agentwrap.session.plan import SessionPlan, check_protocols, plan_backend, routed_backends

if TYPE_CHECKING:
    from agentwrap.proxy.addons import AddonChain
    from agentwrap.proxy.addons.stats import Stats
    from agentwrap.proxy.dispatch import Dispatcher
    from agentwrap.proxy.server import ProxyServer

__all__ = ["BoundProxy", "bind_proxy", "scripted_of"]


@dataclass(slots=True)
class BoundProxy:
    """A proxy whose socket is bound (port known) but whose loop may not run yet."""

    server: "ProxyServer"
    dispatcher: Dispatcher
    secret: str
    stats: "Stats"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}/{self.secret}"

    @property
    def addons(self) -> "AddonChain":
        """The proxy's addon chain; add capture here before the server starts."""
        return self.dispatcher.addons


def scripted_of(profile) -> dict:
    """The profile's scripted backends, loaded (a broken script is a ConfigError)."""
    names = [n for n, b in profile.backends.items() if b.type == "scripted"]
    if not names:
        return {}
    from agentwrap.backends.scripted import ScriptedBackend

    return {n: ScriptedBackend.from_file(profile.backends[n].script) for n in names}


def bind_proxy(
    spec: AgentSpec,
    plan: SessionPlan,
    env: Mapping[str, str],
    *,
    sock: socket.socket | None = None,
    secret: str | None = None,
    scripted: dict | None = None,
    replay: object | None = None,
    session_of: Callable[[list], str | None] | None = None,
) -> BoundProxy:
    """Build the dispatcher, its routes and addons (stats, in-chat commands, output caps)
    and the server for one session, on `sock` (or a new loopback socket); add capture
    to `addons` if wanted, then call `server.start()`. `session_of(headers)`: the agent's
    session id a request names (`AgentSpec.resume`), for the stats."""
    from agentwrap.backends.http import HttpTransport
    from agentwrap.proxy.addons import AddonChain
    from agentwrap.proxy.addons.commands import Commands
    from agentwrap.proxy.addons.guards import Guards
    from agentwrap.proxy.addons.output_cap import OutputCap
    from agentwrap.proxy.addons.stats import Stats
    from agentwrap.proxy.dispatch import Dispatcher
    from agentwrap.proxy.routes import ProfileSetup, SessionRoutes, SessionServices
    from agentwrap.proxy.server import ProxyServer

    def resolve_auth(backend) -> tuple[UpstreamAuth, str | None]:
        bp = plan_backend(backend, routes.profile, spec, plan.native, env, plan.key_mode)
        return bp.auth, bp.key

    def switch_profile(name: str) -> ProfileSetup:
        """`::profile(NAME)`: the same session, another profile; the key mode stays what it was."""
        from agentwrap.config.loader import load_profile

        profile = load_profile(name, env=env)
        check_protocols(profile, spec)
        resolved = [plan_backend(b, profile, spec, plan.native, env, plan.key_mode) for b in routed_backends(profile)]
        return ProfileSetup(profile, {bp.name: bp.auth for bp in resolved}, scripted_of(profile), [bp.key for bp in resolved if bp.key])

    def profile_names() -> tuple[str, ...]:
        try:
            from agentwrap.config.loader import ProfileCatalog

            return tuple(ProfileCatalog(os.getcwd()).names())
        except Exception:  # listing is a convenience for ::profile; never fail a session over it
            return ()

    secret = secret or os.urandom(24).hex()  # (`secrets` would import hashlib: ~5 ms of start-up)
    setup = ProfileSetup(plan.profile, plan.auth, scripted if scripted is not None else scripted_of(plan.profile),
                         list(plan.keys))
    services = SessionServices(switch_profile=switch_profile, resolve_auth=resolve_auth,
                               profile_names=profile_names)  # listed only when `::profile` needs them
    routes = SessionRoutes(agent=spec.name, setup=setup, transport=HttpTransport(env=env), env=env, replay=replay,
                           services=services)
    stats = Stats(session_of=session_of)
    # Guards first: their `done` turns the stream filters' reports into notes the others read.
    # A replay answers in-chat commands from the record, like every other request (session/replay.py).
    commands = [Commands(routes, stats)] if replay is None else []
    addons = AddonChain([Guards(routes), stats, *commands, OutputCap()])
    dispatcher = Dispatcher(agent_protocol=spec.protocol, secret=secret, routes=routes, addons=addons)
    server = ProxyServer(dispatcher)
    server.adopt(sock or listen_loopback())
    return BoundProxy(server, dispatcher, secret, stats)
