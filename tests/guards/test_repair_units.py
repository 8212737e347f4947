"""The repair guard's parts alone: schema validation, argument repair, names, block parsers."""

from __future__ import annotations

import pytest

from agentwrap.guards.repair import NameResolver, Toolbox, repair_arguments, validate
from agentwrap.guards.repair.arguments import dropped_words, strip_fence, truncation
from agentwrap.guards.repair.formats import PARSERS
from agentwrap.guards.repair.names import distance, normalize
from tests.guards.repair_corpus import SCHEMAS, TOOLS

# -- validate --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "schema", "ok"),
    [
        (5, {"type": "integer"}, True),
        (5.0, {"type": "integer"}, True),
        (5.5, {"type": "integer"}, False),
        (True, {"type": "integer"}, False),
        (True, {"type": "number"}, False),
        (None, {"type": "string", "nullable": True}, True),
        (None, {"type": ["string", "null"]}, True),
        ("x", {"type": "STRING"}, True),  # Gemini's OpenAPI type names
        ("b", {"enum": ["a", "b"]}, True),
        (1, {"enum": [True]}, False),
        ({"a": 1}, {"type": "object", "properties": {"a": {"type": "integer"}}, "additionalProperties": False}, True),
        ({"b": 1}, {"type": "object", "properties": {"a": {"type": "integer"}}, "additionalProperties": False}, False),
        ({"b": "x"}, {"type": "object", "additionalProperties": {"type": "integer"}}, False),
        ([1, "2"], {"type": "array", "items": {"type": "integer"}}, False),
        ("x", {"anyOf": [{"type": "integer"}, {"type": "string"}]}, True),
        ("x", {"oneOf": [{"type": "string"}, {"type": "string", "maxLength": 3}]}, True),  # overlapping branches
        ("x", {"allOf": [{"type": "string"}, {"const": "y"}]}, False),
        ({"s": {"n": "1"}}, {"type": "object", "properties": {"s": {"$ref": "#/$defs/S"}}, "$defs": {"S": {"properties": {"n": {"type": "integer"}}}}}, False),
        ({"s": 1}, {"properties": {"s": {"$ref": "https://example.com/remote"}}}, True),  # unknown refs: anything
        ("x", {"type": "string", "minLength": 5, "format": "uri"}, True),  # other keywords are ignored
        ("x", True, True),
        ("x", {"not": {}}, True),
    ],
)
def test_validate(value: object, schema: dict, ok: bool) -> None:
    assert (validate(value, schema) is None) is ok


def test_validate_names_the_path() -> None:
    error = validate({"todos": [{"content": "x", "status": "late"}]}, SCHEMAS["TodoWrite"])
    assert error is not None and error.startswith("todos[0].status:")


# -- arguments ------------------------------------------------------------------------


def test_valid_arguments_come_back_as_the_same_text() -> None:
    raw = '{ "command" : "ls" }'
    result = repair_arguments(raw, SCHEMAS["Bash"])
    assert result.ok and not result.changed and result.text is raw


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('{"a": "b', "truncated inside a string"),
        ('{"a": 1, "b"', "truncated after a key"),
        ('{"a":', "truncated after a key"),
        ('{"a": 12', "truncated inside a number"),
        ('{"a": tru', "truncated inside a value"),
        ('{"a": true', ""),
        ('{"a": "b"', ""),
        ('{"a": [1, 2], ', ""),
        ("{'a': \"it's\"", ""),
        ("{'a': 'x', 'b': 'y'", ""),
        ('{"a": {"b": "c"}', ""),
        ('{"a": "b"}', ""),
    ],
)
def test_truncation(text: str, reason: str) -> None:
    assert truncation(text) == reason


def test_dropped_words() -> None:
    assert dropped_words('{"a": "b"} and more', '{"a":"b"}') == {"and", "more"}
    assert dropped_words("{'a': True, 'b': None}", '{"a":true,"b":null}') == set()
    assert dropped_words('{"a": "x\ny"}', '{"a":"x\\ny"}') == set()


