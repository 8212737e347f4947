"""What routing and guards need to know of an Anthropic Messages request.

Sans-IO and lenient: odd fields are skipped.
"""

from __future__ import annotations

from typing import Any

from agentwrap.protocols._lenient import as_dict, as_list, as_str
from agentwrap.protocols.neutral.summary import RequestSummary, ToolSpec, require_dict, tool_spec

__all__ = ["summarize_request"]


def _text_of(content: Any) -> tuple[str | None, bool]:
    """(joined text, whether it holds only tool results) of one message's content."""
    if isinstance(content, str):
        return content, False
    texts: list[str] = []
    tool_results = False
    for block in as_list(content):
        block = as_dict(block)
        if block.get("type") == "text" and isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif block.get("type") == "tool_result":
            tool_results = True
    # The newest text block is what the user typed: Claude Code puts its
    # <system-reminder> blocks before the prompt in the same message (2.1.x).
    return (texts[-1] if texts else None), tool_results and not texts


def summarize_request(body: Any, path: str = "") -> RequestSummary:
    """Summarize a Messages request body. Raises `RequestError` if it is not an object."""
    body = require_dict(body)
    messages = [as_dict(m) for m in as_list(body.get("messages"))]
    last_user_text = None
    for message in reversed(messages):
        if message.get("role") == "user":
            text, only_results = _text_of(message.get("content"))
            last_user_text = None if only_results else text
            break
    tools: list[ToolSpec] = []
    for tool in as_list(body.get("tools")):
        tool = as_dict(tool)
        # Server tools (web_search, bash_20250124...) have no input_schema.
        spec = tool_spec(tool.get("name"), "function", tool.get("description"), tool.get("input_schema"))
        if spec is not None:
            tools.append(spec)
    thinking = body.get("thinking")
    output_format = as_dict(as_dict(body.get("output_config")).get("format")) or as_dict(body.get("output_format"))
    schema = output_format.get("schema") if output_format.get("type") == "json_schema" else None
    return RequestSummary(
        model=as_str(body.get("model")),
        stream=body.get("stream") is True,
        assistant_turns=sum(1 for m in messages if m.get("role") == "assistant"),
        tools=tuple(tools),
        json_schema=schema if isinstance(schema, dict) else None,
        json_mode=isinstance(schema, dict),
        last_user_text=last_user_text,
        thinking=isinstance(thinking, dict) and thinking.get("type", "enabled") != "disabled",
    )
