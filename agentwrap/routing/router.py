"""Pick the route for one request: the first `[[routes]]` entry whose `when` matches."""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase

from agentwrap.config.model import ProfileConfig, RouteConfig, WhenConfig

__all__ = ["RouteDecision", "choose_route", "needs_summary"]


@dataclass(frozen=True, slots=True)
class RouteDecision:
    route_index: int
    backend: str
    model: str | None  # rewrite to this model, or None to keep the requested one
    fallbacks: tuple[str, ...]
    reason: str


def needs_summary(profile: ProfileConfig) -> bool:
    """True when some rule looks beyond agent and model (so the body must be summarised)."""
    return any(r.when is not None and (r.when.tools is not None or r.when.thinking is not None) for r in profile.routes)


def _matches(when: WhenConfig, agent: str, model: str | None, tools: bool | None, thinking: bool | None) -> str | None:
    reasons = []
    if when.agent is not None:
        if when.agent != agent:
            return None
        reasons.append(f"agent={agent}")
    if when.model is not None:
        if model is None or not fnmatchcase(model, when.model):
            return None
        reasons.append(f"model~{when.model}")
    if when.tools is not None:
        if bool(tools) != when.tools:
            return None
        reasons.append(f"tools={when.tools}")
    if when.thinking is not None:
        if bool(thinking) != when.thinking:
            return None
        reasons.append(f"thinking={when.thinking}")
    return ", ".join(reasons) or "always"


def choose_route(
    profile: ProfileConfig,
    agent: str,
    model: str | None,
    *,
    tools: bool | None = None,
    thinking: bool | None = None,
) -> RouteDecision | None:
    route: RouteConfig
    for i, route in enumerate(profile.routes):
        reason = "always" if route.when is None else _matches(route.when, agent, model, tools, thinking)
        if reason is not None:
            return RouteDecision(i, route.backend, route.model, route.fallbacks, f"routes[{i}]: {reason}")
    return None
