"""The resolved profile as plain dataclasses: what the router and backends use.

The pydantic-core schema in `schema.py` validates TOML into these; code that
builds a profile without a file (the zero-config native pass-through) uses them
directly and so never imports pydantic.

Values read from environment variables (`${NAME}` in base_url, headers, route
models, agent_env) are already expanded here; `api_key_cmd` is expanded too but
is only *run* when the session asks for the key (`config.keys.backend_key`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "BackendConfig",
    "ModelInfo",
    "WhenConfig",
    "RouteConfig",
    "LoopGuardConfig",
    "ToolLoopGuardConfig",
    "ToolRepairConfig",
    "GuardsConfig",
    "ProfileConfig",
    "CLAUDE_AGENT_ENV_VARS",
    "LOOP_SENSITIVITIES",
    "LOOP_ACTIONS",
    "TOOL_LOOP_MAX_REPEATS",
    "TOOL_LOOP_MIN_REPEATS",
]

# The Claude Code variables a profile may set for the agent ([agent_env.claude]).
CLAUDE_AGENT_ENV_VARS = (
    "ANTHROPIC_MODEL",
    "ANTHROPIC_DEFAULT_OPUS_MODEL",
    "ANTHROPIC_DEFAULT_SONNET_MODEL",
    "ANTHROPIC_DEFAULT_HAIKU_MODEL",
    "CLAUDE_CODE_SUBAGENT_MODEL",
    "CLAUDE_CODE_MAX_CONTEXT_TOKENS",
)


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What a profile knows about one model a backend serves."""

    context_window: int | None = None
    max_output_tokens: int | None = None


@dataclass(frozen=True, slots=True)
class BackendConfig:
    name: str
    type: str = "http"  # "http" | "scripted" | "replay"
    protocol: str | None = None  # None for scripted and replay: they speak whatever the agent speaks
    base_url: str | None = None
    api_key_env: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    timeout_s: float | None = None
    script: str | None = None  # absolute path, for type = "scripted"
    api_key_cmd: str | None = None  # a shell command printing the key; run only when the profile is used
    auth_scheme: str | None = None  # "bearer" | "x-api-key"; None = the protocol's usual header
    models: dict[str, ModelInfo] = field(default_factory=dict)
    # Most output tokens a request to this backend may ask for; larger limits are lowered to it.
    max_output_tokens: int | None = None
    # "agent": the agent's own key or login goes to this backend; "none": no credential at all;
    # None: decided by session.plan (the agent's own provider endpoint gets them, nothing else does).
    credentials: str | None = None

    def speaks(self, protocol: str) -> bool:
        return self.type == "scripted" or self.type == "replay" or self.protocol == protocol

    @property
    def has_key_source(self) -> bool:
        """True when agentwrap supplies this backend's key (from a variable or a command)."""
        return bool(self.api_key_env or self.api_key_cmd)


@dataclass(frozen=True, slots=True)
class WhenConfig:
    """Conditions of one route; every condition given must hold (None = not checked)."""

    agent: str | None = None
    model: str | None = None  # glob on the requested model
    tools: bool | None = None
    thinking: bool | None = None
    background: bool | None = None  # the agent's small/fast side requests
    min_input_tokens: int | None = None  # estimated from the request body size
    subagent: bool | str | None = None  # True/False, or a glob on the x-claude-code-agent-id header


@dataclass(frozen=True, slots=True)
class RouteConfig:
    backend: str
    model: str | None = None  # rewrite the requested model
    when: WhenConfig | None = None
    fallbacks: tuple[str, ...] = ()


LOOP_SENSITIVITIES = ("low", "normal", "high")
LOOP_ACTIONS = ("cut", "warn")
TOOL_LOOP_MAX_REPEATS = 4
TOOL_LOOP_MIN_REPEATS = 2  # 1 would step in after any single call


@dataclass(frozen=True, slots=True)
class LoopGuardConfig:
    """`[guards.loop]`: repetition in the model's own output (text or thinking going round)."""

    enabled: bool = True
    sensitivity: str = "normal"  # one of LOOP_SENSITIVITIES
    action: str = "cut"  # one of LOOP_ACTIONS: end the looping answer, or only record it


@dataclass(frozen=True, slots=True)
class ToolLoopGuardConfig:
    """`[guards.tool_loop]`: the same tool call with the same result, again and again."""

    enabled: bool = True
    max_repeats: int = TOOL_LOOP_MAX_REPEATS  # identical call+result steps in a row before agentwrap steps in


@dataclass(frozen=True, slots=True)
class ToolRepairConfig:
    """`[guards.tool_repair]`: fixing malformed tool calls in the model's answer."""

    enabled: bool = True
    arguments: bool = True  # invalid argument JSON
    names: bool = True  # a tool name that is not quite one the agent offered
    text_calls: bool = True  # tool calls written out as text


@dataclass(frozen=True, slots=True)
class GuardsConfig:
    """`[guards]`: every guard is on by default, the zero-config native profile included."""

    loop: LoopGuardConfig = LoopGuardConfig()
    tool_loop: ToolLoopGuardConfig = ToolLoopGuardConfig()
    tool_repair: ToolRepairConfig = ToolRepairConfig()


@dataclass(frozen=True, slots=True)
class ProfileConfig:
    name: str
    source: str  # file path (with "[profiles.NAME]" for a project inline profile), or "<built-in native ...>"
    backends: dict[str, BackendConfig] = field(default_factory=dict)
    routes: tuple[RouteConfig, ...] = ()
    description: str = ""
    source_kind: str = "path"  # "built-in" | "user" | "project" | "path" | "native"
    # Variables to set in the agent's environment, per agent: {"claude": {"ANTHROPIC_MODEL": "..."}}.
    agent_env: dict[str, dict[str, str]] = field(default_factory=dict)
    guards: GuardsConfig = GuardsConfig()
