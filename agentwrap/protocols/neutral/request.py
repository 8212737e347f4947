"""The neutral request model: what an agent asked for, in no protocol's words.

Each codec's `decode_request(body, path)` builds a `NeutralRequest` and its
`encode_request(req, model)` renders one for a backend. Small mutable
dataclasses (made once per request, not per token).

Provider data that must go back untouched (Anthropic thinking signatures and
redacted thinking, Gemini `thoughtSignature`, Responses `encrypted_content`)
rides in `provider_meta` as a dict whose "protocol" key names the protocol
that produced it. Encoders send it only to that protocol and drop it (never
forge it) for any other. When agent and backend speak different protocols,
`seal()` wraps such data into the agent protocol's own opaque field, so it
survives the agent's round trip and `unseal()` recovers it next turn.

Sans-IO: nothing here imports asyncio, httpx, socket or os.
"""

from __future__ import annotations

import binascii
import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from agentwrap.protocols.schema import tool_parameters

__all__ = [
    "TextPart",
    "ImagePart",
    "DocumentPart",
    "ToolCallPart",
    "ToolResultPart",
    "ThinkingPart",
    "Part",
    "Message",
    "Tool",
    "ToolChoice",
    "Reasoning",
    "ResponseFormat",
    "NeutralRequest",
    "MessageBuilder",
    "origin_meta",
    "seal",
    "unseal",
    "is_billing_header",
    "system_text",
    "wire_tool_name",
    "wire_call_id",
    "data_url",
    "parse_data_url",
    "result_text",
    "function_tool",
]


@dataclass(slots=True)
class TextPart:
    text: str


@dataclass(slots=True)
class ImagePart:
    """An image, inline (`data` is base64) or by `url`."""

    media_type: str = ""
    data: str = ""
    url: str = ""


@dataclass(slots=True)
class DocumentPart:
    """A file such as a PDF, inline (`data` is base64) or by `url`."""

    media_type: str = "application/pdf"
    data: str = ""
    url: str = ""
    title: str = ""


@dataclass(slots=True)
class ToolCallPart:
    """A call the model made. For `tool_kind` "function", `arguments_json` is
    the JSON text of the arguments object; for "custom" (a freeform tool, as
    Codex's `apply_patch` and `exec`) it is the raw input text, as in the
    stream events."""

    call_id: str
    name: str
    arguments_json: str = "{}"
    tool_kind: str = "function"
    provider_meta: dict | None = None


@dataclass(slots=True)
class ToolResultPart:
    """The agent's answer to a call. `content` is text or a list of
    Text/Image/Document parts. `provider_meta` keeps a Gemini
    functionResponse's raw `response` object for a Gemini backend."""

    call_id: str
    content: str | list = ""
    name: str = ""
    is_error: bool = False
    provider_meta: dict | None = None


@dataclass(slots=True)
class ThinkingPart:
    text: str = ""
    provider_meta: dict | None = None


Part = TextPart | ImagePart | DocumentPart | ToolCallPart | ToolResultPart | ThinkingPart


@dataclass(slots=True)
class Message:
    role: str  # "user" | "assistant"
    parts: list = field(default_factory=list)


@dataclass(slots=True)
class Tool:
    """A tool the agent offers. "custom" tools take freeform text; `format`
    keeps their grammar (Responses `format`). `namespace` is the Codex
    namespace group the tool came from ("" for none), with its description."""

    name: str
    description: str = ""
    parameters: dict | None = None
    tool_kind: str = "function"
    format: dict | None = None
    namespace: str = ""
    namespace_description: str = ""


@dataclass(slots=True)
class ToolChoice:
    mode: str = "auto"  # auto | none | required | tool
    name: str = ""  # the tool, for mode "tool"
    parallel: bool | None = None  # None: the backend's default


@dataclass(slots=True)
class Reasoning:
    """Thinking settings. `effort` is none|minimal|low|medium|high|max."""

    effort: str | None = None
    budget_tokens: int | None = None
    include_thoughts: bool = False


