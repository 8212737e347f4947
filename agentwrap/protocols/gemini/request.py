"""Gemini generateContent requests to and from the neutral model.

Gemini CLI quirks handled (0.61): `contents` roles user/model; functionCall
and functionResponse parts whose `id` may be missing (stable ids are made
from name and position, and a response without id pairs with the oldest
unanswered call of its name); `thoughtSignature` on any part; the JSON-mode
routing call (`responseMimeType: application/json` + `responseJsonSchema`
with upper-case OpenAPI types). Function schemas sent to Gemini are cleaned
by `schema.clean_schema` for its OpenAPI-subset `parameters` field.

Gemini 3 refuses a functionCall in history without a thought signature; for
calls another backend made this encoder sends the documented bypass value
(ai.google.dev "Thought signatures": "skip_thought_signature_validator",
which Gemini CLI itself sends too) instead of forging a signature. Sans-IO.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict, deque
from typing import Any

from agentwrap.errors import RequestError
from agentwrap.protocols._blocks import parse_args
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
    function_tool,
    origin_meta,
    system_text,
    unseal,
    wire_tool_name,
)
from agentwrap.protocols.neutral.summary import require_dict
from agentwrap.protocols.schema import clean_schema

__all__ = ["decode_request", "encode_request", "MODEL_PATH", "SKIP_SIGNATURE", "EFFORT_BUDGET"]

PROTOCOL = "gemini"
SKIP_SIGNATURE = "skip_thought_signature_validator"
EFFORT_BUDGET = {"minimal": 512, "low": 2048, "medium": 8192, "high": 24576, "max": 24576}
_MAX_BUDGET = 24576  # the smallest maximum among current Gemini thinking models
_LEVEL_EFFORT = {"MINIMAL": "minimal", "LOW": "low", "MEDIUM": "medium", "HIGH": "high"}
# The model and method of a request path: `.../models/{model}:{method}` (summary.py reads it too).
MODEL_PATH = re.compile(r"models/([^/:?]+)(?::(\w+))?")
_STRUCTURAL = {"contents", "systemInstruction", "system_instruction", "tools", "toolConfig"}


# -- decode -------------------------------------------------------------------


def _signature_meta(signature: Any) -> tuple[dict | None, str]:
    """(provider_meta, sealed thinking text) of a part's thoughtSignature."""
    opened = unseal(signature)
    if opened is not None:
        return opened
    if isinstance(signature, str) and signature:
        return {"protocol": PROTOCOL, "thought_signature": signature}, ""
    return None, ""


def _media(part: dict) -> Any:
    inline = as_dict(part.get("inlineData") or part.get("inline_data"))
    if inline:
        mime, data = str(inline.get("mimeType") or inline.get("mime_type") or ""), str(inline.get("data") or "")
        return ImagePart(mime, data) if mime.startswith("image/") else DocumentPart(mime, data)
    file = as_dict(part.get("fileData") or part.get("file_data"))
    mime, uri = str(file.get("mimeType") or file.get("mime_type") or ""), str(file.get("fileUri") or file.get("file_uri") or "")
    return ImagePart(mime, url=uri) if mime.startswith("image/") else DocumentPart(mime, url=uri)


def _result(response: Any, call_id: str, name: str) -> ToolResultPart:
    response = as_dict(response)
    meta = {"protocol": PROTOCOL, "response": response}
    # Gemini CLI answers {"output": text} or {"error": text}; other shapes
    # travel as their JSON text.
    if set(response) == {"output"} and isinstance(response["output"], str):
        return ToolResultPart(call_id, response["output"], name, provider_meta=meta)
    if set(response) == {"error"} and isinstance(response["error"], str):
        return ToolResultPart(call_id, response["error"], name, is_error=True, provider_meta=meta)
    return ToolResultPart(call_id, json.dumps(response, ensure_ascii=False), name, provider_meta=meta)


