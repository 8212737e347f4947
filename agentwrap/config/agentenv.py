"""What a profile sets in the agent's environment (Claude Code's model variables).

Pure: the profile in, a dict of variables out; the session applies it.
"""

from __future__ import annotations

from agentwrap.config.model import ProfileConfig

__all__ = ["agent_environment", "context_window"]


def context_window(profile: ProfileConfig, model: str) -> int | None:
    """The context window some backend of `profile` declares for `model`, if any."""
    for backend in profile.backends.values():
        info = backend.models.get(model)
        if info is not None and info.context_window:
            return info.context_window
    return None


def _main_models(profile: ProfileConfig, agent: str, variables: dict[str, str]) -> list[str]:
    """The models the agent's main turns may end up on: ANTHROPIC_MODEL; else the opus and
    sonnet defaults the profile sets; else the rewrite of the first route that applies to
    every request of this agent."""
    if variables.get("ANTHROPIC_MODEL"):
        return [variables["ANTHROPIC_MODEL"]]
    defaults = [variables[v] for v in ("ANTHROPIC_DEFAULT_OPUS_MODEL", "ANTHROPIC_DEFAULT_SONNET_MODEL") if variables.get(v)]
    if defaults:
        return defaults
    for route in profile.routes:
        when = route.when
        unconditional = when is None or (
            when.agent in (None, agent)
            and when.model is None
            and when.tools is None
            and when.thinking is None
            and when.background is None
            and when.min_input_tokens is None
            and when.subagent is None
        )
        if unconditional:
            return [route.model] if route.model else []
    return []


def agent_environment(profile: ProfileConfig, agent: str) -> dict[str, str]:
    """Variables to set for `agent`: the profile's `[agent_env.AGENT]` table, plus, for
    Claude Code, `CLAUDE_CODE_MAX_CONTEXT_TOKENS` when the profile does not set it: the
    smallest context window declared (in a backend's `models`) for the main models, so
    the agent compacts before the routed model overflows.
    """
    variables = dict(profile.agent_env.get(agent, {}))
    if agent == "claude" and "CLAUDE_CODE_MAX_CONTEXT_TOKENS" not in variables:
        windows = [w for m in _main_models(profile, agent, variables) if (w := context_window(profile, m))]
        if windows:
            variables["CLAUDE_CODE_MAX_CONTEXT_TOKENS"] = str(min(windows))
    return variables
