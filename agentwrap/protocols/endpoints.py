"""Which protocol a request path or URL belongs to, and where it goes upstream.

Each protocol's `base_url` follows its own SDK's convention: the OpenAI
protocols include the version path (`https://api.openai.com/v1`), Anthropic and
Gemini do not. Agents always send the version in the path, so agentwrap strips
it for OpenAI-style bases and never doubles `/v1`.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote

__all__ = ["Endpoint", "classify", "protocol_of_target", "protocol_of_url", "upstream_url", "rewrite_gemini_model",
           "has_dot_segment"]


@dataclass(frozen=True, slots=True)
class Endpoint:
    protocol: str | None  # None: not a model call we understand
    kind: str  # "generate" | "other"
    model: str | None = None  # Gemini carries the model in the path
    stream: bool | None = None  # Gemini says streaming in the path


def classify(path: str) -> Endpoint:
    """Classify a request path (secret prefix already removed, no query)."""
    if path == "/v1/messages":
        return Endpoint("anthropic_messages", "generate")
    if path == "/v1/chat/completions" or path == "/chat/completions":
        return Endpoint("openai_chat", "generate")
    if path == "/v1/responses" or path == "/responses":
        return Endpoint("openai_responses", "generate")
    for prefix in ("/v1beta/models/", "/v1/models/", "/v1alpha/models/"):
        if path.startswith(prefix):
            model, sep, method = path[len(prefix):].rpartition(":")
            if sep and method in ("generateContent", "streamGenerateContent"):
                return Endpoint("gemini", "generate", model=model, stream=method == "streamGenerateContent")
    if path.startswith("/v1/messages/"):
        return Endpoint("anthropic_messages", "other")
    return Endpoint(None, "other")


def protocol_of_target(target: str) -> str | None:
    """The protocol of an agent request target, with or without the secret path segment."""
    path = target.partition("?")[0]
    protocol = classify(path).protocol
    if protocol is None and path.count("/") >= 2:
        protocol = classify("/" + path.split("/", 2)[2]).protocol
    return protocol


def protocol_of_url(url: str) -> str | None:
    """The protocol of an upstream model call, from its URL path (base paths vary:
    `.../api/v1/chat/completions`), or None."""
    path = url.partition("?")[0].rstrip("/")
    if path.endswith(("/chat/completions",)):
        return "openai_chat"
    if path.endswith("/responses"):
        return "openai_responses"
    if path.endswith("/messages"):
        return "anthropic_messages"
    if path.endswith((":generateContent", ":streamGenerateContent")):
        return "gemini"
    return None


def _strip_suffix(base: str, suffixes: tuple[str, ...]) -> str:
    base = base.rstrip("/")
    for s in suffixes:
        if base.endswith(s):
            return base[: -len(s)]
    return base


def upstream_url(protocol: str, base_url: str, path_and_query: str) -> str:
    """Join a backend base URL with the path the agent asked for."""
    if protocol in ("openai_chat", "openai_responses"):
        base = base_url.rstrip("/")
        if path_and_query.startswith("/v1/") or path_and_query == "/v1":
            path_and_query = path_and_query[3:]
        return base + path_and_query
    if protocol == "anthropic_messages":
        return _strip_suffix(base_url, ("/v1",)) + path_and_query
    if protocol == "gemini":
        return _strip_suffix(base_url, ("/v1beta", "/v1alpha", "/v1")) + path_and_query
    return base_url.rstrip("/") + path_and_query


def has_dot_segment(path: str) -> bool:
    """Whether `path` (no query) has a `.` or `..` segment as some server may read it:
    percent-decoded (again and again: `%252e`), `\\` taken for `/`. Such a path could
    climb out of a backend's base URL path (`/gateway/anthropic` + `/../../v1/messages`),
    and no agent sends one. Ordinary paths cost three substring tests."""
    if "/." not in path and "%" not in path and "\\" not in path:
        return False
    while "%" in path and (decoded := unquote(path, errors="surrogateescape")) != path:
        path = decoded
    return any(segment in (".", "..") for segment in path.replace("\\", "/").split("/"))


def rewrite_gemini_model(path: str, model: str) -> str:
    """Replace the model segment of a Gemini `.../models/{model}:method` path."""
    head, sep, rest = path.partition("/models/")
    if not sep:
        return path
    _, colon, method = rest.rpartition(":")
    return f"{head}/models/{model}{colon}{method}" if colon else path
