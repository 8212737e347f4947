"""What routing and guards need to know of an OpenAI Chat Completions request.

Sans-IO and lenient: odd fields are skipped.
"""

from __future__ import annotations

from typing import Any

from agentwrap.protocols._lenient import as_dict, as_list, as_str
from agentwrap.protocols.neutral.summary import RequestSummary, ToolSpec, join_text, require_dict, tool_spec

__all__ = ["summarize_request"]


def _text_of(content: Any) -> str | None:
    if isinstance(content, str):
        return content
    texts = [p["text"] for p in as_list(content) if isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str)]
    return join_text(texts)


def summarize_request(body: Any, path: str = "") -> RequestSummary:
    """Summarize a Chat Completions request body. Raises `RequestError` if it is not an object."""
    body = require_dict(body)
    messages = [as_dict(m) for m in as_list(body.get("messages"))]
    last_user_text = None
    for message in reversed(messages):
        role = message.get("role")
        if role == "user":
            last_user_text = _text_of(message.get("content"))
            break
        if role == "tool":
            break  # the newest user-side item is a tool result
    tools: list[ToolSpec] = []
    for tool in as_list(body.get("tools")):
        tool = as_dict(tool)
        if tool.get("type") == "custom":
            custom = as_dict(tool.get("custom"))
            spec = tool_spec(custom.get("name"), "custom", custom.get("description"), None)
        else:
            function = as_dict(tool.get("function"))
            spec = tool_spec(function.get("name"), "function", function.get("description"), function.get("parameters"))
        if spec is not None:
            tools.append(spec)
    response_format = as_dict(body.get("response_format"))
    format_type = response_format.get("type")
    schema = as_dict(response_format.get("json_schema")).get("schema") if format_type == "json_schema" else None
    effort = body.get("reasoning_effort")
    return RequestSummary(
        model=as_str(body.get("model")),
        stream=body.get("stream") is True,
        assistant_turns=sum(1 for m in messages if m.get("role") == "assistant"),
        tools=tuple(tools),
        json_schema=schema if isinstance(schema, dict) else None,
        json_mode=format_type in ("json_schema", "json_object"),
        last_user_text=last_user_text,
        thinking=isinstance(effort, str) and effort not in ("none", ""),
    )
