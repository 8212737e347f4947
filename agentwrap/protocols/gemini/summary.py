"""What routing and guards need to know of a Gemini generateContent request.

Sans-IO and lenient: odd fields are skipped.
"""

from __future__ import annotations

from typing import Any

from agentwrap.protocols._lenient import as_dict, as_list, as_str
from agentwrap.protocols.gemini.request import MODEL_PATH
from agentwrap.protocols.neutral.summary import RequestSummary, ToolSpec, join_text, require_dict, tool_spec

__all__ = ["summarize_request"]


def _user_text(parts: list) -> tuple[str | None, bool]:
    texts: list[str] = []
    responses = False
    for part in parts:
        part = as_dict(part)
        if isinstance(part.get("text"), str) and not part.get("thought"):
            texts.append(part["text"])
        elif "functionResponse" in part or "function_response" in part:
            responses = True
    return join_text(texts), responses and not texts


def summarize_request(body: Any, path: str = "") -> RequestSummary:
    """Summarize a generateContent request; model and stream come from `path`.

    Also accepts the Code Assist envelope Gemini CLI uses with Google login
    (`{"model": ..., "request": {...}}` on `v1internal:streamGenerateContent`).
    Raises `RequestError` if the body is not an object.
    """
    body = require_dict(body)
    path = path.split("?", 1)[0]
    model = None
    match = MODEL_PATH.search(path)
    method = path.rsplit(":", 1)[1] if ":" in path.rsplit("/", 1)[-1] else ""
    if match:
        model = match.group(1)
        method = match.group(2) or method
    if "contents" not in body and isinstance(body.get("request"), dict):
        model = model or as_str(body.get("model"))
        body = body["request"]
    contents = [as_dict(c) for c in as_list(body.get("contents"))]
    last_user_text = None
    for content in reversed(contents):
        if content.get("role", "user") == "user":
            text, only_responses = _user_text(as_list(content.get("parts")))
            last_user_text = None if only_responses else text
            break
    tools: list[ToolSpec] = []
    for tool in as_list(body.get("tools")):
        tool = as_dict(tool)
        for decl in as_list(tool.get("functionDeclarations", tool.get("function_declarations"))):
            decl = as_dict(decl)
            params = decl.get("parametersJsonSchema", decl.get("parameters"))
            spec = tool_spec(decl.get("name"), "function", decl.get("description"), params)
            if spec is not None:
                tools.append(spec)
    config = as_dict(body.get("generationConfig"))
    json_mode = config.get("responseMimeType") == "application/json"
    schema = config.get("responseJsonSchema", config.get("responseSchema")) if json_mode else None
    thinking_config = config.get("thinkingConfig")
    thinking = isinstance(thinking_config, dict) and bool(
        thinking_config.get("includeThoughts")
        or thinking_config.get("thinkingLevel")
        or thinking_config.get("thinkingBudget") not in (None, 0)
    )
    return RequestSummary(
        model=model.removeprefix("models/") if model else None,
        stream=method == "streamGenerateContent",
        assistant_turns=sum(1 for c in contents if c.get("role") == "model"),
        tools=tuple(tools),
        json_schema=schema if isinstance(schema, dict) else None,
        json_mode=json_mode,
        last_user_text=last_user_text,
        thinking=thinking,
    )
