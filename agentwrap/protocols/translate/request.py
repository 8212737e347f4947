"""Translation of an agent's request for a backend of another protocol.

`translate_request` decodes the agent's body into a `NeutralRequest` and
encodes it for the backend; the returned `TranslationContext` remembers what
the way back needs (tool names the backend saw, freeform tools it saw as
functions, Codex namespaces, the model and response id to report). Sans-IO.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from agentwrap.protocols._json import encodable
from agentwrap.protocols.codec import codec
from agentwrap.protocols.neutral.request import wire_tool_name

if TYPE_CHECKING:
    from agentwrap.protocols.codec import LaneEncoder

__all__ = ["Headers", "TranslationContext", "translate_request"]

Headers = list[tuple[bytes, bytes]]

# Headers a backend needs that the agent of another protocol does not send.
_BACKEND_HEADERS: dict[str, Headers] = {"anthropic_messages": [(b"anthropic-version", b"2023-06-01")]}
_ID_PREFIX = {"anthropic_messages": "msg_", "openai_chat": "chatcmpl-", "openai_responses": "resp_", "gemini": ""}


@dataclass(slots=True)
class TranslationContext:
    """What the way back needs to know about one translated request."""

    agent_protocol: str
    backend_protocol: str
    agent_model: str  # reported to the agent, as it asked
    backend_model: str
    stream: bool
    response_id: str = ""  # "" = derive from the backend's id
    created: int = 0
    include_usage: bool = True  # Chat agents: stream_options.include_usage
    tool_names: dict[str, str] = field(default_factory=dict)  # backend wire name -> agent's name
    custom_tools: frozenset = frozenset()  # freeform tools the backend saw as functions
    namespaces: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (Codex namespace, short name)
    id_hint: str = ""  # makes ids the backend did not send unique per request
    notes: list[str] = field(default_factory=list)  # what was left out, for capture
    upstream_headers: Headers = field(default_factory=list)  # to add to the backend request

    def agent_response_id(self, backend_id: str) -> str:
        """The response id the agent sees: the caller's, else the backend's in the agent
        protocol's style, else one made from `id_hint`."""
        if self.response_id:
            return self.response_id
        base = re.sub(r"[^A-Za-z0-9_-]", "", backend_id)
        for prefix in ("msg_", "chatcmpl-", "resp_"):
            base = base.removeprefix(prefix)
        return _ID_PREFIX.get(self.agent_protocol, "") + (base or self.id_hint)

    def agent_encoder(self, response_id: str) -> LaneEncoder:
        """The agent protocol's stream encoder for this response (the same call for every codec)."""
        return codec(self.agent_protocol).StreamEncoder(self.agent_model, response_id, created=self.created, include_usage=self.include_usage)


def translate_request(
    agent_protocol: str,
    body: Any,
    path: str,
    backend_protocol: str,
    model_override: str | None = None,
    *,
    response_id: str = "",
    created: int = 0,
    max_tokens_cap: int | None = None,
) -> tuple[str, dict, TranslationContext]:
    """(backend path, backend body, context) for an agent's request body.

    `path` is the agent's request path (Gemini carries model and streaming
    there). The backend path is relative to the backend base URL, as
    `endpoints.upstream_url` expects (OpenAI bases include /v1). Raises
    `RequestError` when the body holds something the backend cannot take.
    """
    req = codec(agent_protocol).decode_request(body, path)
    model = model_override or req.model
    if max_tokens_cap is not None and (req.max_tokens is None or req.max_tokens > max_tokens_cap):
        req.max_tokens = max_tokens_cap
    backend_path, backend_body = codec(backend_protocol).encode_request(req, model)
    # Without a response id from the caller, ids the backend leaves out are made
    # unique per turn from the history length and its newest message (cheap
    # even for a long history, stable for a retry of the same turn).
    hint = response_id or hashlib.sha1(f"{len(req.messages)}:{req.messages[-1:]!r}".encode()).hexdigest()[:16]
    namespaces = {}
    if agent_protocol == "openai_responses":
        namespaces = {t.name: (encodable(t.namespace), encodable(t.name[len(t.namespace) + 2 :])) for t in req.tools
                      if t.namespace and t.name.startswith(t.namespace + "__")}
    ctx = TranslationContext(
        agent_protocol=agent_protocol,
        backend_protocol=backend_protocol,
        agent_model=encodable(req.model or model),  # the agent's strings echoed in its stream: valid UTF-8
        backend_model=model,
        stream=req.stream,
        response_id=response_id,
        created=created,
        include_usage=agent_protocol != "openai_chat" or (isinstance(body, dict) and _include_usage(body)),
        tool_names={wire_tool_name(t.name, backend_protocol): encodable(t.name) for t in req.tools},
        custom_tools=frozenset(t.name for t in req.tools if t.tool_kind == "custom") if backend_protocol != "openai_responses" else frozenset(),
        namespaces=namespaces,
        id_hint=hint,
        notes=list(req.notes),
        upstream_headers=[(b"content-type", b"application/json"), *_BACKEND_HEADERS.get(backend_protocol, [])],
    )
    if req.stream:
        ctx.upstream_headers.append((b"accept", b"text/event-stream"))
    return backend_path, backend_body, ctx


def _include_usage(body: dict) -> bool:
    options = body.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True
