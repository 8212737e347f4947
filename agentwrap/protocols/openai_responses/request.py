"""OpenAI Responses requests to and from the neutral model.

Codex quirks handled (0.169): the system prompt arrives as `developer`
messages; tools may arrive in an `additional_tools` input item and grouped in
`namespace` tools (flattened here: a tool of namespace "clock" named "sleep"
becomes "clock__sleep", except the default namespace "functions"); freeform
`custom` tools and `custom_tool_call` items; tool outputs as a string or a
list of `input_text` items; `reasoning` items with `encrypted_content`.
Requests to a Responses backend are stateless (`store: false`, full history,
encrypted reasoning included), as Codex's own are. Sans-IO.
"""

from __future__ import annotations

from typing import Any

from agentwrap.errors import RequestError
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
    function_tool,
    origin_meta,
    parse_data_url,
    system_text,
    unseal,
    wire_tool_name,
)
from agentwrap.protocols.neutral.summary import require_dict
from agentwrap.protocols.openai_chat.request import effort_for
from agentwrap.protocols.schema import clean_schema

__all__ = ["decode_request", "encode_request", "qualified_name", "split_name"]

PROTOCOL = "openai_responses"
_STRUCTURAL = {"model", "input", "instructions", "tools", "tool_choice", "parallel_tool_calls", "max_output_tokens", "stream"}
_DEFAULT_NAMESPACE = "functions"  # Codex calls tools of this namespace without a namespace field


def qualified_name(name: str, namespace: Any) -> str:
    """The neutral name of a namespaced Codex tool."""
    if not isinstance(namespace, str) or namespace in ("", _DEFAULT_NAMESPACE):
        return name
    return f"{namespace}__{name}"


def split_name(name: str, tools: list[Tool]) -> tuple[str, str]:
    """(namespace, name) of a neutral tool name, from the tools that were offered."""
    for tool in tools:
        if tool.name == name and tool.namespace:
            prefix = tool.namespace + "__"
            return tool.namespace, name[len(prefix) :] if name.startswith(prefix) else name
    return "", name


# -- decode -------------------------------------------------------------------


def _parts(content: Any) -> list:
    if isinstance(content, str):
        return [TextPart(content)]
    parts: list = []
    for item in as_list(content):
        item = as_dict(item)
        kind = item.get("type")
        if kind in ("input_text", "output_text", "text"):
            parts.append(TextPart(str(item.get("text") or "")))
        elif kind == "refusal":
            parts.append(TextPart(str(item.get("refusal") or "")))
        elif kind == "input_image":
            url = item.get("image_url")
            if not isinstance(url, str):
                raise RequestError("Responses input_image by file_id cannot be translated for another backend.")
            parsed = parse_data_url(url)
            parts.append(ImagePart(parsed[0], parsed[1]) if parsed else ImagePart(url=url))
        elif kind == "input_file":
            parsed = parse_data_url(str(item.get("file_data") or ""))
            if parsed is not None:
                parts.append(DocumentPart(parsed[0], parsed[1], title=str(item.get("filename") or "")))
            elif isinstance(item.get("file_url"), str):
                parts.append(DocumentPart(url=item["file_url"], title=str(item.get("filename") or "")))
            else:
                raise RequestError("Responses input_file by file_id cannot be translated for another backend.")
        else:
            raise RequestError(f"Responses content part {kind!r} cannot be translated for another backend.")
    return parts


def _reasoning_item(item: dict) -> ThinkingPart:
    summary = "\n\n".join(str(s.get("text") or "") for s in as_list(item.get("summary")) if isinstance(s, dict))
    if not summary:
        summary = "".join(str(c.get("text") or "") for c in as_list(item.get("content")) if isinstance(c, dict))
    encrypted = item.get("encrypted_content")
    opened = unseal(encrypted)
    if opened is not None:  # another backend's data, sealed by agentwrap
        meta, text = opened
        return ThinkingPart(summary or text, meta)
    meta: dict[str, Any] = {"protocol": PROTOCOL}
    if isinstance(encrypted, str) and encrypted:
        meta["encrypted_content"] = encrypted
    if isinstance(item.get("id"), str):
        meta["id"] = item["id"]
    return ThinkingPart(summary, meta if len(meta) > 1 else None)


