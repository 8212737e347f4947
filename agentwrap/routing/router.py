"""Pick the route for one request: the first `[[routes]]` entry whose `when` matches.

Sans-IO: the dispatcher describes a request as `RequestFacts` (agent, requested
model, lower-cased headers, body size, and the codec's `RequestSummary` when
the profile needs one) and gets a `RouteDecision` with a reason naming the rule
and what matched.

What the `when` keys look at:

- `agent`, `model` (a case-sensitive glob on the requested model);
- `tools`, `thinking`: the summary (no summary counts as false);
- `background`: the agent's side requests. Claude Code's small/fast model (the
  model matches `*haiku*`, case-insensitively, or equals the
  ANTHROPIC_DEFAULT_HAIKU_MODEL / ANTHROPIC_SMALL_FAST_MODEL the agent was
  given), and Gemini CLI's routing classifier (a JSON-mode request on a
  `*flash-lite*` model);
- `min_input_tokens`: estimated as body bytes / 4, no tokenizer and no network;
- `subagent`: Claude Code's `x-claude-code-agent-id` header (or
  `x-claude-code-parent-agent-id`); a string is a glob on the agent-id value.

Session overrides (from in-chat commands) apply to foreground requests only:
background side requests keep their own route, as Claude Code's own `/model`
leaves its haiku calls alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING

from agentwrap.config.model import ProfileConfig, WhenConfig

if TYPE_CHECKING:
    from agentwrap.protocols.neutral.summary import RequestSummary

__all__ = [
    "ESTIMATED_BYTES_PER_TOKEN",
    "AGENT_ID_HEADER",
    "PARENT_AGENT_ID_HEADER",
    "RequestFacts",
    "RouteDecision",
    "Router",
    "SessionOverrides",
    "background_models_for",
    "background_reason",
    "choose_route",
    "needs_summary",
]

ESTIMATED_BYTES_PER_TOKEN = 4
AGENT_ID_HEADER = "x-claude-code-agent-id"
PARENT_AGENT_ID_HEADER = "x-claude-code-parent-agent-id"
HAIKU_MODEL_VARS = ("ANTHROPIC_DEFAULT_HAIKU_MODEL", "ANTHROPIC_SMALL_FAST_MODEL")


@dataclass(frozen=True, slots=True)
class SessionOverrides:
    """What in-chat commands changed for the rest of the session (None = not overridden)."""

    model: str | None = None
    backend: str | None = None
    profile: str | None = None

    @property
    def active(self) -> bool:
        return self.model is not None or self.backend is not None or self.profile is not None


@dataclass(frozen=True, slots=True)
class RequestFacts:
    """What the router may look at for one request. `headers` has lower-cased names."""

    agent: str
    model: str | None
    headers: Mapping[str, str] = field(default_factory=dict)
    body_bytes: int = 0
    summary: RequestSummary | None = None

    @classmethod
    def from_wire(
        cls,
        agent: str,
        model: str | None,
        headers: Iterable[tuple[bytes | str, bytes | str]],
        body: bytes | int,
        summary: RequestSummary | None = None,
    ) -> RequestFacts:
        """Build facts from raw header pairs (bytes or str) and the body (or its length)."""
        wanted: dict[str, str] = {}
        for name, value in headers:
            lname = (name.decode("latin-1") if isinstance(name, bytes) else name).lower()
            if lname in (AGENT_ID_HEADER, PARENT_AGENT_ID_HEADER):
                wanted[lname] = value.decode("latin-1") if isinstance(value, bytes) else value
        size = body if isinstance(body, int) else len(body)
        return cls(agent=agent, model=model, headers=wanted, body_bytes=size, summary=summary)

    @property
    def estimated_input_tokens(self) -> int:
        return self.body_bytes // ESTIMATED_BYTES_PER_TOKEN

    @property
    def agent_id(self) -> str | None:
        """Claude Code's subagent id, or None on the main thread."""
        return self.headers.get(AGENT_ID_HEADER) or None

    @property
    def is_subagent(self) -> bool:
        return bool(self.headers.get(AGENT_ID_HEADER) or self.headers.get(PARENT_AGENT_ID_HEADER))


@dataclass(frozen=True, slots=True)
class RouteDecision:
    route_index: int  # -1 when an override chose the backend
    backend: str
    model: str | None  # rewrite to this model, or None to keep the requested one
    fallbacks: tuple[str, ...]
    reason: str


def background_models_for(profile: ProfileConfig | None, agent: str, env: Mapping[str, str] | None = None) -> frozenset[str]:
    """The model names the agent uses for side requests besides `*haiku*` (Claude Code only)."""
    if agent != "claude":
        return frozenset()
    names: set[str] = set()
    for var in HAIKU_MODEL_VARS:
        if env and env.get(var):
            names.add(env[var])
    if profile is not None:
        configured = profile.agent_env.get(agent, {}).get("ANTHROPIC_DEFAULT_HAIKU_MODEL")
        if configured:
            names.add(configured)
    return frozenset(names)


