"""The schema of profile files and project files, validated with pydantic-core.

The schema is declared as pydantic-core schemas rather than BaseModel classes
because building BaseModel classes costs ~75 ms on every launch (measured on
this project's CI machine), most of agentwrap's start-to-exec budget; a
pydantic-core validator builds in well under 1 ms. Errors are the same
pydantic `ValidationError`s with field paths; `describe_error` turns the first
one into "field.path: what is wrong; how to fix it". Checks that span fields
(an http backend needs `protocol` and `base_url`; routes name defined
backends) are plain Python in `check_profile`, run on the profile after any
`extends` merge.

Unknown keys are refused, so a typo is an error naming the field (and the keys
that are allowed there) rather than a silent no-op.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic_core import SchemaValidator
from pydantic_core import core_schema as cs

from agentwrap.config.model import CLAUDE_AGENT_ENV_VARS, LOOP_ACTIONS, LOOP_SENSITIVITIES, TOOL_LOOP_MIN_REPEATS

__all__ = [
    "PROFILE_VALIDATOR",
    "PROJECT_VALIDATOR",
    "PROTOCOL_IDS",
    "AGENT_NAMES",
    "GUARD_KEYS",
    "check_profile",
    "describe_error",
    "field_path",
]

PROTOCOL_IDS = ["anthropic_messages", "openai_chat", "openai_responses", "gemini"]
AGENT_NAMES = ["claude", "codex", "gemini"]
ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
PROFILE_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
# RFC 9110 token characters: what an HTTP header name may contain.
HEADER_NAME_PATTERN = r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"


def _fields(required: tuple[str, ...] = (), **schemas: cs.CoreSchema) -> dict[str, cs.TypedDictField]:
    return {name: cs.typed_dict_field(schema, required=name in required) for name, schema in schemas.items()}


def _table(required: tuple[str, ...] = (), **schemas: cs.CoreSchema) -> cs.TypedDictSchema:
    return cs.typed_dict_schema(_fields(required, **schemas), extra_behavior="forbid")


_str = cs.str_schema(strict=True)
_nonempty = cs.str_schema(strict=True, min_length=1)
_bool = cs.bool_schema(strict=True)
_count = cs.int_schema(strict=True, ge=1)
_env_name = cs.str_schema(strict=True, pattern=ENV_NAME_PATTERN)
_profile_name = cs.str_schema(strict=True, pattern=PROFILE_NAME_PATTERN)

_MODEL = _table(context_window=_count, max_output_tokens=_count)

_BACKEND = _table(
    type=cs.literal_schema(["http", "scripted"]),
    protocol=cs.literal_schema(PROTOCOL_IDS),
    base_url=_nonempty,
    api_key_env=_env_name,
    api_key_cmd=_nonempty,
    auth_scheme=cs.literal_schema(["bearer", "x-api-key"]),
    credentials=cs.literal_schema(["agent", "none"]),
    headers=cs.dict_schema(cs.str_schema(strict=True, pattern=HEADER_NAME_PATTERN), _str),
    timeout_s=cs.float_schema(strict=True, gt=0),
    max_output_tokens=_count,
    script=_nonempty,
    models=cs.dict_schema(_nonempty, _MODEL),
)
_WHEN = _table(
    agent=cs.literal_schema(AGENT_NAMES),
    model=_nonempty,
    tools=_bool,
    thinking=_bool,
    background=_bool,
    min_input_tokens=_count,
    subagent=cs.union_schema(
        [_bool, _nonempty],
        custom_error_type="subagent_type",
        custom_error_message='must be true, false or an agent-id glob string such as "code-reviewer*"',
    ),
)
_ROUTE = _table(
    ("backend",),
    backend=_nonempty,
    model=_nonempty,
    when=_WHEN,
    fallbacks=cs.list_schema(_nonempty),
)
_ENV_VALUE = cs.union_schema(
    [_nonempty, _count],
    custom_error_type="env_value_type",
    custom_error_message="must be a non-empty string (or a positive integer)",
)
_AGENT_ENV = _table(claude=_table(**{var: _ENV_VALUE for var in CLAUDE_AGENT_ENV_VARS}))

# [guards.NAME] -> its keys; the defaults live in model.GuardsConfig.
GUARD_KEYS = {
    "loop": ["enabled", "sensitivity", "action"],
    "tool_loop": ["enabled", "max_repeats"],
    "tool_repair": ["enabled", "arguments", "names", "text_calls"],
}
_GUARDS = _table(
    loop=_table(
        enabled=_bool,
        sensitivity=cs.literal_schema(list(LOOP_SENSITIVITIES)),
        action=cs.literal_schema(list(LOOP_ACTIONS)),
    ),
    tool_loop=_table(enabled=_bool, max_repeats=cs.int_schema(strict=True, ge=TOOL_LOOP_MIN_REPEATS)),
    tool_repair=_table(enabled=_bool, arguments=_bool, names=_bool, text_calls=_bool),
)

_PROFILE = _table(
    name=_nonempty,
    description=_str,
    extends=_profile_name,
    backends=cs.dict_schema(_nonempty, _BACKEND),
    routes=cs.list_schema(_ROUTE),
    agent_env=_AGENT_ENV,
    guards=_GUARDS,
)
PROFILE_VALIDATOR = SchemaValidator(_PROFILE)

_AGENT_CHOICE = _table(profile=_nonempty)
PROJECT_VALIDATOR = SchemaValidator(
    _table(
        profile=_nonempty,
        agents=_table(**{agent: _AGENT_CHOICE for agent in AGENT_NAMES}),
        profiles=cs.dict_schema(_profile_name, _PROFILE),
        guards=_GUARDS,  # over the guards of whichever profile a session here uses
    )
)

# The keys allowed in each kind of table, for "unknown key" messages.
_KEYS = {
    "profile": ["name", "description", "extends", "backends", "routes", "agent_env", "guards"],
    "backend": ["type", "protocol", "base_url", "api_key_env", "api_key_cmd", "auth_scheme", "credentials", "headers", "timeout_s", "max_output_tokens", "script", "models"],
    "model": ["context_window", "max_output_tokens"],
    "route": ["backend", "model", "when", "fallbacks"],
    "when": ["agent", "model", "tools", "thinking", "background", "min_input_tokens", "subagent"],
    "agent_env": ["claude"],
    "agent_env.claude": list(CLAUDE_AGENT_ENV_VARS),
    "guards": list(GUARD_KEYS),
    **{f"guards.{name}": keys for name, keys in GUARD_KEYS.items()},
    "project": ["profile", "agents", "profiles", "guards"],
    "project.agents": AGENT_NAMES,
    "project.agent": ["profile"],
}


def field_path(loc: tuple) -> str:
    """("routes", 0, "when", "x") -> "routes[0].when.x"."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _table_kind(parent: tuple, project: bool) -> str | None:
    """Which kind of table `parent` (the loc of a table) is."""
    if project:
        if not parent:
            return "project"
        if parent == ("agents",):
            return "project.agents"
        if len(parent) == 2 and parent[0] == "agents":
            return "project.agent"
        if len(parent) >= 2 and parent[0] == "profiles":
            parent = parent[2:]
        elif parent[0] != "guards":
            return None
    if not parent:
        return "profile"
    head = parent[0]
    if head == "backends":
        if len(parent) == 2:
            return "backend"
        if len(parent) == 4 and parent[2] == "models":
            return "model"
    if head == "routes":
        if len(parent) == 2:
            return "route"
        if len(parent) == 3 and parent[2] == "when":
            return "when"
    if head == "agent_env":
        return "agent_env" if len(parent) == 1 else "agent_env.claude" if parent == ("agent_env", "claude") else None
    if head == "guards":
        return "guards" if len(parent) == 1 else f"guards.{parent[1]}" if len(parent) == 2 and parent[1] in GUARD_KEYS else None
    return None


