"""OpenAI Chat Completions requests to and from the neutral model.

The backend side aims at OpenAI-compatible servers too (vLLM, Ollama,
llama.cpp, OpenRouter): freeform custom tools become function tools with one
string parameter `input` (few servers know `type: "custom"`), the system
prompt is one `system` message, and thinking is sent back as
`reasoning_content` only when it came from a Chat backend. Sans-IO.
"""

from __future__ import annotations

from typing import Any

from agentwrap.errors import RequestError
from agentwrap.protocols._blocks import dumps
from agentwrap.protocols._lenient import as_dict, as_list
from agentwrap.protocols.neutral.request import (
    DocumentPart,
    ImagePart,
    MessageBuilder,
    NeutralRequest,
    Reasoning,
    ResponseFormat,
    TextPart,
    ThinkingPart,
    Tool,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
    data_url,
    origin_meta,
    parse_data_url,
    function_tool,
    system_text,
    wire_tool_name,
)
from agentwrap.protocols.neutral.summary import require_dict
from agentwrap.protocols.schema import clean_schema

__all__ = ["decode_request", "encode_request", "effort_for"]

PROTOCOL = "openai_chat"
_STRUCTURAL = {"model", "messages", "tools", "tool_choice", "parallel_tool_calls", "max_tokens", "max_completion_tokens", "stream"}
_MAX_STOP = 4  # OpenAI accepts at most four stop sequences
_BUDGET_EFFORT = ((2048, "low"), (12000, "medium"))


def effort_for(reasoning: Reasoning) -> str:
    """An OpenAI effort (minimal..high) for neutral reasoning settings."""
    effort = reasoning.effort
    if effort in ("minimal", "low", "medium", "high"):
        return effort
    if effort == "max":
        return "high"  # "xhigh" exists only on a few models
    if reasoning.budget_tokens is not None:
        return next((e for limit, e in _BUDGET_EFFORT if reasoning.budget_tokens <= limit), "high")
    return "medium"


# -- decode -------------------------------------------------------------------


def _image(url: str) -> ImagePart:
    parsed = parse_data_url(url)
    return ImagePart(parsed[0], parsed[1]) if parsed else ImagePart(url=url)


def _parts(content: Any) -> list:
    if isinstance(content, str):
        return [TextPart(content)]
    parts: list = []
    for item in as_list(content):
        item = as_dict(item)
        kind = item.get("type")
        if kind in ("text", "refusal"):
            parts.append(TextPart(str(item.get(kind) or "")))
        elif kind == "image_url":
            parts.append(_image(str(as_dict(item.get("image_url")).get("url") or "")))
        elif kind == "file":
            file = as_dict(item.get("file"))
            parsed = parse_data_url(str(file.get("file_data") or ""))
            if parsed is None:
                raise RequestError("Chat file parts by file_id cannot be translated for another backend; send file_data.")
            parts.append(DocumentPart(parsed[0], parsed[1], title=str(file.get("filename") or "")))
        else:
            raise RequestError(f"Chat content part {kind!r} cannot be translated for another backend.")
    return parts


def _custom_format(fmt: Any) -> dict | None:
    grammar = as_dict(as_dict(fmt).get("grammar"))
    if grammar:
        return {"type": "grammar", "syntax": grammar.get("syntax", ""), "definition": grammar.get("definition", "")}
    return None


def _assistant(message: dict) -> list:
    parts: list = []
    reasoning = message.get("reasoning_content")
    if isinstance(reasoning, str) and reasoning:
        parts.append(ThinkingPart(reasoning, {"protocol": PROTOCOL}))
    content = message.get("content")
    if content is not None:
        parts.extend(p for p in _parts(content) if not isinstance(p, TextPart) or p.text)
    for call in as_list(message.get("tool_calls")):
        call = as_dict(call)
        if call.get("type") == "custom":
            custom = as_dict(call.get("custom"))
            parts.append(ToolCallPart(str(call.get("id") or ""), str(custom.get("name") or ""), str(custom.get("input") or ""), "custom"))
        else:
            function = as_dict(call.get("function"))
            arguments = function.get("arguments")
            parts.append(ToolCallPart(str(call.get("id") or ""), str(function.get("name") or ""), arguments if isinstance(arguments, str) else dumps(arguments or {})))
    return parts


