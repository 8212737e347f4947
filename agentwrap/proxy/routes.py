"""Where the session's requests go, as it stands: profile, router, overrides, backends, credentials.

The dispatcher asks it for the route and for each backend of a failover
chain (`upstream(name)`: the backend's config, its `Backend` and its
credential, built on first use); the in-chat commands addon changes it
(overrides, `switch`, `reset`). What it needs from the session while it
runs comes in one `SessionServices` object. No I/O of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from agentwrap.capture.redact import KEY_MARKER, Redactor
from agentwrap.config.model import BackendConfig, ProfileConfig
from agentwrap.proxy.auth import UpstreamAuth
from agentwrap.routing.router import Router, SessionOverrides

__all__ = ["SessionServices", "ProfileSetup", "Upstream", "SessionRoutes"]



@dataclass(slots=True)
class ProfileSetup:
    """A profile ready to route: its backends' credentials, loaded scripts and the key values held."""

    profile: ProfileConfig
    auth: dict[str, UpstreamAuth]
    scripted: dict = field(default_factory=dict)  # backend name -> ScriptedBackend
    keys: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class SessionServices:
    """What the proxy asks of the session while it runs (each one optional)."""

    switch_profile: Callable[[str], ProfileSetup] | None = None  # `::profile(NAME)`; raises ConfigError
    resolve_auth: Callable[[BackendConfig], tuple[UpstreamAuth, str | None]] | None = None  # (credential, key value)
    profile_names: Callable[[], tuple[str, ...]] | None = None  # listed by `::profile`


class Upstream(NamedTuple):
    """One backend as an attempt uses it."""

    config: BackendConfig
    backend: object  # backends.base.Backend
    auth: UpstreamAuth


class SessionRoutes:
    """The session's current routing. `keys` grows with every credential resolved."""

    def __init__(self, *, agent: str, setup: ProfileSetup, transport, env: Mapping[str, str] | None = None,
                 replay: object | None = None, services: SessionServices = SessionServices()) -> None:
        self.agent = agent
        self.transport = transport  # backends.http.HttpTransport, shared by every http backend
        self.replay = replay  # backends.replay.ReplayBackend, for `agentwrap replay`
        self.services = services
        self.overrides = SessionOverrides()
        self.redactor: Redactor | None = None  # the keys, for what goes to the agent; None: no key held
        self._env = dict(env or {})
        self._keys: set[str] = set()
        self._base = setup
        self._use(setup)

    def _use(self, setup: ProfileSetup) -> None:
        self.profile = setup.profile
        self.router = Router(setup.profile, agent=self.agent, env=self._env)
        self._auth = dict(setup.auth)
        self._scripted = setup.scripted
        self._backends: dict[str, object] = {}
        self._hold(setup.keys)

    @property
    def keys(self) -> frozenset[str]:
        """Every key value the session holds (what the agent must never get back)."""
        return frozenset(self._keys)

    def _hold(self, keys: Iterable[str | None]) -> None:
        new = {k for k in keys if k} - self._keys
        if new:
            self._keys |= new
            self.redactor = Redactor(self._keys, replacement=KEY_MARKER, keep_length=True)
            if not self.redactor.active:
                self.redactor = None

    @property
    def can_switch(self) -> bool:
        return self.services.switch_profile is not None

    def switch(self, name: str) -> None:
        """Route with profile `name` from now on. Raises ConfigError."""
        assert self.services.switch_profile is not None
        self._use(self.services.switch_profile(name))

    def reset(self) -> None:
        """Back to the session's own profile."""
        if self.profile is not self._base.profile:
            self._use(self._base)

    def upstream(self, name: str) -> Upstream:
        """Backend `name` of the current profile, with its credential (resolved on first use:
        a backend no route names is reached through `::backend`)."""
        config = self.profile.backends[name]
        auth = self._auth.get(name)
        if auth is None:
            resolve = self.services.resolve_auth
            auth, key = resolve(config) if resolve is not None else (UpstreamAuth(None, False), None)
            self._auth[name] = auth
            self._hold([key])
        backend = self._backends.get(name)
        if backend is None:
            backend = self._backends[name] = self._make(config)
        return Upstream(config, backend, auth)

    def _make(self, config: BackendConfig) -> object:
        if config.type == "scripted":
            return self._scripted[config.name]
        if config.type == "replay":
            return self.replay
        from agentwrap.backends.http import HttpBackend

        return HttpBackend(config, self.transport)

    async def aclose(self) -> None:
        await self.transport.aclose()