def _tools(raw: Any, tools: list[Tool], notes: list[str], namespace: str = "", about: str = "") -> None:
    for tool in as_list(raw):
        tool = as_dict(tool)
        kind = tool.get("type")
        name = str(tool.get("name") or "")
        description = str(tool.get("description") or "")
        if kind == "namespace":
            _tools(tool.get("tools"), tools, notes, name, description)
        elif kind == "function":
            params = tool.get("parameters")
            tools.append(Tool(qualified_name(name, namespace), description, params if isinstance(params, dict) else None, namespace=namespace, namespace_description=about))
        elif kind == "custom":
            fmt = tool.get("format")
            fmt = fmt if isinstance(fmt, dict) and fmt.get("type") == "grammar" else None
            tools.append(Tool(qualified_name(name, namespace), description, None, "custom", fmt, namespace, about))
        else:
            # Hosted tools (web_search, tool_search, local_shell...) run at OpenAI.
            notes.append(f"Responses hosted tool {kind!r} is not offered to other backends")


def decode_request(body: Any, path: str = "") -> NeutralRequest:
    """Decode a Responses request. Raises `RequestError` for what cannot be translated."""
    body = require_dict(body)
    if body.get("previous_response_id"):
        raise RequestError("previous_response_id refers to a response stored at OpenAI; it cannot be translated for another backend.")
    builder = MessageBuilder()
    tools: list[Tool] = []
    notes: list[str] = []
    if isinstance(body.get("instructions"), str) and body["instructions"]:
        builder.add_system([TextPart(body["instructions"])])
    raw_input = body.get("input")
    items = [{"type": "message", "role": "user", "content": raw_input}] if isinstance(raw_input, str) else as_list(raw_input)
    for item in items:
        item = as_dict(item)
        kind = item.get("type", "message")  # EasyInputMessage may omit "type"
        if kind == "message":
            role = item.get("role")
            parts = _parts(item.get("content"))
            if role in ("system", "developer"):
                builder.add_system(parts)
            elif role in ("user", "assistant"):
                builder.add(role, parts)
            else:
                raise RequestError(f"Responses message role {role!r} cannot be translated for another backend.")
        elif kind in ("function_call", "custom_tool_call"):
            name = qualified_name(str(item.get("name") or ""), item.get("namespace"))
            custom = kind == "custom_tool_call"
            value = item.get("input" if custom else "arguments")
            builder.add("assistant", [ToolCallPart(str(item.get("call_id") or ""), name, str(value or ("" if custom else "{}")), "custom" if custom else "function")])
        elif kind in ("function_call_output", "custom_tool_call_output"):
            output = item.get("output")
            value = output if isinstance(output, str) else _parts(output)
            builder.add("user", [ToolResultPart(str(item.get("call_id") or ""), value)])
        elif kind == "reasoning":
            builder.add("assistant", [_reasoning_item(item)])
        elif kind == "additional_tools":
            _tools(item.get("tools"), tools, notes)  # Codex "responses lite" (2026)
        else:
            raise RequestError(f"Responses input item {kind!r} cannot be translated for another backend.")
    _tools(body.get("tools"), tools, notes)
    system, messages = builder.result()
    choice = body.get("tool_choice")
    tool_choice = None
    if isinstance(choice, str) and choice in ("auto", "none", "required"):
        tool_choice = ToolChoice(choice)
    elif isinstance(choice, dict) and choice.get("type") in ("function", "custom"):
        tool_choice = ToolChoice("tool", qualified_name(str(choice.get("name") or ""), choice.get("namespace")))
    if isinstance(body.get("parallel_tool_calls"), bool):
        tool_choice = tool_choice or ToolChoice()
        tool_choice.parallel = body["parallel_tool_calls"]
    reasoning = None
    if isinstance(body.get("reasoning"), dict):
        raw = body["reasoning"]
        effort = raw.get("effort")
        summary = raw.get("summary")
        reasoning = Reasoning(effort=effort if isinstance(effort, str) else "medium", include_thoughts=isinstance(summary, str) and summary != "none")
    fmt = as_dict(as_dict(body.get("text")).get("format"))
    response_format = None
    if fmt.get("type") == "json_object":
        response_format = ResponseFormat()
    elif fmt.get("type") == "json_schema":
        schema = fmt.get("schema")
        response_format = ResponseFormat("json_schema", schema if isinstance(schema, dict) else {}, str(fmt.get("name") or "response"), fmt.get("strict") is True)
    max_tokens = body.get("max_output_tokens")
    return NeutralRequest(
        model=str(body.get("model") or ""),
        system=system,
        messages=messages,
        tools=tools,
        tool_choice=tool_choice,
        max_tokens=max_tokens if isinstance(max_tokens, int) else None,
        temperature=body.get("temperature") if isinstance(body.get("temperature"), (int, float)) else None,
        top_p=body.get("top_p") if isinstance(body.get("top_p"), (int, float)) else None,
        stream=body.get("stream") is True,
        reasoning=reasoning,
        response_format=response_format,
        metadata=as_dict(body.get("metadata")),
        extra={k: v for k, v in body.items() if k not in _STRUCTURAL},
        origin=PROTOCOL,
        notes=notes,
    )


