"""What routing and guards need to know of an OpenAI Responses request.

Sans-IO and lenient: odd fields are skipped.
"""

from __future__ import annotations

from typing import Any

from agentwrap.protocols._lenient import as_dict, as_list, as_str
from agentwrap.protocols.neutral.summary import RequestSummary, ToolSpec, join_text, require_dict, tool_spec

__all__ = ["summarize_request"]

# Input items the model produced; a maximal run of them is one assistant turn.
_OUTPUT_ITEMS = {
    "function_call",
    "custom_tool_call",
    "reasoning",
    "local_shell_call",
    "shell_call",
    "apply_patch_call",
    "web_search_call",
    "file_search_call",
    "computer_call",
    "code_interpreter_call",
    "image_generation_call",
    "mcp_call",
    "tool_search_call",
    "compaction",
}


def _content_text(content: Any) -> str | None:
    if isinstance(content, str):
        return content
    texts = [
        p["text"]
        for p in as_list(content)
        if isinstance(p, dict) and p.get("type") in ("input_text", "text", "output_text") and isinstance(p.get("text"), str)
    ]
    return join_text(texts)


def _tools(raw: Any, out: list[ToolSpec]) -> None:
    for tool in as_list(raw):
        tool = as_dict(tool)
        kind = tool.get("type")
        if kind == "function":
            spec = tool_spec(tool.get("name"), "function", tool.get("description"), tool.get("parameters"))
        elif kind == "custom":
            spec = tool_spec(tool.get("name"), "custom", tool.get("description"), None)
        elif kind == "namespace":
            # Codex code mode (0.169) groups its tools in namespaces ("functions", "clock", ...).
            _tools(tool.get("tools"), out)
            continue
        else:
            continue  # built-in tools (web_search, local_shell...) have no schema to route on
        if spec is not None:
            out.append(spec)


def summarize_request(body: Any, path: str = "") -> RequestSummary:
    """Summarize a Responses request body. Raises `RequestError` if it is not an object."""
    body = require_dict(body)
    raw_input = body.get("input")
    items = [{"type": "message", "role": "user", "content": raw_input}] if isinstance(raw_input, str) else [as_dict(i) for i in as_list(raw_input)]
    tools: list[ToolSpec] = []
    _tools(body.get("tools"), tools)
    turns = 0
    in_turn = False
    last_user_text = None
    for item in items:
        kind = item.get("type", "message")  # EasyInputMessage may omit "type"
        if not isinstance(kind, str):
            continue
        if kind == "additional_tools":
            # Codex "responses lite" (2026) sends tools as an input item.
            _tools(item.get("tools"), tools)
            continue
        output_side = kind in _OUTPUT_ITEMS or (kind == "message" and item.get("role") == "assistant")
        if output_side and not in_turn:
            turns += 1
        in_turn = output_side
        if kind == "message" and item.get("role") == "user":
            last_user_text = _content_text(item.get("content"))
        elif kind.endswith("_output"):
            last_user_text = None  # the newest user-side item is a tool result
    text_format = as_dict(as_dict(body.get("text")).get("format"))
    schema = text_format.get("schema") if text_format.get("type") == "json_schema" else None
    reasoning = body.get("reasoning")
    effort = as_dict(reasoning).get("effort")
    return RequestSummary(
        model=as_str(body.get("model")),
        stream=body.get("stream") is True,
        assistant_turns=turns,
        tools=tuple(tools),
        json_schema=schema if isinstance(schema, dict) else None,
        json_mode=text_format.get("type") in ("json_schema", "json_object"),
        last_user_text=last_user_text,
        thinking=isinstance(reasoning, dict) and effort != "none",
    )
