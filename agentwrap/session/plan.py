"""What a session will do, decided before anything starts: the one copy of those rules.

`plan_session(spec, flag, env, cwd)` is used by the session (which then runs
it) and by `agentwrap doctor` (which renders it): the profile and why it was
chosen, where the agent would go on its own (its native upstream), whether
the agent gets the session secret as its key (key mode), and for every
backend the profile routes to, which credential goes upstream.

Credential rules, in order, for one backend:

1. scripted (and replay): no credential; the agent's own is stripped.
2. `api_key_env` / `api_key_cmd`: that key, in the header the backend's
   protocol expects (`auth_scheme` overrides).
3. the backend takes the agent's own credentials when its profile says
   `credentials = "agent"`, or by default when it speaks the agent's protocol
   at the origin of the agent's native upstream (the endpoint the user
   configured for the agent, or the provider's default). Then the user's key
   (from the agent's usual variable, or the agent's settings) goes upstream,
   or, with no key, the agent's own login passes through untouched.
4. anything else gets no credential and the agent's own is stripped
   (`credentials = "none"` says so explicitly): a local server is not sent
   the user's provider key or login.

So a user's key only ever reaches the host it was configured for, or a
backend the profile explicitly hands it to. Key mode (the agent gets the
session secret as its key; its own auth headers never leave agentwrap) holds
unless some routed backend uses the agent's own login.

No side effects beyond running a profile's `api_key_cmd`; problems are
collected (`error`, `BackendPlan.problem`) so doctor can show them all, and
the session raises the first (`raise_for_problems`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from agentwrap.agents.base import AgentSpec, NativeKey, NativeUpstream, same_origin
from agentwrap.config.model import BackendConfig, ProfileConfig
from agentwrap.errors import ConfigError
from agentwrap.proxy.auth import UpstreamAuth, auth_header

__all__ = ["BackendPlan", "SessionPlan", "plan_session", "resolve_plan", "plan_backend", "routed_backends", "check_protocols"]


@dataclass(slots=True)
class BackendPlan:
    """The credential one backend gets, and how to say so.

    `credential` is one of "key" (from the profile), "native key" (the user's
    own key), "login" (the agent's own login passes through), "none".
    `source` names where a key comes from (`$VAR`, `api_key_cmd`); `key` is its
    value, for redaction only (never rendered).
    """

    backend: BackendConfig
    auth: UpstreamAuth
    credential: str
    source: str = ""
    key: str | None = None
    problem: str | None = None
    translated: bool = False

    @property
    def name(self) -> str:
        return self.backend.name


@dataclass(slots=True)
class SessionPlan:
    """What a session will do: the profile, why it was chosen, the agent's native upstream,
    key mode, and every routed backend's credential."""

    spec: AgentSpec
    profile: ProfileConfig | None
    reason: str
    native: NativeUpstream
    native_profile: bool = False  # no profile selected: the agent's own provider (chained to its configured endpoint)
    key_mode: bool = True
    backends: dict[str, BackendPlan] = field(default_factory=dict)
    error: str | None = None  # the profile could not be used
    warnings: list[str] = field(default_factory=list)

    @property
    def auth(self) -> dict[str, UpstreamAuth]:
        return {name: bp.auth for name, bp in self.backends.items()}

    @property
    def keys(self) -> list[str]:
        """Every key value this session holds, for redaction."""
        out = [self.native.key.value] if self.native.key is not None else []
        return out + [bp.key for bp in self.backends.values() if bp.key and bp.key not in out]

    @property
    def native_key(self) -> NativeKey | None:
        return self.native.key

    def raise_for_problems(self) -> None:
        """The first problem as a ConfigError (the session refuses to start on it)."""
        if self.error:
            raise ConfigError(self.error)
        for bp in self.backends.values():
            if bp.problem:
                raise ConfigError(bp.problem)


def routed_backends(profile: ProfileConfig) -> list[BackendConfig]:
    used = {r.backend for r in profile.routes} | {f for r in profile.routes for f in r.fallbacks}
    return [profile.backends[n] for n in sorted(used) if n in profile.backends]


def check_protocols(profile: ProfileConfig, spec: AgentSpec) -> None:
    """Every protocol pair is translated, so any backend serves any agent; a routed backend
    must exist (the schema checks that); nothing else to refuse up front."""
    if not routed_backends(profile):
        raise ConfigError(f'Profile "{profile.name}" ({profile.source}) routes to no backend. Add a [[routes]] entry.')


def takes_agent_credentials(backend: BackendConfig, spec: AgentSpec, native: NativeUpstream) -> bool:
    """Rule 3 of the module docstring."""
    if backend.credentials is not None:
        return backend.credentials == "agent"
    return backend.protocol == spec.protocol and same_origin(backend.base_url, native.base_url)


def plan_backend(
    backend: BackendConfig, profile: ProfileConfig, spec: AgentSpec, native: NativeUpstream, env: Mapping[str, str], key_mode: bool
) -> BackendPlan:
    """The credential of one backend (the rules of the module docstring)."""
    from agentwrap.config.keys import backend_key

    protocol = backend.protocol or spec.protocol
    translated = backend.type == "http" and protocol != spec.protocol
    if backend.type != "http":
        return BackendPlan(backend, UpstreamAuth(None, True), "none", translated=False)
    if backend.has_key_source:
        source = f"${backend.api_key_env}" if backend.api_key_env else "api_key_cmd"
        try:
            value = backend_key(backend, env, source=profile.source)
        except ConfigError as exc:
            return BackendPlan(backend, UpstreamAuth(None, True), "key", source, problem=str(exc), translated=translated)
        scheme = backend.auth_scheme or ("x-api-key" if protocol == "anthropic_messages" else "bearer")
        return BackendPlan(backend, UpstreamAuth(auth_header(protocol, scheme, value), True), "key", source, value, translated=translated)
    if takes_agent_credentials(backend, spec, native):
        key = native.key
        if key is not None:
            header = auth_header(protocol, key.scheme, key.value)
            return BackendPlan(backend, UpstreamAuth(header, True), "native key", key.variable, key.value, translated=translated)
        if not key_mode:
            return BackendPlan(backend, UpstreamAuth(None, False), "login", native.login, translated=translated)
    return BackendPlan(backend, UpstreamAuth(None, True), "none", translated=translated)


def plan_session(
    spec: AgentSpec, flag: str | None, env: Mapping[str, str], cwd: str | Path | None = None, *, project: bool = True
) -> SessionPlan:
    """Select the profile (flag > AGENTWRAP_PROFILE > project file > native) and plan every routed
    backend's credential. Never raises: problems are in `error` / `BackendPlan.problem`.
    `project=False` ignores the project file (`--no-project`)."""
    from agentwrap.config.loader import native_profile, select_profile

    cwd = str(cwd or os.getcwd())
    native = spec.native(env, cwd)
    warnings: list[str] = []
    try:
        profile, reason = select_profile(
            spec.name, flag, env, Path(cwd), project=project, warnings=warnings,
            native=lambda: native_profile(spec.name, spec.protocol, native.base_url, headers=native.headers),
        )
    except ConfigError as exc:
        return SessionPlan(spec, None, "", native, error=str(exc), warnings=warnings)
    assert profile is not None
    plan = SessionPlan(spec, profile, reason, native, native_profile=profile.source_kind == "native", warnings=warnings)
    try:
        check_protocols(profile, spec)
    except ConfigError as exc:
        plan.error = str(exc)
        return plan
    routed = routed_backends(profile)
    uses_login = any(
        b.type == "http" and not b.has_key_source and takes_agent_credentials(b, spec, native) for b in routed
    )
    plan.key_mode = native.key is not None or not uses_login
    plan.backends = {b.name: plan_backend(b, profile, spec, native, env, plan.key_mode) for b in routed}
    return plan


def resolve_plan(
    spec: AgentSpec, flag: str | None, env: Mapping[str, str], cwd: str | None = None, *, project: bool = True
) -> SessionPlan:
    """`plan_session`, raising the first problem as a ConfigError (what a session needs)."""
    plan = plan_session(spec, flag, env, cwd, project=project)
    plan.raise_for_problems()
    return plan