@dataclass(slots=True)
class ResponseFormat:
    type: str = "json_object"  # json_object | json_schema
    schema: dict | None = None
    name: str = "response"
    strict: bool = False


@dataclass(slots=True)
class NeutralRequest:
    """One model request. `extra` holds the body fields the decoder did not
    model; encoders add them back only when `origin` is their own protocol.
    `notes` says what a decoder left out on purpose (provider-hosted tools)."""

    model: str = ""
    system: list = field(default_factory=list)  # TextParts
    messages: list = field(default_factory=list)
    tools: list = field(default_factory=list)
    tool_choice: ToolChoice | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: list = field(default_factory=list)
    stream: bool = False
    reasoning: Reasoning | None = None
    response_format: ResponseFormat | None = None
    metadata: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)
    origin: str = ""
    notes: list = field(default_factory=list)


class MessageBuilder:
    """Collect messages in order, merging adjacent same-role ones.

    System/developer entries met before the first message become the system
    prompt. Later ones (Claude Code puts a `role: "system"` entry between
    turns; Codex adds `developer` messages mid-session) are folded into the
    user turn at their position, as text: backends accept system text only
    up front (Gemini, Anthropic), and moving it there would change the prompt
    prefix every turn and defeat the backends' prompt caching.
    """

    def __init__(self) -> None:
        self.system: list[TextPart] = []
        self.messages: list[Message] = []
        self._pending: list[TextPart] = []

    def add_system(self, parts: list) -> None:
        texts = [p for p in parts if isinstance(p, TextPart)]
        if not self.messages:
            self.system.extend(texts)
        else:
            self._pending.extend(texts)

    def add(self, role: str, parts: list) -> None:
        if role == "user":
            parts = self._pending + list(parts)
            self._pending = []
        elif self._pending:
            self._flush()
        if not parts:
            return
        if self.messages and self.messages[-1].role == role:
            self.messages[-1].parts.extend(parts)
        else:
            self.messages.append(Message(role, list(parts)))

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        if self.messages and self.messages[-1].role == "user":
            self.messages[-1].parts.extend(pending)
        else:
            self.messages.append(Message("user", pending))

    def result(self) -> tuple[list[TextPart], list[Message]]:
        if self._pending:
            self._flush()
        return self.system, self.messages


def origin_meta(meta: Any, protocol: str) -> dict | None:
    """`meta` if it was produced by `protocol`, else None (never forged)."""
    if isinstance(meta, dict) and meta.get("protocol") == protocol:
        return meta
    return None


# -- sealed provider data ------------------------------------------------------
# The envelope is hex: valid (canonical) base64 too, so it survives the Google
# SDKs, which decode `thoughtSignature` as base64 bytes and encode it back.
_SEAL = "a7e1"


def seal(protocol: str, meta: dict, text: str = "") -> str:
    """Wrap provider data (and, for Anthropic, the thinking text its signature
    covers) into one opaque string for another protocol's opaque field."""
    payload: dict[str, Any] = {"p": protocol, "m": {k: v for k, v in meta.items() if k != "protocol"}}
    if text:
        payload["t"] = text
    raw = json.dumps(payload, separators=(",", ":"), ensure_ascii=True).encode()
    if len(raw) % 2:
        raw += b" "  # an even byte count makes the hex a multiple of 4 characters
    return _SEAL + raw.hex()


def unseal(value: Any) -> tuple[dict, str] | None:
    """(provider_meta with "protocol", thinking text) of a sealed value, or None."""
    if not isinstance(value, str) or not value.startswith(_SEAL):
        return None
    try:
        payload = json.loads(binascii.unhexlify(value[len(_SEAL) :]))
    except (ValueError, binascii.Error):
        return None
    if not isinstance(payload, dict) or not isinstance(payload.get("p"), str) or not isinstance(payload.get("m"), dict):
        return None
    text = payload.get("t")
    return {**payload["m"], "protocol": payload["p"]}, text if isinstance(text, str) else ""