def _contents(contents: list, builder: MessageBuilder) -> None:
    unanswered: dict[str, deque] = defaultdict(deque)
    for ci, content in enumerate(contents):
        content = as_dict(content)
        role = "assistant" if content.get("role") == "model" else "user"
        parts: list = []
        for pi, part in enumerate(as_list(content.get("parts"))):
            part = as_dict(part)
            meta, sealed_text = _signature_meta(part.get("thoughtSignature") or part.get("thought_signature"))
            own = meta if meta is not None and meta.get("protocol") == PROTOCOL else None
            if meta is not None and own is None:
                parts.append(ThinkingPart(sealed_text, meta))  # another backend's, sealed by agentwrap
            call = part.get("functionCall") or part.get("function_call")
            response = part.get("functionResponse") or part.get("function_response")
            if part.get("thought") is True:
                parts.append(ThinkingPart(str(part.get("text") or ""), own))
            elif isinstance(call, dict):
                name = str(call.get("name") or "")
                call_id = call.get("id") if isinstance(call.get("id"), str) and call.get("id") else f"call_{name}_{ci}_{pi}"
                unanswered[name].append(call_id)
                parts.append(ToolCallPart(call_id, name, json.dumps(call.get("args") or {}, ensure_ascii=False), provider_meta=own))
            elif isinstance(response, dict):
                name = str(response.get("name") or "")
                call_id = response.get("id")
                if isinstance(call_id, str) and call_id:
                    if call_id in unanswered[name]:
                        unanswered[name].remove(call_id)
                else:
                    call_id = unanswered[name].popleft() if unanswered[name] else f"call_{name}_{ci}_{pi}"
                parts.append(_result(response.get("response"), call_id, name))
            elif "inlineData" in part or "fileData" in part or "inline_data" in part or "file_data" in part:
                parts.append(_media(part))
            elif isinstance(part.get("text"), str):
                if own is not None:
                    parts.append(ThinkingPart("", own))  # the signature rides on this text part
                parts.append(TextPart(part["text"]))
            elif own is not None:
                parts.append(ThinkingPart("", own))
            else:
                raise RequestError(f"Gemini part {sorted(part)} cannot be translated for another backend.")
        builder.add(role, parts)


def _reasoning(config: dict) -> Reasoning | None:
    thinking = config.get("thinkingConfig")
    if not isinstance(thinking, dict):
        return None
    budget = thinking.get("thinkingBudget")
    level = thinking.get("thinkingLevel")
    include = thinking.get("includeThoughts") is True
    if budget == 0:
        return Reasoning(effort="none", include_thoughts=include)
    if isinstance(level, str):
        return Reasoning(effort=_LEVEL_EFFORT.get(level.upper(), "medium"), include_thoughts=include)
    if isinstance(budget, int) and budget > 0:
        return Reasoning(budget_tokens=budget, include_thoughts=include)
    return Reasoning(effort="medium", include_thoughts=include)  # -1: dynamic