def decode_request(body: Any, path: str = "") -> NeutralRequest:
    """Decode a Chat Completions request. Raises `RequestError` for what cannot be translated."""
    body = require_dict(body)
    builder = MessageBuilder()
    for message in as_list(body.get("messages")):
        message = as_dict(message)
        role = message.get("role")
        if role in ("system", "developer"):
            builder.add_system(_parts(message.get("content")))
        elif role == "user":
            builder.add("user", _parts(message.get("content")))
        elif role == "assistant":
            builder.add("assistant", _assistant(message))
        elif role == "tool":
            content = message.get("content")
            value = content if isinstance(content, str) else _parts(content)
            builder.add("user", [ToolResultPart(str(message.get("tool_call_id") or ""), value)])
        else:
            raise RequestError(f"Chat message role {role!r} cannot be translated for another backend.")
    system, messages = builder.result()
    tools: list[Tool] = []
    for tool in as_list(body.get("tools")):
        tool = as_dict(tool)
        if tool.get("type") == "custom":
            custom = as_dict(tool.get("custom"))
            tools.append(Tool(str(custom.get("name") or ""), str(custom.get("description") or ""), None, "custom", _custom_format(custom.get("format"))))
        else:
            function = as_dict(tool.get("function"))
            params = function.get("parameters")
            tools.append(Tool(str(function.get("name") or ""), str(function.get("description") or ""), params if isinstance(params, dict) else None))
    choice = body.get("tool_choice")
    tool_choice = None
    if isinstance(choice, str) and choice in ("auto", "none", "required"):
        tool_choice = ToolChoice(choice)
    elif isinstance(choice, dict) and choice.get("type") in ("function", "custom"):
        tool_choice = ToolChoice("tool", str(as_dict(choice.get(choice["type"])).get("name") or ""))
    if isinstance(body.get("parallel_tool_calls"), bool):
        tool_choice = tool_choice or ToolChoice()
        tool_choice.parallel = body["parallel_tool_calls"]
    stop = body.get("stop")
    effort = body.get("reasoning_effort") or as_dict(body.get("reasoning")).get("effort")
    fmt = as_dict(body.get("response_format"))
    response_format = None
    if fmt.get("type") == "json_object":
        response_format = ResponseFormat()
    elif fmt.get("type") == "json_schema":
        spec = as_dict(fmt.get("json_schema"))
        schema = spec.get("schema")
        response_format = ResponseFormat("json_schema", schema if isinstance(schema, dict) else {}, str(spec.get("name") or "response"), spec.get("strict") is True)
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    return NeutralRequest(
        model=str(body.get("model") or ""),
        system=system,
        messages=messages,
        tools=tools,
        tool_choice=tool_choice,
        max_tokens=max_tokens if isinstance(max_tokens, int) else None,
        temperature=body.get("temperature") if isinstance(body.get("temperature"), (int, float)) else None,
        top_p=body.get("top_p") if isinstance(body.get("top_p"), (int, float)) else None,
        stop=[stop] if isinstance(stop, str) else [s for s in as_list(stop) if isinstance(s, str)],
        stream=body.get("stream") is True,
        reasoning=Reasoning(effort=effort) if isinstance(effort, str) else None,
        response_format=response_format,
        metadata=as_dict(body.get("metadata")),
        extra={k: v for k, v in body.items() if k not in _STRUCTURAL},
        origin=PROTOCOL,
    )


# -- encode -------------------------------------------------------------------


def _content_part(part: Any) -> dict:
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text}
    if isinstance(part, ImagePart):
        return {"type": "image_url", "image_url": {"url": data_url(part.media_type, part.data) if part.data else part.url}}
    if isinstance(part, DocumentPart):
        if not part.data:
            raise RequestError("Chat backends take documents inline only; a document URL cannot be sent.")
        return {"type": "file", "file": {"file_data": data_url(part.media_type, part.data), "filename": part.title or "document.pdf"}}
    raise RequestError(f"{type(part).__name__} cannot appear in a Chat user message.")


def _content(parts: list) -> str | list:
    if len(parts) == 1 and isinstance(parts[0], TextPart):
        return parts[0].text
    return [_content_part(p) for p in parts]


