"""Anthropic Messages requests to and from the neutral model.

Claude Code quirks handled (2.1.x): `system[0]` is a billing-header text block
(kept for Anthropic, dropped elsewhere by `system_text`); `messages` may hold
`role: "system"` entries (folded into the user turn, see `MessageBuilder`);
`cache_control` marks are not carried (this encoder sets its own).
Sans-IO.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from agentwrap.errors import RequestError
from agentwrap.protocols._blocks import dumps, parse_args
from agentwrap.protocols._lenient import as_dict, as_list
from agentwrap.protocols.limits import thinking_budget
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
    function_tool,
    origin_meta,
    unseal,
    wire_call_id,
    wire_tool_name,
)
from agentwrap.protocols.neutral.summary import require_dict
from agentwrap.protocols.schema import clean_schema

__all__ = ["decode_request", "encode_request", "DEFAULT_MAX_TOKENS", "EFFORT_BUDGET"]

PROTOCOL = "anthropic_messages"
DEFAULT_MAX_TOKENS = 32000  # Anthropic requires max_tokens; every current model allows this
EFFORT_BUDGET = {"minimal": 1024, "low": 4096, "medium": 10000, "high": 24000, "max": 31000}
_STRUCTURAL = {"model", "messages", "system", "tools", "tool_choice", "max_tokens", "stream"}


# -- decode -------------------------------------------------------------------


def _media(block: dict, kind: str) -> Any:
    source = as_dict(block.get("source"))
    stype = source.get("type")
    if stype == "base64":
        media_type, data = str(source.get("media_type") or ""), str(source.get("data") or "")
        if kind == "image":
            return ImagePart(media_type, data)
        return DocumentPart(media_type or "application/pdf", data, title=str(block.get("title") or ""))
    if stype == "url":
        url = str(source.get("url") or "")
        return ImagePart(url=url) if kind == "image" else DocumentPart(url=url, title=str(block.get("title") or ""))
    if kind == "document" and stype == "text":
        return TextPart(str(source.get("data") or ""))
    if kind == "document" and stype == "content":
        return TextPart("\n".join(str(b.get("text")) for b in as_list(source.get("content")) if isinstance(b, dict) and b.get("type") == "text"))
    raise RequestError(f"Anthropic {kind} source {stype!r} cannot be translated for another backend (only base64 and url).")


def _thinking(block: dict) -> ThinkingPart:
    text = str(block.get("thinking") or "")
    signature = block.get("signature")
    opened = unseal(signature)
    if opened is not None:  # provider data from another backend, sealed by agentwrap
        meta, sealed_text = opened
        return ThinkingPart(text or sealed_text, meta)
    if isinstance(signature, str) and signature:
        return ThinkingPart(text, {"protocol": PROTOCOL, "signature": signature})
    return ThinkingPart(text)


def _parts(content: Any) -> list:
    if isinstance(content, str):
        return [TextPart(content)]
    parts: list = []
    for block in as_list(content):
        block = as_dict(block)
        kind = block.get("type")
        if kind == "text":
            parts.append(TextPart(str(block.get("text") or "")))
        elif kind in ("image", "document"):
            parts.append(_media(block, kind))
        elif kind == "tool_use":
            parts.append(ToolCallPart(str(block.get("id") or ""), str(block.get("name") or ""), dumps(block.get("input") or {})))
        elif kind == "tool_result":
            result = block.get("content")
            value = result if isinstance(result, str) else _parts(result) if result is not None else ""
            parts.append(ToolResultPart(str(block.get("tool_use_id") or ""), value, is_error=block.get("is_error") is True))
        elif kind == "thinking":
            parts.append(_thinking(block))
        elif kind == "redacted_thinking":
            parts.append(ThinkingPart("", {"protocol": PROTOCOL, "redacted": str(block.get("data") or "")}))
        else:
            raise RequestError(f"Anthropic content block {kind!r} cannot be translated for another backend.")
    return parts


def _reasoning(body: dict) -> Reasoning | None:
    thinking = as_dict(body.get("thinking"))
    effort = as_dict(body.get("output_config")).get("effort")
    kind = thinking.get("type")
    if kind == "disabled":
        return Reasoning(effort="none")
    if kind not in ("enabled", "adaptive"):
        return None
    budget = thinking.get("budget_tokens")
    return Reasoning(
        effort=effort if isinstance(effort, str) else (None if isinstance(budget, int) else "medium"),
        budget_tokens=budget if isinstance(budget, int) and not isinstance(budget, bool) else None,
        # Claude Code 2.1 asks for {"display": "omitted"}: signatures only.
        include_thoughts=thinking.get("display") != "omitted",
    )


def _response_format(body: dict) -> ResponseFormat | None:
    fmt = as_dict(as_dict(body.get("output_config")).get("format")) or as_dict(body.get("output_format"))
    if fmt.get("type") == "json_schema" and isinstance(fmt.get("schema"), dict):
        return ResponseFormat("json_schema", fmt["schema"], strict=True)
    return None


def decode_request(body: Any, path: str = "") -> NeutralRequest:
    """Decode a Messages request. Raises `RequestError` for what cannot be translated."""
    body = require_dict(body)
    builder = MessageBuilder()
    system = body.get("system")
    builder.add_system(_parts(system) if system is not None else [])
    for message in as_list(body.get("messages")):
        message = as_dict(message)
        role = message.get("role")
        parts = _parts(message.get("content"))
        if role == "system":
            builder.add_system(parts)
        elif role in ("user", "assistant"):
            builder.add(role, parts)
        else:
            raise RequestError(f"Anthropic message role {role!r} is not supported.")
    system_parts, messages = builder.result()
    tools: list[Tool] = []
    notes: list[str] = []
    for tool in as_list(body.get("tools")):
        tool = as_dict(tool)
        name = tool.get("name")
        if isinstance(name, str) and isinstance(tool.get("input_schema"), dict):
            tools.append(Tool(name, str(tool.get("description") or ""), tool["input_schema"]))
        else:
            notes.append(f"Anthropic server tool {tool.get('type')!r} is not offered to other backends")
    choice = as_dict(body.get("tool_choice"))
    tool_choice = None
    if choice:
        mode = {"auto": "auto", "any": "required", "tool": "tool", "none": "none"}.get(str(choice.get("type")), "auto")
        parallel = False if choice.get("disable_parallel_tool_use") is True else None
        tool_choice = ToolChoice(mode, str(choice.get("name") or ""), parallel)
    stop = body.get("stop_sequences")
    req = NeutralRequest(
        model=str(body.get("model") or ""),
        system=system_parts,
        messages=messages,
        tools=tools,
        tool_choice=tool_choice,
        max_tokens=body.get("max_tokens") if isinstance(body.get("max_tokens"), int) else None,
        temperature=body.get("temperature") if isinstance(body.get("temperature"), (int, float)) else None,
        top_p=body.get("top_p") if isinstance(body.get("top_p"), (int, float)) else None,
        stop=[s for s in as_list(stop) if isinstance(s, str)],
        stream=body.get("stream") is True,
        reasoning=_reasoning(body),
        response_format=_response_format(body),
        metadata=as_dict(body.get("metadata")),
        extra={k: v for k, v in body.items() if k not in _STRUCTURAL},
        origin=PROTOCOL,
        notes=notes,
    )
    return req


# -- encode -------------------------------------------------------------------


def _media_block(part: ImagePart | DocumentPart) -> dict:
    if isinstance(part, ImagePart):
        source = {"type": "base64", "media_type": part.media_type or "image/png", "data": part.data} if part.data else {"type": "url", "url": part.url}
        return {"type": "image", "source": source}
    if part.media_type.startswith("text/") and part.data:
        # Anthropic documents are PDF or plain text; text travels decoded.
        try:
            text = base64.b64decode(part.data).decode("utf-8")
        except (binascii.Error, ValueError) as exc:
            raise RequestError(f"document of type {part.media_type} is not valid base64 UTF-8 text") from exc
        block: dict = {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": text}}
    elif part.data:
        if part.media_type != "application/pdf":
            raise RequestError(f"Anthropic accepts PDF and text documents, not {part.media_type!r}.")
        block = {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": part.data}}
    else:
        block = {"type": "document", "source": {"type": "url", "url": part.url}}
    if part.title:
        block["title"] = part.title
    return block


def _thinking_block(part: ThinkingPart) -> dict | None:
    meta = origin_meta(part.provider_meta, PROTOCOL)
    if meta is None:
        return None  # unsigned or another provider's thinking: Anthropic would reject it
    if isinstance(meta.get("redacted"), str):
        return {"type": "redacted_thinking", "data": meta["redacted"]}
    if isinstance(meta.get("signature"), str) and meta["signature"]:
        return {"type": "thinking", "thinking": part.text, "signature": meta["signature"]}
    return None


def _blocks(parts: list) -> list[dict]:
    results: list[dict] = []
    blocks: list[dict] = []
    for part in parts:
        if isinstance(part, TextPart):
            if part.text:  # Anthropic rejects empty text blocks
                blocks.append({"type": "text", "text": part.text})
        elif isinstance(part, (ImagePart, DocumentPart)):
            blocks.append(_media_block(part))
        elif isinstance(part, ToolCallPart):
            value = {"input": part.arguments_json} if part.tool_kind == "custom" else parse_args(part.arguments_json)
            name = wire_tool_name(part.name, PROTOCOL)
            blocks.append({"type": "tool_use", "id": wire_call_id(part.call_id, PROTOCOL), "name": name, "input": value})
        elif isinstance(part, ToolResultPart):
            block: dict[str, Any] = {"type": "tool_result", "tool_use_id": wire_call_id(part.call_id, PROTOCOL)}
            content = part.content if isinstance(part.content, str) else _blocks(part.content)
            if content:
                block["content"] = content
            if part.is_error:
                block["is_error"] = True
            results.append(block)  # tool results must open the user message
        elif isinstance(part, ThinkingPart):
            thinking = _thinking_block(part)
            if thinking is not None:
                blocks.append(thinking)
    return results + blocks


def _tool(tool: Tool) -> dict:
    name, description, params = function_tool(tool, PROTOCOL)
    out = {"name": name, "input_schema": params}
    if description:
        out["description"] = description
    return out


def _thinking_allowed(req: NeutralRequest) -> bool:
    # Anthropic rejects thinking when the last assistant turn, in a tool loop,
    # does not start with its own signed thinking (a turn another backend made).
    if not req.messages or req.messages[-1].role != "user":
        return True
    if not any(isinstance(p, ToolResultPart) for p in req.messages[-1].parts):
        return True
    previous = next((m for m in reversed(req.messages[:-1]) if m.role == "assistant"), None)
    if previous is None:
        return True
    return any(isinstance(p, ThinkingPart) and _thinking_block(p) is not None for p in previous.parts)


def _cache(blocks: list[dict] | None) -> None:
    # Prompt caching is opt-in on Anthropic; without marks a translated
    # session pays full price for its whole history every turn.
    if blocks and blocks[-1].get("type") in ("text", "image", "document", "tool_use", "tool_result"):
        blocks[-1]["cache_control"] = {"type": "ephemeral"}


def encode_request(req: NeutralRequest, model: str) -> tuple[str, dict]:
    """(path, body) of a Messages request. Raises `RequestError` for what cannot be sent."""
    same = req.origin == PROTOCOL
    messages: list[dict] = []
    for message in req.messages:
        blocks = _blocks(message.parts)
        if not blocks:
            continue
        if messages and messages[-1]["role"] == message.role:
            messages[-1]["content"].extend(blocks)
        else:
            messages.append({"role": message.role, "content": blocks})
    max_tokens = req.max_tokens or DEFAULT_MAX_TOKENS
    body: dict[str, Any] = {"model": model, "max_tokens": max_tokens, "messages": messages}
    system = [{"type": "text", "text": p.text} for p in req.system if p.text]
    if req.response_format is not None and req.response_format.type == "json_object":
        system.append({"type": "text", "text": "Respond with one JSON object and nothing else."})
    if system:
        _cache(system)
        body["system"] = system
    if req.tools:
        body["tools"] = [_tool(t) for t in req.tools]
        _cache(body["tools"])
    choice = req.tool_choice
    forced = choice is not None and choice.mode in ("required", "tool")
    if choice is not None and req.tools:
        wire: dict[str, Any] = {"type": {"auto": "auto", "required": "any", "tool": "tool", "none": "none"}.get(choice.mode, "auto")}
        if choice.mode == "tool":
            wire["name"] = wire_tool_name(choice.name, PROTOCOL)
        if choice.parallel is False and choice.mode != "none":
            wire["disable_parallel_tool_use"] = True
        body["tool_choice"] = wire
    reasoning = req.reasoning
    thinking = reasoning is not None and reasoning.effort != "none" and not forced and _thinking_allowed(req) and max_tokens > 2048
    if thinking:
        budget = reasoning.budget_tokens or EFFORT_BUDGET.get(reasoning.effort or "medium", 10000)
        body["thinking"] = {"type": "enabled", "budget_tokens": thinking_budget(budget, max_tokens)}
    else:
        # Sampling settings go only without thinking: with it Anthropic requires the defaults.
        if req.temperature is not None:
            body["temperature"] = min(max(float(req.temperature), 0.0), 1.0)  # Anthropic's range is 0..1
        elif req.top_p is not None:
            body["top_p"] = req.top_p  # newer models refuse temperature and top_p together
    if req.stop:
        body["stop_sequences"] = list(req.stop)
    fmt = req.response_format
    if fmt is not None and fmt.type == "json_schema" and fmt.schema is not None:
        body["output_config"] = {"format": {"type": "json_schema", "schema": clean_schema(fmt.schema, PROTOCOL, strict=True)}}
    body["stream"] = req.stream
    if same:
        body.update(req.extra)
    if messages:
        _cache(messages[-1]["content"])
    return "/v1/messages", body