# -- shared rendering helpers ----------------------------------------------------

_BILLING = "x-anthropic-billing-header:"


def is_billing_header(text: str) -> bool:
    """Claude Code's first system block (2.1.x) is billing metadata for Anthropic only."""
    return text.startswith(_BILLING)


def system_text(req: NeutralRequest, protocol: str) -> str:
    """The system prompt as one string; the billing header only for Anthropic."""
    texts = [p.text for p in req.system if p.text and (protocol == "anthropic_messages" or not is_billing_header(p.text))]
    return "\n\n".join(texts)


# Tool names each protocol accepts (provider docs, 2025): OpenAI and Anthropic
# ^[a-zA-Z0-9_-]{1,64}$; Gemini also allows "." and ":" but not a leading digit.
_NAME_RULES = {
    "gemini": (re.compile(r"[A-Za-z_][A-Za-z0-9_.:-]{0,63}"), re.compile(r"[^A-Za-z0-9_.:-]")),
}
_DEFAULT_NAME_RULE = (re.compile(r"[A-Za-z0-9_-]{1,64}"), re.compile(r"[^A-Za-z0-9_-]"))


def wire_tool_name(name: str, protocol: str) -> str:
    """`name` if `protocol` accepts it, else a deterministic legal stand-in
    (the same input always maps to the same output, so history still pairs)."""
    valid, bad = _NAME_RULES.get(protocol, _DEFAULT_NAME_RULE)
    if valid.fullmatch(name):
        return name
    clean = bad.sub("_", name) or "tool"
    if protocol == "gemini" and not re.match(r"[A-Za-z_]", clean):
        clean = "_" + clean
    digest = hashlib.sha1(name.encode()).hexdigest()[:8]
    return f"{clean[:55]}_{digest}"


def wire_call_id(call_id: str, protocol: str) -> str:
    """Anthropic tool_use ids must match ^[a-zA-Z0-9_-]+$; others take any string."""
    if protocol != "anthropic_messages" or re.fullmatch(r"[A-Za-z0-9_-]+", call_id):
        return call_id
    return re.sub(r"[^A-Za-z0-9_-]", "_", call_id) + "_" + hashlib.sha1(call_id.encode()).hexdigest()[:8]


def data_url(media_type: str, data: str) -> str:
    return f"data:{media_type or 'application/octet-stream'};base64,{data}"


def parse_data_url(url: str) -> tuple[str, str] | None:
    """(media type, base64 data) of a base64 data URL, else None."""
    if not url.startswith("data:"):
        return None
    head, comma, data = url[5:].partition(",")
    if not comma or not head.endswith(";base64"):
        return None
    return head[: -len(";base64")] or "application/octet-stream", data


def result_text(content: str | list) -> str:
    """The text of a tool result, for wires whose results are text only."""
    if isinstance(content, str):
        return content
    return "\n".join(p.text for p in content if isinstance(p, TextPart))


def function_tool(tool: Tool, protocol: str) -> tuple[str, str, dict]:
    """(name, description, parameters) of a tool as a plain function for `protocol`.

    A freeform (custom) tool becomes a function with one string parameter
    `input`; its grammar, if any, is appended to the description.
    """
    name = wire_tool_name(tool.name, protocol)
    description = tool.description
    if tool.namespace_description:  # what Codex says about the tool's namespace group
        description = f"({tool.namespace}: {tool.namespace_description}) {description}"
    if tool.tool_kind != "custom":
        return name, description, tool_parameters(tool.parameters, protocol)
    definition = (tool.format or {}).get("definition")
    if isinstance(definition, str) and definition:
        description += f"\n\nThe input must follow this {(tool.format or {}).get('syntax', '')} grammar:\n{definition}"
    params = {"type": "object", "properties": {"input": {"type": "string", "description": "The raw freeform input."}}, "required": ["input"]}
    return name, description, params
