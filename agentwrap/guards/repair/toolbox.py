"""The declared tools of one request as a maker of calls found in text.

`Toolbox.call(name, args)` gives an `EmbeddedCall` (a declared function
tool's name, schema-valid JSON arguments, what was fixed) or None: the name
must resolve to a declared function tool (exactly, for the weak formats)
and the arguments must be repairable into its schema (arguments.py).
`from_params` takes tag-style parameters, raw text values typed by the
schema; `call_object` / `call_value` take a `{"name": N, "arguments": {...}}`
object. Freeform (custom) tools are never made from text.

Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agentwrap.guards.repair.arguments import dumps_compact, loads_strict, parse_lenient, repair_arguments
from agentwrap.guards.repair.names import NameResolver
from agentwrap.guards.repair.validate import properties_of, resolve, schema_types
from agentwrap.protocols.neutral.summary import ToolSpec

__all__ = ["EmbeddedCall", "Toolbox"]


@dataclass(slots=True)
class EmbeddedCall:
    """A tool call found in text: a declared tool's name and schema-valid JSON arguments."""

    name: str
    arguments: str
    called: str = ""  # the name as written, when it was not exact
    changes: list[str] = field(default_factory=list)


class Toolbox:
    """The declared function tools of one request, for turning parsed calls into real ones."""

    def __init__(self, tools: tuple[ToolSpec, ...] | list[ToolSpec]) -> None:
        self.specs = {t.name: t for t in tools if t.tool_kind == "function"}
        self.names = tuple(self.specs)
        self.resolver = NameResolver(self.names)

    def call(self, name: Any, args: Any, *, exact: bool) -> EmbeddedCall | None:
        """The call of tool `name` with `args` (an object, JSON text, or None for no
        arguments), or None unless the tool is declared and the arguments fit."""
        if not isinstance(name, str) or not name:
            return None
        if exact:
            spec = self.specs.get(name)
            how = "exact"
        else:
            match = self.resolver.resolve(name.strip())
            spec = self.specs.get(match.name) if match else None
            how = match.how if match else ""
        if spec is None:
            return None
        if args is None:
            text = "{}"
        elif isinstance(args, dict):
            text = dumps_compact(args)
        elif isinstance(args, str):
            text = args
        else:
            return None
        result = repair_arguments(text, spec.parameters, tool_name=spec.name, empty_ok=False)
        if not result.ok:
            return None
        changes = list(result.changes)
        if how != "exact":
            changes.insert(0, f"name {name!r} -> {spec.name!r} ({how})")
        return EmbeddedCall(spec.name, result.text, name if how != "exact" else "", changes)

    def from_params(self, name: str, raw: dict[str, str] | None, *, exact: bool) -> EmbeddedCall | None:
        """The call from tag-style parameters (raw text values), typed by the tool's schema."""
        if raw is None:
            return None
        if exact:
            spec = self.specs.get(name)
        else:
            match = self.resolver.resolve(name.strip())
            spec = self.specs.get(match.name) if match else None
        if spec is None:
            return None
        schema = spec.parameters if isinstance(spec.parameters, dict) else {}
        props = properties_of(schema)
        if (props or exact) and any(key not in props for key in raw):
            return None  # every parameter tag names a declared parameter (any, for a tool without a schema)
        return self.call(name, _typed(raw, schema), exact=exact)

    def call_object(self, text: str, *, exact: bool) -> EmbeddedCall | None:
        """The call a `{"name": N, "arguments": {...}}` object (maybe broken JSON) stands for."""
        value, error = parse_lenient(text, [], [])
        return self.call_value(value, exact=exact) if not error else None

    def call_value(self, value: Any, *, exact: bool) -> EmbeddedCall | None:
        if not isinstance(value, dict):
            return None
        keys = [k for k in value if k not in ("name", "id", "type")]
        if len(keys) > 1 or (keys and keys[0] not in ("arguments", "parameters")):
            return None
        return self.call(value.get("name"), value.get(keys[0]) if keys else None, exact=exact)


def _typed(raw: dict[str, str], schema: dict) -> dict[str, Any]:
    props = properties_of(schema)
    out: dict[str, Any] = {}
    for key, value in raw.items():
        types = schema_types(resolve(props.get(key, {}), schema))
        if not types or "string" in types:
            out[key] = value
            continue
        try:
            out[key] = loads_strict(value.strip())
        except ValueError:
            out[key] = value.strip()
    return out
