"""The resolved profile as plain dataclasses: what the router and backends use.

The pydantic schema in `schema.py` validates TOML into these; code that builds a
profile without a file (the zero-config native pass-through) uses them directly
and so never imports pydantic.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["BackendConfig", "WhenConfig", "RouteConfig", "ProfileConfig"]


@dataclass(frozen=True, slots=True)
class BackendConfig:
    name: str
    type: str = "http"  # "http" | "scripted"
    protocol: str | None = None  # None for scripted: it speaks whatever the agent speaks
    base_url: str | None = None
    api_key_env: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    timeout_s: float | None = None
    script: str | None = None  # absolute path, for type = "scripted"

    def speaks(self, protocol: str) -> bool:
        return self.type == "scripted" or self.protocol == protocol


@dataclass(frozen=True, slots=True)
class WhenConfig:
    agent: str | None = None
    model: str | None = None  # glob on the requested model
    tools: bool | None = None
    thinking: bool | None = None


@dataclass(frozen=True, slots=True)
class RouteConfig:
    backend: str
    model: str | None = None  # rewrite the requested model
    when: WhenConfig | None = None
    fallbacks: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ProfileConfig:
    name: str
    source: str  # file path, or "<built-in native>"
    backends: dict[str, BackendConfig] = field(default_factory=dict)
    routes: tuple[RouteConfig, ...] = ()
