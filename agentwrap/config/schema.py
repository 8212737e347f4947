"""The schema of a profile TOML file, validated with pydantic-core.

The schema is declared as pydantic-core schemas rather than BaseModel classes
because building BaseModel classes costs ~75 ms on every launch (measured on
this project's CI machine), most of agentwrap's start-to-exec budget; a
pydantic-core validator builds in well under 1 ms. Errors are the same
pydantic `ValidationError`s with field paths. Checks that span fields (an http
backend needs `protocol` and `base_url`; routes name defined backends) are
plain Python in `check_profile`.

Unknown keys are refused, so a typo is an error naming the field rather than a
silent no-op; new keys (routing rules, failover) are added here as they land.
"""

from __future__ import annotations

from typing import Any

from pydantic_core import SchemaValidator
from pydantic_core import core_schema as cs

__all__ = ["PROFILE_VALIDATOR", "PROTOCOL_IDS", "check_profile"]

PROTOCOL_IDS = ["anthropic_messages", "openai_chat", "openai_responses", "gemini"]


def _fields(required: tuple[str, ...] = (), **schemas: cs.CoreSchema) -> dict[str, cs.TypedDictField]:
    return {name: cs.typed_dict_field(schema, required=name in required) for name, schema in schemas.items()}


def _table(required: tuple[str, ...] = (), **schemas: cs.CoreSchema) -> cs.TypedDictSchema:
    return cs.typed_dict_schema(_fields(required, **schemas), extra_behavior="forbid")


_str = cs.str_schema(strict=True)
_bool = cs.bool_schema(strict=True)

_BACKEND = _table(
    type=cs.literal_schema(["http", "scripted"]),
    protocol=cs.literal_schema(PROTOCOL_IDS),
    base_url=_str,
    api_key_env=_str,
    headers=cs.dict_schema(_str, _str),
    timeout_s=cs.float_schema(gt=0),
    script=_str,
)
_WHEN = _table(
    agent=cs.literal_schema(["claude", "codex", "gemini"]),
    model=_str,
    tools=_bool,
    thinking=_bool,
)
_ROUTE = _table(
    ("backend",),
    backend=_str,
    model=_str,
    when=_WHEN,
    fallbacks=cs.list_schema(_str),
)
PROFILE_VALIDATOR = SchemaValidator(
    _table(
        name=_str,
        description=_str,
        backends=cs.dict_schema(_str, _BACKEND),
        routes=cs.list_schema(_ROUTE),
    )
)


def check_profile(data: dict[str, Any]) -> tuple[str, str] | None:
    """Cross-field checks on validated data: (field path, message) of the first problem, or None."""
    backends: dict[str, dict[str, Any]] = data.get("backends") or {}
    if not backends:
        return "backends", "a profile needs at least one [backends.NAME] table"
    for name, b in backends.items():
        where = f"backends.{name}"
        if b.get("type", "http") == "http":
            if "protocol" not in b:
                return f"{where}.protocol", f"an http backend needs `protocol` ({' | '.join(PROTOCOL_IDS)})"
            url = b.get("base_url")
            if not url:
                return f"{where}.base_url", "an http backend needs `base_url`"
            if not url.startswith(("http://", "https://")):
                return f"{where}.base_url", f"must start with http:// or https://, not {url!r}"
        elif not b.get("script"):
            return f"{where}.script", 'a scripted backend needs `script = "PATH"`'
    known = ", ".join(sorted(backends))
    for i, route in enumerate(data.get("routes") or []):
        for key, name in [("backend", route["backend"]), *(("fallbacks", f) for f in route.get("fallbacks", []))]:
            if name not in backends:
                return f"routes[{i}].{key}", f"names backend {name!r}, which is not defined (known: {known})"
    return None