def background_reason(facts: RequestFacts, background_models: frozenset[str] = frozenset()) -> str | None:
    """Why the request is a background side request, or None if it is not one."""
    model = facts.model or ""
    if model and model in background_models:
        return f"model {model!r} is the agent's haiku model"
    if "haiku" in model.lower():
        return f"model {model!r} matches *haiku*"
    s = facts.summary
    if s is not None and s.json_mode and "flash-lite" in model.lower():
        return f"JSON-mode request on {model!r} (routing classifier)"
    return None


def needs_summary(profile: ProfileConfig, agent: str | None = None) -> bool:
    """True when some rule looks inside the body (so the dispatcher must summarise it).

    `background` needs the summary only for Gemini CLI (its classifier call is
    recognised by JSON mode); pass `agent` to skip the summary for the others.
    """
    for route in profile.routes:
        when = route.when
        if when is None:
            continue
        if when.tools is not None or when.thinking is not None:
            return True
        if when.background is not None and agent in (None, "gemini"):
            return True
    return False


def _glob_reason(pattern: str, value: str) -> str:
    return f"{value!r} matches {pattern}" if any(c in pattern for c in "*?[") else f"= {value!r}"


def _matches(when: WhenConfig, facts: RequestFacts, model: str | None, background: str | None) -> str | None:
    """The reason `when` matches (all given conditions hold), or None."""
    reasons: list[str] = []
    if when.agent is not None:
        if when.agent != facts.agent:
            return None
        reasons.append(f"agent={facts.agent}")
    if when.model is not None:
        if model is None or not fnmatchcase(model, when.model):
            return None
        reasons.append(f"model {_glob_reason(when.model, model)}")
    if when.background is not None:
        if (background is not None) != when.background:
            return None
        reasons.append(f"background ({background})" if background else "not background")
    if when.tools is not None:
        has_tools = bool(facts.summary and facts.summary.tools)
        if has_tools != when.tools:
            return None
        reasons.append(f"tools={has_tools}")
    if when.thinking is not None:
        thinking = bool(facts.summary and facts.summary.thinking)
        if thinking != when.thinking:
            return None
        reasons.append(f"thinking={thinking}")
    if when.min_input_tokens is not None:
        estimate = facts.estimated_input_tokens
        if estimate < when.min_input_tokens:
            return None
        reasons.append(f"~{estimate} input tokens >= {when.min_input_tokens}")
    if when.subagent is not None:
        if isinstance(when.subagent, bool):
            if facts.is_subagent != when.subagent:
                return None
            reasons.append(f"subagent {facts.agent_id!r}" if facts.is_subagent and facts.agent_id else ("subagent" if when.subagent else "main thread"))
        else:
            agent_id = facts.agent_id
            if agent_id is None or not fnmatchcase(agent_id, when.subagent):
                return None
            reasons.append(f"subagent {_glob_reason(when.subagent, agent_id)}")
    return ", ".join(reasons) or "always"


def choose_route(
    profile: ProfileConfig,
    facts: RequestFacts,
    *,
    overrides: SessionOverrides | None = None,
    background_models: frozenset[str] = frozenset(),
) -> RouteDecision | None:
    """The route for one request, or None when no route matches."""
    background = background_reason(facts, background_models)
    foreground = background is None
    ov = overrides if overrides is not None and foreground else None

    if ov is not None and ov.backend is not None and ov.backend in profile.backends:
        why = f"::backend({ov.backend}) override"
        if ov.model is not None:
            why += f", ::model({ov.model}) override"
        return RouteDecision(-1, ov.backend, ov.model, (), why)

    requested = ov.model if ov is not None and ov.model is not None else facts.model
    for i, route in enumerate(profile.routes):
        reason = "always" if route.when is None else _matches(route.when, facts, requested, background)
        if reason is None:
            continue
        rewrite = route.model
        why = f"routes[{i}]: {reason}"
        if ov is not None and ov.model is not None:
            rewrite = ov.model
            why += f"; ::model({ov.model}) override"
        return RouteDecision(i, route.backend, rewrite, route.fallbacks, why)
    return None


class Router:
    """The routing of one session: the profile plus what is fixed for the session.

    `env` is the agent's environment (for its haiku model variables); the
    profile's `[agent_env]` is taken into account too.
    """

    def __init__(self, profile: ProfileConfig, *, agent: str, env: Mapping[str, str] | None = None) -> None:
        self.profile = profile
        self.agent = agent
        self.background_models = background_models_for(profile, agent, env)
        self.needs_summary = needs_summary(profile, agent)

    def choose(self, facts: RequestFacts, overrides: SessionOverrides | None = None) -> RouteDecision | None:
        return choose_route(self.profile, facts, overrides=overrides, background_models=self.background_models)
