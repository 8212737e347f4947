"""Building a `ProfileConfig` from validated (and merged) profile data: cross-field checks,
`${VAR}` expansion, the guards; and the zero-config native profile."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from agentwrap.config.files import ProfileEntry
from agentwrap.config.model import BackendConfig, GuardsConfig, ModelInfo, ProfileConfig, RouteConfig, WhenConfig
from agentwrap.errors import ConfigError

__all__ = ["build_profile", "guards_config", "native_profile"]


def native_profile(agent: str, protocol: str, base_url: str, headers: tuple[tuple[str, str], ...] = ()) -> ProfileConfig:
    """The zero-config profile: the agent talks to its own provider (or the endpoint the user
    configured for it) through the proxy."""
    backend = BackendConfig(name="native", protocol=protocol, base_url=base_url, headers=headers)
    return ProfileConfig(
        name="native",
        source="<built-in native pass-through>",
        backends={"native": backend},
        routes=(RouteConfig(backend="native"),),
        source_kind="native",
    )


def guards_config(data: Mapping[str, Any] | None, base: GuardsConfig = GuardsConfig()) -> GuardsConfig:
    """`base` with a validated `[guards]` table laid over it, key by key."""
    if not data:
        return base
    from dataclasses import replace

    return GuardsConfig(
        loop=replace(base.loop, **data.get("loop", {})),
        tool_loop=replace(base.tool_loop, **data.get("tool_loop", {})),
        tool_repair=replace(base.tool_repair, **data.get("tool_repair", {})),
    )


def build_profile(entry: ProfileEntry, data: dict[str, Any], env: Mapping[str, str]) -> ProfileConfig:
    from agentwrap.config.envref import EnvRefError, expand_refs
    from agentwrap.config.schema import check_profile, check_url

    file, prefix = entry.path, entry.field_prefix

    def fail(where: str, message: str) -> ConfigError:
        return ConfigError(f"{file}: {prefix}{where}: {message}")

    problem = check_profile(data)
    if problem is not None:
        raise fail(*problem)

    def expand(value: str, where: str) -> str:
        try:
            out = expand_refs(value, env)
        except EnvRefError as exc:
            raise fail(where, str(exc)) from None
        if any(c in out for c in "\r\n\0"):
            # These values end up in HTTP heads, where a line break would forge a header.
            raise fail(where, "contains a line break or NUL (check the variables it reads); remove it")
        return out

    backends: dict[str, BackendConfig] = {}
    for name, b in data["backends"].items():
        where = f"backends.{name}"
        base_url = None
        if b.get("base_url"):
            base_url = expand(b["base_url"], f"{where}.base_url").rstrip("/")
            bad = check_url(base_url)
            if bad:
                raise fail(f"{where}.base_url", bad)
        script = None
        if b.get("script"):
            script_path = Path(os.path.expandvars(b["script"])).expanduser()
            if not script_path.is_absolute():
                script_path = file.parent / script_path
            if not script_path.is_file():
                raise fail(f"{where}.script", f"file {script_path} not found")
            script = str(script_path)
        headers = tuple((k, expand(v, f"{where}.headers.{k}")) for k, v in (b.get("headers") or {}).items())
        backends[name] = BackendConfig(
            name=name,
            type=b.get("type", "http"),
            protocol=b.get("protocol"),
            base_url=base_url,
            api_key_env=b.get("api_key_env"),
            headers=headers,
            timeout_s=b.get("timeout_s"),
            max_output_tokens=b.get("max_output_tokens"),
            script=script,
            api_key_cmd=expand(b["api_key_cmd"], f"{where}.api_key_cmd") if b.get("api_key_cmd") else None,
            auth_scheme=b.get("auth_scheme"),
            credentials=b.get("credentials"),
            models={m: ModelInfo(**info) for m, info in (b.get("models") or {}).items()},
        )

    routes = []
    for i, r in enumerate(data.get("routes") or []):
        when = r.get("when")
        routes.append(
            RouteConfig(
                backend=r["backend"],
                model=expand(r["model"], f"routes[{i}].model") if r.get("model") else None,
                when=WhenConfig(**when) if when is not None else None,
                fallbacks=tuple(r.get("fallbacks", [])),
            )
        )
    if not routes:
        # No routes: everything goes to the first backend declared.
        routes.append(RouteConfig(backend=next(iter(backends))))

    agent_env: dict[str, dict[str, str]] = {}
    for agent, variables in (data.get("agent_env") or {}).items():
        agent_env[agent] = {
            var: expand(str(value), f"agent_env.{agent}.{var}") for var, value in variables.items()
        }

    if entry.kind == "path":
        name = data.get("name") or entry.name
    else:
        name = entry.name
    return ProfileConfig(
        name=name,
        source=entry.source,
        backends=backends,
        routes=tuple(routes),
        description=data.get("description", ""),
        source_kind=entry.kind,
        agent_env=agent_env,
        guards=guards_config(data.get("guards")),
    )