def decode_request(body: Any, path: str = "") -> NeutralRequest:
    """Decode a generateContent request; the model and streaming come from `path`.

    Raises `RequestError` for what cannot be translated.
    """
    body = require_dict(body)
    path = path.split("?", 1)[0]
    match = MODEL_PATH.search(path)
    model = match.group(1) if match else ""
    method = (match.group(2) if match else None) or ""
    if "contents" not in body and isinstance(body.get("request"), dict):
        model = model or str(body.get("model") or "")  # Code Assist envelope
        body = body["request"]
    builder = MessageBuilder()
    system = as_dict(body.get("systemInstruction") or body.get("system_instruction"))
    builder.add_system([TextPart(str(p.get("text"))) for p in as_list(system.get("parts")) if isinstance(p, dict) and isinstance(p.get("text"), str)])
    _contents(as_list(body.get("contents")), builder)
    system_parts, messages = builder.result()
    tools: list[Tool] = []
    notes: list[str] = []
    for tool in as_list(body.get("tools")):
        tool = as_dict(tool)
        decls = tool.get("functionDeclarations", tool.get("function_declarations"))
        if decls is None:
            notes.append(f"Gemini built-in tool {sorted(tool)} is not offered to other backends")
        for decl in as_list(decls):
            decl = as_dict(decl)
            params = decl.get("parametersJsonSchema", decl.get("parameters"))
            tools.append(Tool(str(decl.get("name") or ""), str(decl.get("description") or ""), params if isinstance(params, dict) else None))
    calling = as_dict(as_dict(body.get("toolConfig")).get("functionCallingConfig"))
    tool_choice = None
    mode = calling.get("mode")
    if isinstance(mode, str):
        allowed = [n for n in as_list(calling.get("allowedFunctionNames")) if isinstance(n, str)]
        if mode == "ANY" and len(allowed) == 1:
            tool_choice = ToolChoice("tool", allowed[0])
        else:
            tool_choice = ToolChoice({"ANY": "required", "NONE": "none"}.get(mode, "auto"))
    config = as_dict(body.get("generationConfig"))
    response_format = None
    if config.get("responseMimeType") == "application/json":
        schema = config.get("responseJsonSchema", config.get("responseSchema"))
        response_format = ResponseFormat("json_schema", schema) if isinstance(schema, dict) else ResponseFormat()
    stop = config.get("stopSequences")
    return NeutralRequest(
        model=model.removeprefix("models/"),
        system=system_parts,
        messages=messages,
        tools=tools,
        tool_choice=tool_choice,
        max_tokens=config.get("maxOutputTokens") if isinstance(config.get("maxOutputTokens"), int) else None,
        temperature=config.get("temperature") if isinstance(config.get("temperature"), (int, float)) else None,
        top_p=config.get("topP") if isinstance(config.get("topP"), (int, float)) else None,
        stop=[s for s in as_list(stop) if isinstance(s, str)],
        stream=method == "streamGenerateContent",
        reasoning=_reasoning(config),
        response_format=response_format,
        extra={k: v for k, v in body.items() if k not in _STRUCTURAL},
        origin=PROTOCOL,
        notes=notes,
    )


# -- encode -------------------------------------------------------------------


def _media_part(part: ImagePart | DocumentPart) -> dict:
    if part.data:
        return {"inlineData": {"mimeType": part.media_type or "application/octet-stream", "data": part.data}}
    if part.url.startswith("gs://") or "generativelanguage.googleapis.com" in part.url:
        return {"fileData": {"mimeType": part.media_type or "application/octet-stream", "fileUri": part.url}}
    raise RequestError("Gemini backends take images and documents inline or as uploaded files, not by URL; the request holds a media URL.")


def _response(part: ToolResultPart) -> tuple[dict, list[dict]]:
    meta = origin_meta(part.provider_meta, PROTOCOL)
    media = [_media_part(p) for p in part.content if isinstance(p, (ImagePart, DocumentPart))] if isinstance(part.content, list) else []
    if meta is not None and isinstance(meta.get("response"), dict):
        return meta["response"], media
    text = part.content if isinstance(part.content, str) else "\n".join(p.text for p in part.content if isinstance(p, TextPart))
    return ({"error": text} if part.is_error else {"output": text}), media


