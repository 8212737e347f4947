"""Claude Code: Anthropic Messages at ANTHROPIC_BASE_URL (path prefix kept)."""

from __future__ import annotations

from collections.abc import Mapping

from agentwrap.agents.base import AgentSpec, Wiring


def _wire(origin: str, secret: str, key_mode: bool, env: Mapping[str, str], tmpdir: str, args: list[str]) -> Wiring:
    # The secret is the base URL's first path segment: Claude Code keeps a path prefix,
    # and its own OAuth bearer must pass through untouched in login mode.
    w = Wiring(env_set={"ANTHROPIC_BASE_URL": f"{origin}/{secret}"})
    if key_mode:
        # ANTHROPIC_AUTH_TOKEN (sent as Bearer) rather than ANTHROPIC_API_KEY: interactive
        # Claude Code asks the user to approve every new ANTHROPIC_API_KEY value.
        w.env_set["ANTHROPIC_AUTH_TOKEN"] = secret
        w.env_unset.append("ANTHROPIC_API_KEY")
    return w


CLAUDE = AgentSpec(
    name="claude",
    binary="claude",
    npm_package="@anthropic-ai/claude-code",
    protocol="anthropic_messages",
    native_base_url="https://api.anthropic.com",
    key_variables=(("ANTHROPIC_API_KEY", "x-api-key"), ("ANTHROPIC_AUTH_TOKEN", "bearer")),
    wire=_wire,
)
