"""Agent request bodies with tool-call steps, built on the recorded request shapes.

Each builder starts from a real request in `tests/fixtures/streams/requests/` (cut
after the user's prompt) and appends tool steps the way that agent sends
them: Claude Code `tool_use`/`tool_result` blocks with `cache_control`,
Codex `function_call`/`function_call_output` (classic) and
`custom_tool_call`/`custom_tool_call_output` (code mode) items with
`reasoning` items between, Gemini CLI `functionCall`/`functionResponse` parts
with timestamped ids and thought signatures. A Chat body stands for
OpenAI-compatible clients.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentwrap.protocols import codec as wire

REQUESTS = Path(__file__).resolve().parents[1] / "fixtures" / "streams" / "requests"


@dataclass(frozen=True)
class Call:
    """One tool call and its result. `args` is a dict, or the raw text for
    custom tools and for JSON written with its own spacing."""

    name: str
    args: Any
    result: str
    custom: bool = False
    error: bool = False


Step = list  # of Call: the calls of one assistant message (parallel when more than one)


def _fixture(name: str) -> dict:
    return json.loads((REQUESTS / name).read_text(encoding="utf-8"))


def _args_text(call: Call) -> str:
    return call.args if isinstance(call.args, str) else json.dumps(call.args)


def _args_object(call: Call) -> Any:
    return json.loads(call.args) if isinstance(call.args, str) else call.args


# -- per agent ----------------------------------------------------------------------------


def claude_code(steps: list[Step], tail: list[dict] | None = None) -> dict:
    body = _fixture("claude-code-tool-turn.json")
    messages = body["messages"][:2]  # the prompt and Claude Code's system entry
    for k, step in enumerate(steps):
        ids = [f"toolu_{k:02d}_{j}" for j in range(len(step))]
        messages.append(
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": i, "name": c.name, "input": _args_object(c)} for i, c in zip(ids, step)],
            }
        )
        results = []
        for i, c in zip(ids, step):
            block = {"tool_use_id": i, "type": "tool_result", "content": c.result, "is_error": c.error}
            results.append(block)
        results[-1]["cache_control"] = {"type": "ephemeral"}
        messages.append({"role": "user", "content": results})
    body["messages"] = messages + (tail or [])
    return body


def codex(steps: list[Step], tail: list[dict] | None = None, *, code_mode: bool = False) -> dict:
    body = _fixture("codex-code-mode.json" if code_mode else "codex-classic.json")
    items = body["input"]
    cut = max(i for i, item in enumerate(items) if item.get("role") == "user") + 1
    items = items[:cut]
    for k, step in enumerate(steps):
        items.append({"type": "reasoning", "id": f"rs_{k}", "summary": [], "encrypted_content": f"gAAAA{k}"})
        ids = [f"call_{k:02d}_{j}" for j in range(len(step))]
        for i, c in zip(ids, step):
            if c.custom:
                items.append({"type": "custom_tool_call", "id": f"ctc_{i}", "status": "completed", "call_id": i, "name": c.name, "input": c.args})
            else:
                items.append({"type": "function_call", "status": "completed", "id": f"fc_{i}", "name": c.name, "arguments": _args_text(c), "call_id": i})
        for i, c in zip(ids, step):
            if c.custom:
                items.append({"type": "custom_tool_call_output", "id": f"ctco_{i}", "call_id": i, "output": [{"type": "input_text", "text": c.result}]})
            else:
                items.append({"type": "function_call_output", "id": f"fco_{i}", "call_id": i, "output": c.result})
    body["input"] = items + (tail or [])
    return body


def codex_code_mode(steps: list[Step], tail: list[dict] | None = None) -> dict:
    return codex(steps, tail, code_mode=True)


def gemini_cli(steps: list[Step], tail: list[dict] | None = None) -> dict:
    body = _fixture("gemini-cli-tool-turn.json")
    contents = body["contents"][:1]
    for k, step in enumerate(steps):
        ids = [f"{c.name}_{1795669097202 + k * 1000}_{j}" for j, c in enumerate(step)]
        parts = []
        for j, (i, c) in enumerate(zip(ids, step)):
            part: dict[str, Any] = {"functionCall": {"id": i, "args": _args_object(c), "name": c.name}}
            if j == 0:
                part["thoughtSignature"] = "skip_thought_signature_validator"
            parts.append(part)
        contents.append({"parts": parts, "role": "model"})
        responses = [
            {"functionResponse": {"name": c.name, "response": {"error" if c.error else "output": c.result}, "id": i}}
            for i, c in zip(ids, step)
        ]
        contents.append({"parts": responses, "role": "user"})
    body["contents"] = contents + (tail or [])
    return body


def openai_chat(steps: list[Step], tail: list[dict] | None = None) -> dict:
    messages: list[dict] = [
        {"role": "system", "content": "You are a coding agent."},
        {"role": "user", "content": "create a file named made.txt"},
    ]
    for k, step in enumerate(steps):
        ids = [f"call_{k:02d}_{j}" for j in range(len(step))]
        messages.append(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": i, "type": "function", "function": {"name": c.name, "arguments": _args_text(c)}} for i, c in zip(ids, step)
                ],
            }
        )
        messages.extend({"role": "tool", "tool_call_id": i, "content": c.result} for i, c in zip(ids, step))
    return {"model": "gpt-4.1", "stream": True, "messages": messages + (tail or []), "tools": []}


@dataclass(frozen=True)
class Agent:
    """One agent's request shape: its protocol, a builder, its usual tool, and a user turn in its words."""

    name: str
    protocol: str
    build: Any
    tool: str
    path: str = ""

    def body(self, steps: list[Step], tail: list[dict] | None = None) -> dict:
        return self.build(steps, tail)

    def decode(self, body: dict):
        return wire.codec(self.protocol).decode_request(copy.deepcopy(body), self.path)

    def user_turn(self, text: str) -> list[dict]:
        """A final assistant answer and a new user message, as this agent sends them."""
        if self.protocol == "anthropic_messages":
            return [
                {"role": "assistant", "content": [{"type": "text", "text": "It keeps failing."}]},
                {"role": "user", "content": [{"type": "text", "text": text}]},
            ]
        if self.protocol == "openai_responses":
            return [
                {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "It keeps failing."}]},
                {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]},
            ]
        if self.protocol == "gemini":
            return [{"role": "model", "parts": [{"text": "It keeps failing."}]}, {"role": "user", "parts": [{"text": text}]}]
        return [{"role": "assistant", "content": "It keeps failing."}, {"role": "user", "content": text}]


AGENTS = [
    Agent("claude-code", "anthropic_messages", claude_code, "Bash"),
    Agent("codex-classic", "openai_responses", codex, "exec_command"),
    Agent("gemini-cli", "gemini", gemini_cli, "run_shell_command", "/v1beta/models/gemini-3-pro-preview:streamGenerateContent?alt=sse"),
    Agent("chat-client", "openai_chat", openai_chat, "shell"),
]


def shell_call(agent: Agent, command: str, result: str, **kw: Any) -> Call:
    """The agent's shell tool, called the way the agent calls it."""
    key = "cmd" if agent.name.startswith("codex") else "command"
    return Call(agent.tool, {key: command, **kw}, result)
