"""The text of a new profile file (`agentwrap profiles new`): a commented header
naming every key, then the profile's TOML."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["STARTER_HEADER", "STARTER_DATA", "leading_comments", "starter_text"]

STARTER_HEADER = """\
# agentwrap profile "{name}". Use it with: agentwrap AGENT --profile {name}
# Reference: docs/profiles.md. Every key, briefly:
#
# description = "..."                      shown by `agentwrap profiles list`
# extends = "NAME"                          start from profile NAME; tables merge, lists replace
#
# [backends.NAME]                           one upstream
#   type = "http"                           or "scripted" (answers from `script = "turns.toml"`)
#   protocol = "anthropic_messages"         | openai_chat | openai_responses | gemini
#   base_url = "https://api.anthropic.com"  OpenAI protocols include /v1; may use ${{VAR}} / ${{VAR:-default}}
#   api_key_env = "ANTHROPIC_API_KEY"       variable holding the key (kept from the agent), or:
#   api_key_cmd = "pass show anthropic"     command printing the key, run when the profile is used
#   auth_scheme = "bearer"                  or "x-api-key": how the key is sent (default: the protocol's usual)
#   headers = {{ "X-Team" = "${{TEAM}}" }}      extra headers for every request
#   timeout_s = 120.0                       connect / first byte / idle timeout
#   max_output_tokens = 8192                lower larger output limits to this (small local models)
#   models = {{ "model-name" = {{ context_window = 200000, max_output_tokens = 64000 }} }}
#
# [[routes]]                                tried in order; the first whose `when` matches wins
#   backend = "NAME"
#   model = "other-model"                   rewrite the requested model (optional)
#   fallbacks = ["NAME2"]                   on connection errors, timeouts, 429/5xx/529
#   when = {{ agent = "claude", model = "*haiku*", background = true, thinking = true,
#            tools = true, min_input_tokens = 100000, subagent = true }}   (all given must hold)
#
# [agent_env.claude]                        Claude Code's model variables, set for the agent
#   ANTHROPIC_MODEL = "..."                 also ANTHROPIC_DEFAULT_{{OPUS,SONNET,HAIKU}}_MODEL,
#                                           CLAUDE_CODE_SUBAGENT_MODEL, CLAUDE_CODE_MAX_CONTEXT_TOKENS
#
# [guards.loop]                             the model's answer going round in circles (all guards are on by default)
#   enabled = true
#   sensitivity = "normal"                  or "low" (fewer, surer catches) | "high" (earlier catches)
#   action = "cut"                          or "warn": end the looping answer, or only record it
# [guards.tool_loop]                        the same tool call with the same result, again and again
#   enabled = true
#   max_repeats = 4                         identical call+result rounds before agentwrap steps in (at least 2)
# [guards.tool_repair]                      fix malformed tool calls before the agent sees them
#   enabled = true
#   arguments = true                        invalid argument JSON
#   names = true                            a tool name that is not quite one the agent offered
#   text_calls = true                       tool calls written out as text
"""

STARTER_DATA: dict[str, Any] = {
    "description": "My profile: Claude Code to the Anthropic API.",
    "backends": {
        "main": {
            "protocol": "anthropic_messages",
            "base_url": "https://api.anthropic.com",
            "api_key_env": "ANTHROPIC_API_KEY",
        }
    },
    "routes": [{"backend": "main"}],
}


def leading_comments(path: Path) -> list[str]:
    """The comment lines a profile file opens with (they explain it; tomli-w cannot carry them)."""
    lines = []
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        lines.append(line)
    return lines


def starter_text(name: str, data: dict[str, Any], origin: str | None, origin_comments: list[str] | tuple[str, ...] = ()) -> str:
    import tomli_w

    head = STARTER_HEADER.format(name=name)
    if origin:
        head += f"#\n# Copied from {origin}:\n"
    if origin_comments:
        head += "".join(f"{line}\n" for line in origin_comments)
    return head + "\n" + tomli_w.dumps(data)