def _parts(role: str, parts: list, names: dict[str, str]) -> list[dict]:
    out: list[dict] = []
    trailing: list[dict] = []  # media from tool results go after all functionResponse parts
    pending: str | None = None  # a signature waiting for the next visible part
    signed_call = False
    for part in parts:
        if isinstance(part, ThinkingPart):
            meta = origin_meta(part.provider_meta, PROTOCOL)
            if meta is None:
                continue  # Gemini reads nothing from other providers' thinking
            signature = meta.get("thought_signature") if isinstance(meta.get("thought_signature"), str) else None
            own_part = signature is not None and part.text and not meta.get("next")
            if part.text:
                thought: dict[str, Any] = {"text": part.text, "thought": True}
                if own_part:
                    thought["thoughtSignature"] = signature
                out.append(thought)
            if signature is not None and not own_part:
                pending = signature  # it belongs on the next part (a call or text)
            continue
        if isinstance(part, TextPart):
            if not part.text:
                continue
            wire: dict[str, Any] = {"text": part.text}
        elif isinstance(part, (ImagePart, DocumentPart)):
            wire = _media_part(part)
        elif isinstance(part, ToolCallPart):
            args = {"input": part.arguments_json} if part.tool_kind == "custom" else parse_args(part.arguments_json)
            names[part.call_id] = part.name
            wire = {"functionCall": {"id": part.call_id, "name": wire_tool_name(part.name, PROTOCOL), "args": args}}
            meta = origin_meta(part.provider_meta, PROTOCOL)
            if meta is not None and isinstance(meta.get("thought_signature"), str):
                wire["thoughtSignature"] = meta["thought_signature"]
            elif pending is None and not signed_call and role == "assistant":
                wire["thoughtSignature"] = SKIP_SIGNATURE  # see the module docstring
            signed_call = True
        elif isinstance(part, ToolResultPart):
            response, media = _response(part)
            name = part.name or names.get(part.call_id, "tool")
            wire = {"functionResponse": {"id": part.call_id, "name": wire_tool_name(name, PROTOCOL), "response": response}}
            trailing += media
        else:
            continue
        if pending is not None:
            wire.setdefault("thoughtSignature", pending)
            pending = None
        out.append(wire)
    if pending is not None:
        out.append({"text": "", "thoughtSignature": pending})
    results = [p for p in out if "functionResponse" in p]
    return results + [p for p in out if "functionResponse" not in p] + trailing


def _thinking_config(reasoning: Reasoning) -> dict | None:
    if reasoning.effort == "none":
        return None  # some models cannot switch thinking off; leave their default
    budget = reasoning.budget_tokens or EFFORT_BUDGET.get(reasoning.effort or "medium", 8192)
    return {"includeThoughts": reasoning.include_thoughts, "thinkingBudget": min(budget, _MAX_BUDGET)}


def encode_request(req: NeutralRequest, model: str) -> tuple[str, dict]:
    """(path, body) of a generateContent request. Raises `RequestError` for what cannot be sent."""
    names: dict[str, str] = {}
    contents: list[dict] = []
    for message in req.messages:
        role = "model" if message.role == "assistant" else "user"
        parts = _parts(message.role, message.parts, names)
        if not parts:
            continue
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": parts})
    body: dict[str, Any] = {"contents": contents}
    system = system_text(req, PROTOCOL)
    if system:
        body["systemInstruction"] = {"parts": [{"text": system}]}
    if req.tools:
        decls = []
        for tool in req.tools:
            name, description, params = function_tool(tool, PROTOCOL)
            decl: dict[str, Any] = {"name": name, "description": description}
            if params.get("properties"):
                decl["parameters"] = params  # an object without properties is refused
            decls.append(decl)
        body["tools"] = [{"functionDeclarations": decls}]
        choice = req.tool_choice
        if choice is not None and choice.mode != "auto":
            calling: dict[str, Any] = {"mode": {"required": "ANY", "tool": "ANY", "none": "NONE"}[choice.mode]}
            if choice.mode == "tool":
                calling["allowedFunctionNames"] = [wire_tool_name(choice.name, PROTOCOL)]
            body["toolConfig"] = {"functionCallingConfig": calling}
    config: dict[str, Any] = {}
    if req.max_tokens is not None:
        config["maxOutputTokens"] = req.max_tokens
    if req.temperature is not None:
        config["temperature"] = req.temperature
    if req.top_p is not None:
        config["topP"] = req.top_p
    if req.stop:
        config["stopSequences"] = list(req.stop)
    fmt = req.response_format
    if fmt is not None:
        config["responseMimeType"] = "application/json"
        if fmt.type == "json_schema" and fmt.schema is not None:
            config["responseSchema"] = clean_schema(fmt.schema, PROTOCOL)
    if req.reasoning is not None:
        thinking = _thinking_config(req.reasoning)
        if thinking is not None:
            config["thinkingConfig"] = thinking
    if config:
        body["generationConfig"] = config
    if req.origin == PROTOCOL:
        body.update(req.extra)
    method = "streamGenerateContent?alt=sse" if req.stream else "generateContent"
    return f"/v1beta/models/{model.removeprefix('models/')}:{method}", body