# -- encode -------------------------------------------------------------------


def _content_item(part: Any) -> dict:
    if isinstance(part, TextPart):
        return {"type": "input_text", "text": part.text}
    if isinstance(part, ImagePart):
        return {"type": "input_image", "image_url": data_url(part.media_type, part.data) if part.data else part.url, "detail": "auto"}
    if isinstance(part, DocumentPart):
        if part.data:
            return {"type": "input_file", "file_data": data_url(part.media_type, part.data), "filename": part.title or "document.pdf"}
        return {"type": "input_file", "file_url": part.url}
    raise RequestError(f"{type(part).__name__} cannot appear in a Responses user message.")


class _Items:
    def __init__(self, req: NeutralRequest) -> None:
        self.req = req
        self.items: list[dict] = []
        self.kinds: dict[str, str] = {}  # call id -> tool kind, to pick the output item type
        self._message: dict | None = None

    def _call_name(self, name: str) -> dict:
        namespace, short = split_name(name, self.req.tools) if self.req.origin == PROTOCOL else ("", name)
        out = {"name": wire_tool_name(short, PROTOCOL)}
        if namespace and namespace != _DEFAULT_NAMESPACE:
            out["namespace"] = namespace
        return out

    def _text(self, role: str, part: Any) -> None:
        if self._message is None or self._message["role"] != role:
            self._message = {"type": "message", "role": role, "content": []}
            self.items.append(self._message)
        if role == "assistant":
            if not isinstance(part, TextPart):
                raise RequestError(f"{type(part).__name__} cannot appear in a Responses assistant message.")
            self._message["content"].append({"type": "output_text", "text": part.text, "annotations": []})
        else:
            self._message["content"].append(_content_item(part))

    def add(self, role: str, parts: list) -> None:
        for part in parts:
            if isinstance(part, ToolCallPart):
                self._message = None
                self.kinds[part.call_id] = part.tool_kind
                if part.tool_kind == "custom":
                    self.items.append({"type": "custom_tool_call", "call_id": part.call_id, **self._call_name(part.name), "input": part.arguments_json})
                else:
                    self.items.append({"type": "function_call", "call_id": part.call_id, **self._call_name(part.name), "arguments": part.arguments_json or "{}"})
            elif isinstance(part, ToolResultPart):
                self._message = None
                output: str | list = part.content if isinstance(part.content, str) else [_content_item(p) for p in part.content]
                kind = "custom_tool_call_output" if self.kinds.get(part.call_id) == "custom" else "function_call_output"
                self.items.append({"type": kind, "call_id": part.call_id, "output": output})
            elif isinstance(part, ThinkingPart):
                meta = origin_meta(part.provider_meta, PROTOCOL)
                if meta is None or not isinstance(meta.get("encrypted_content"), str):
                    continue  # without its encrypted content a reasoning item is refused
                self._message = None
                item: dict[str, Any] = {"type": "reasoning", "summary": [{"type": "summary_text", "text": part.text}] if part.text else []}
                if isinstance(meta.get("id"), str):
                    item["id"] = meta["id"]
                item["encrypted_content"] = meta["encrypted_content"]
                self.items.append(item)
            elif not isinstance(part, TextPart) or part.text:
                self._text(role, part)