def test_strip_fence() -> None:
    assert strip_fence('```json\n{"a": 1}\n```') == '{"a": 1}'
    assert strip_fence('```\n{"a": 1}\n```\n') == '{"a": 1}'
    assert strip_fence('```python\nx = 1\n```') is None
    assert strip_fence('{"a": 1}') is None


def test_repair_never_invents_a_required_parameter() -> None:
    for raw in ("{}", '{"timeout": 5}', '{"command": null}', '{"cmd": "ls"}'):
        result = repair_arguments(raw, SCHEMAS["Bash"])
        assert not result.ok and result.text == raw


def test_optional_null_kept_where_the_schema_allows_null() -> None:
    raw = '{"settings": {"level": "2", "name": null}}'
    result = repair_arguments(raw, SCHEMAS["Configure"])
    assert result.ok and result.value == {"settings": {"level": 2, "name": None}}


def test_schema_without_parameters_takes_any_object() -> None:
    assert repair_arguments('{"anything": [1]}', None).ok
    assert repair_arguments("{'anything': [1],}", None).text == '{"anything":[1]}'
    assert not repair_arguments("[1]", None).ok


def test_hostile_arguments_fail_cleanly() -> None:
    deep = '{"command": ' + "[" * 100_000 + "]" * 100_000 + "}"
    assert not repair_arguments(deep, SCHEMAS["Bash"]).ok
    assert not repair_arguments('"' + deep.replace('"', '\\"') + '"', SCHEMAS["Bash"]).ok
    assert not repair_arguments("{'command': '" + "x" * 300_000 + "'}", SCHEMAS["Bash"]).ok  # too long to repair
    nested = {"type": "object", "properties": {"a": {"$ref": "#"}}}
    assert repair_arguments('{"a": {"a": {"a": {}}}}', nested).ok  # a recursive schema
    assert not repair_arguments('{"a": {"a": "1"}}', nested).ok


# -- names ---------------------------------------------------------------------------


def test_normalize_and_distance() -> None:
    assert normalize("Read-File") == normalize("readFile") == normalize("read_file") == "readfile"
    assert distance("bash", "bsh", 2) == 1
    assert distance("abcd", "abdc", 2) == 1  # a transposition
    assert distance("kitten", "sitting", 2) == 3  # past the limit: limit + 1


def test_names_never_resolve_to_undeclared_tools() -> None:
    resolver = NameResolver(["Read", "read", "Write"])
    assert resolver.resolve("READ") is None  # two declared names fold the same: ambiguous
    assert resolver.resolve("Reed") is None  # two at distance 1
    assert resolver.resolve("Wrote").name == "Write"
    assert resolver.resolve("ls") is None
    assert resolver.resolve("Deploy") is None


# -- block parsers ---------------------------------------------------------------------

BOX = Toolbox(TOOLS)


def test_parsers_need_every_call_valid() -> None:
    two = '<function_calls><invoke name="Bash"><parameter name="command">ls</parameter></invoke><invoke name="Edit"><parameter name="file_path">a</parameter></invoke></function_calls>'
    assert PARSERS["function_calls"](two, BOX, True) is None
    assert PARSERS["xml"]("<Bash><command>ls</command><command>pwd</command></Bash>", BOX, True) is None  # a repeated parameter
    assert PARSERS["tool_call"]('<tool_call>{"name": "Bash", "arguments": {"command": "ls"}, "extra": 1}</tool_call>', BOX, True) is None
    assert PARSERS["mistral"]("[TOOL_CALLS]Bash[ARGS]{}", BOX, False) is None


def test_custom_tools_are_never_extracted() -> None:
    assert PARSERS["tool_call"]('<tool_call>{"name": "apply_patch", "arguments": {"input": "x"}}</tool_call>', BOX, True) is None