def _user(parts: list, out: list[dict]) -> None:
    # Chat wants each call's `tool` message right after the assistant turn,
    # before any user text, and tool messages carry text only: images a tool
    # returned follow in a user message, labelled with the call they belong to.
    rest = [p for p in parts if not isinstance(p, ToolResultPart) and (not isinstance(p, TextPart) or p.text)]
    media: list = []
    for part in parts:
        if isinstance(part, ToolResultPart):
            content = part.content
            if isinstance(content, list):
                extra = [p for p in content if not isinstance(p, TextPart)]
                if extra:
                    media += [TextPart(f"[images returned by tool call {part.call_id}]"), *extra]
                text = "\n".join(p.text for p in content if isinstance(p, TextPart))
            else:
                text = content
            out.append({"role": "tool", "tool_call_id": part.call_id, "content": text})
    if media or rest:
        out.append({"role": "user", "content": _content(media + rest)})


def _assistant_message(parts: list) -> dict | None:
    texts, calls, thoughts = [], [], []
    for part in parts:
        if isinstance(part, TextPart):
            texts.append(part.text)
        elif isinstance(part, ToolCallPart):
            arguments = dumps({"input": part.arguments_json}) if part.tool_kind == "custom" else (part.arguments_json or "{}")
            calls.append({"id": part.call_id, "type": "function", "function": {"name": wire_tool_name(part.name, PROTOCOL), "arguments": arguments}})
        elif isinstance(part, ThinkingPart):
            if origin_meta(part.provider_meta, PROTOCOL) is not None and part.text:
                thoughts.append(part.text)
        else:
            raise RequestError(f"{type(part).__name__} cannot appear in a Chat assistant message.")
    if not texts and not calls:
        return None
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts else None}
    if thoughts:
        message["reasoning_content"] = "".join(thoughts)
    if calls:
        message["tool_calls"] = calls
    return message


def encode_request(req: NeutralRequest, model: str) -> tuple[str, dict]:
    """(path, body) of a Chat Completions request. Raises `RequestError` for what cannot be sent."""
    messages: list[dict] = []
    system = system_text(req, PROTOCOL)
    if system:
        messages.append({"role": "system", "content": system})
    for message in req.messages:
        if message.role == "user":
            _user(message.parts, messages)
        else:
            assistant = _assistant_message(message.parts)
            if assistant is not None:
                messages.append(assistant)
    body: dict[str, Any] = {"model": model, "messages": messages}
    if req.tools:
        tools = []
        for tool in req.tools:
            name, description, params = function_tool(tool, PROTOCOL)
            function: dict[str, Any] = {"name": name, "parameters": params}
            if description:
                function["description"] = description
            tools.append({"type": "function", "function": function})
        body["tools"] = tools
        choice = req.tool_choice
        if choice is not None:
            if choice.mode == "tool":
                body["tool_choice"] = {"type": "function", "function": {"name": wire_tool_name(choice.name, PROTOCOL)}}
            elif choice.mode in ("none", "required"):
                body["tool_choice"] = choice.mode
            if choice.parallel is not None:
                body["parallel_tool_calls"] = choice.parallel
    if req.max_tokens is not None:
        body["max_tokens"] = req.max_tokens  # the name every compatible server knows
    if req.temperature is not None:
        body["temperature"] = req.temperature
    if req.top_p is not None:
        body["top_p"] = req.top_p
    if req.stop:
        body["stop"] = list(req.stop[:_MAX_STOP])
    if req.reasoning is not None and req.reasoning.effort != "none":
        body["reasoning_effort"] = effort_for(req.reasoning)
    fmt = req.response_format
    if fmt is not None:
        if fmt.type == "json_schema" and fmt.schema is not None:
            spec = {"name": fmt.name or "response", "schema": clean_schema(fmt.schema, PROTOCOL), "strict": fmt.strict}
            body["response_format"] = {"type": "json_schema", "json_schema": spec}
        else:
            body["response_format"] = {"type": "json_object"}
    body["stream"] = req.stream
    if req.stream:
        body["stream_options"] = {"include_usage": True}  # usage arrives only when asked for
    if req.origin == PROTOCOL:
        body.update(req.extra)
    return "/chat/completions", body