_FIXES = {
    "env_name": "use letters, digits and _ only, not starting with a digit (the variable's name, not its value)",
    "profile_name": "use letters, digits, '.', '_' and '-', starting with a letter or digit",
    "header_name": "use a plain HTTP header name such as X-Custom-Header",
}


def describe_error(err: dict, *, project: bool = False) -> str:
    """One pydantic-core error as "field.path: problem; fix"."""
    loc = tuple(err.get("loc", ()))
    if loc and loc[-1] == "[key]":  # an invalid dict key: name the key itself
        loc = loc[:-1]
    kind = err.get("type", "")
    where = field_path(loc)
    if kind == "extra_forbidden":
        known = _KEYS.get(_table_kind(loc[:-1], project) or "", [])
        hint = f" (allowed here: {', '.join(known)})" if known else ""
        return f"{where}: unknown key{hint}; remove it or check its spelling"
    if kind == "missing":
        return f"{where}: required key is missing; add it"
    msg = err.get("msg", "invalid value")
    if kind == "string_pattern_mismatch":
        last = loc[-1] if loc else ""
        pattern = str((err.get("ctx") or {}).get("pattern", ""))
        if pattern == ENV_NAME_PATTERN:
            msg = f"{err.get('input')!r} is not an environment variable name; {_FIXES['env_name']}"
        elif pattern == PROFILE_NAME_PATTERN:
            msg = f"{err.get('input')!r} is not a valid profile name; {_FIXES['profile_name']}"
        elif pattern == HEADER_NAME_PATTERN:
            msg = f"{last!r} is not a valid header name; {_FIXES['header_name']}"
    elif kind in ("literal_error", "bool_type", "int_type", "float_type", "string_type", "dict_type", "list_type"):
        got = err.get("input")
        msg = f"{msg} (got {got!r})" if not isinstance(got, (dict, list)) else msg
    return f"{where}: {msg}"


def _has_ref(value: str) -> bool:
    return "${" in value


def check_profile(data: dict[str, Any]) -> tuple[str, str] | None:
    """Cross-field checks on validated (and merged) data: (field path, message) of the first problem, or None.

    A `base_url` holding a `${VAR}` reference is checked after expansion, by the loader.
    """
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
            if not _has_ref(url):
                problem = check_url(url)
                if problem:
                    return f"{where}.base_url", problem
        elif not b.get("script"):
            return f"{where}.script", 'a scripted backend needs `script = "PATH"`'
        if b.get("api_key_env") and b.get("api_key_cmd"):
            return f"{where}.api_key_cmd", "set either api_key_env or api_key_cmd, not both"
        if b.get("credentials") and (b.get("api_key_env") or b.get("api_key_cmd")):
            return f"{where}.credentials", "a backend with api_key_env or api_key_cmd gets that key; drop `credentials`"
    known = ", ".join(sorted(backends))
    for i, route in enumerate(data.get("routes") or []):
        for key, name in [("backend", route["backend"]), *(("fallbacks", f) for f in route.get("fallbacks", []))]:
            if name not in backends:
                return f"routes[{i}].{key}", f"names backend {name!r}, which is not defined (known: {known})"
    return None


_URL = re.compile(r"^https?://[^/\s?#]+")


def check_url(url: str) -> str | None:
    if not url.startswith(("http://", "https://")):
        return f"must start with http:// or https://, not {url!r}"
    if not _URL.match(url):
        return f"{url!r} has no host"
    return None