def _wire_tools(req: NeutralRequest) -> list[dict]:
    same = req.origin == PROTOCOL
    out: list[dict] = []
    groups: dict[str, list] = {}
    for tool in req.tools:
        namespace, short = split_name(tool.name, req.tools) if same else ("", tool.name)
        if tool.tool_kind == "custom":
            wire: dict[str, Any] = {"type": "custom", "name": wire_tool_name(short, PROTOCOL), "description": tool.description}
            if tool.format:
                wire["format"] = tool.format
        else:
            _, description, params = function_tool(tool, PROTOCOL)
            wire = {"type": "function", "name": wire_tool_name(short, PROTOCOL), "description": tool.description if namespace else description, "parameters": params, "strict": False}
        if namespace:
            if namespace not in groups:
                groups[namespace] = []
                out.append({"type": "namespace", "name": namespace, "description": tool.namespace_description, "tools": groups[namespace]})
            groups[namespace].append(wire)
        else:
            out.append(wire)
    return out


def encode_request(req: NeutralRequest, model: str) -> tuple[str, dict]:
    """(path, body) of a Responses request. Raises `RequestError` for what cannot be sent."""
    items = _Items(req)
    for message in req.messages:
        items.add(message.role, message.parts)
    body: dict[str, Any] = {"model": model, "input": items.items}
    system = system_text(req, PROTOCOL)
    if system:
        body["instructions"] = system
    if req.tools:
        body["tools"] = _wire_tools(req)
        choice = req.tool_choice
        if choice is not None:
            if choice.mode == "tool":
                kind = next((t.tool_kind for t in req.tools if t.name == choice.name), "function")
                body["tool_choice"] = {"type": kind, **items._call_name(choice.name)}
            elif choice.mode in ("none", "required"):
                body["tool_choice"] = choice.mode
            if choice.parallel is not None:
                body["parallel_tool_calls"] = choice.parallel
    if req.max_tokens is not None:
        body["max_output_tokens"] = req.max_tokens
    if req.temperature is not None:
        body["temperature"] = req.temperature
    if req.top_p is not None:
        body["top_p"] = req.top_p
    if req.reasoning is not None and req.reasoning.effort != "none":
        reasoning: dict[str, Any] = {"effort": effort_for(req.reasoning)}
        if req.reasoning.include_thoughts:
            reasoning["summary"] = "auto"
        body["reasoning"] = reasoning
        body["include"] = ["reasoning.encrypted_content"]
    fmt = req.response_format
    if fmt is not None:
        if fmt.type == "json_schema" and fmt.schema is not None:
            body["text"] = {"format": {"type": "json_schema", "name": fmt.name or "response", "schema": clean_schema(fmt.schema, PROTOCOL), "strict": fmt.strict}}
        else:
            body["text"] = {"format": {"type": "json_object"}}
    body["store"] = False  # stateless: the whole history travels with every request
    body["stream"] = req.stream
    if req.origin == PROTOCOL:
        body.update(req.extra)
    return "/responses", body
