"""The tool-repair case corpus: declared tools, tool calls from the call channel, and
message texts, each with what the agent must get.

`CHANNEL`: (id, called name, raw arguments, expected) where expected is "valid"
(released unchanged), ("repaired", name, arguments as a value) or "failed"
(released unchanged, noted). `TEXTS`: (id, text, text the agent sees, calls
[(name, arguments value)]). `NEAR_MISSES`: texts that must come out identical.
"""

from __future__ import annotations

from agentwrap.protocols.neutral.summary import ToolSpec

_STR = {"type": "string"}
_INT = {"type": "integer"}
_BOOL = {"type": "boolean"}

TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        "Bash",
        parameters={
            "type": "object",
            "properties": {"command": _STR, "timeout": _INT, "run_in_background": _BOOL, "description": _STR},
            "required": ["command"],
            "additionalProperties": False,
        },
    ),
    ToolSpec("Read", parameters={"type": "object", "properties": {"file_path": _STR, "offset": _INT, "limit": _INT}, "required": ["file_path"]}),
    ToolSpec("read_file", parameters={"type": "object", "properties": {"path": _STR}, "required": ["path"]}),
    ToolSpec(
        "Edit",
        parameters={
            "type": "object",
            "properties": {"file_path": _STR, "old_string": _STR, "new_string": _STR, "replace_all": _BOOL},
            "required": ["file_path", "old_string", "new_string"],
        },
    ),
    ToolSpec(
        "TodoWrite",
        parameters={
            "type": "object",
            "properties": {
                "todos": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"content": _STR, "status": {"type": "string", "enum": ["pending", "in_progress", "completed"]}},
                        "required": ["content", "status"],
                    },
                }
            },
            "required": ["todos"],
        },
    ),
    ToolSpec(
        "Grep",
        parameters={
            "type": "object",
            "properties": {
                "pattern": _STR,
                "path": _STR,
                "-i": _BOOL,
                "head_limit": {"type": "number"},
                "output_mode": {"type": "string", "enum": ["content", "files_with_matches", "count"]},
            },
            "required": ["pattern"],
        },
    ),
    ToolSpec("Glob", parameters={"type": "object", "properties": {"paths": {"type": "array", "items": _STR}}, "required": ["paths"]}),
    ToolSpec("Pick", parameters={"type": "object", "properties": {"ids": {"anyOf": [{"type": "array", "items": _INT}, _STR]}}, "required": ["ids"]}),
    ToolSpec(
        "Configure",
        parameters={
            "type": "object",
            "properties": {"settings": {"$ref": "#/$defs/Settings"}},
            "required": ["settings"],
            "$defs": {"Settings": {"type": "object", "properties": {"level": _INT, "name": {"type": "string", "nullable": True}}}},
        },
    ),
    ToolSpec("Ping", parameters={"type": "object", "properties": {}}),
    ToolSpec("apply_patch", tool_kind="custom", description="freeform patch"),
)

SCHEMAS = {t.name: t.parameters for t in TOOLS}

CHANNEL: list[tuple[str, str, str, object]] = [
    # -- valid: released exactly as held
    ("valid_simple", "Bash", '{"command":"ls"}', "valid"),
    ("valid_all_fields", "Read", '{"file_path":"/a.txt","offset":1,"limit":10}', "valid"),
    ("valid_unicode_escapes", "Edit", '{"file_path":"/é.txt","old_string":"a\\n\\"b\\"","new_string":"\\u00e9 ✓"}', "valid"),
    ("valid_nested_array", "TodoWrite", '{"todos":[{"content":"x","status":"pending"}]}', "valid"),
    ("valid_dash_key", "Grep", '{"pattern":"TODO","-i":true,"head_limit":5}', "valid"),
    ("valid_pretty_printed", "Bash", '{\n  "command": "ls -la",\n  "timeout": 1000\n}', "valid"),
    ("valid_integral_float", "Bash", '{"command":"ls","timeout":5.0}', "valid"),
    ("valid_ref_nullable", "Configure", '{"settings":{"level":2,"name":null}}', "valid"),
    ("valid_anyof", "Pick", '{"ids":"a,b"}', "valid"),
    ("valid_namespaced_name", "clock__Bash", '{"command":"ls"}', "valid"),
    # -- JSON syntax
    ("syntax_single_quotes", "Bash", "{'command': 'ls -la'}", ("repaired", "Bash", {"command": "ls -la"})),
    ("syntax_trailing_comma", "Bash", '{"command": "ls", "timeout": 5,}', ("repaired", "Bash", {"command": "ls", "timeout": 5})),
    ("syntax_raw_newline", "Bash", '{"command": "echo a\necho b"}', ("repaired", "Bash", {"command": "echo a\necho b"})),
    ("syntax_python_literals", "Bash", '{"command": "ls", "run_in_background": True, "description": None}', ("repaired", "Bash", {"command": "ls", "run_in_background": True})),
    ("syntax_missing_brace", "Bash", '{"command": "ls"', ("repaired", "Bash", {"command": "ls"})),
    ("syntax_missing_two_brackets", "TodoWrite", '{"todos": [{"content": "x", "status": "pending"}', ("repaired", "TodoWrite", {"todos": [{"content": "x", "status": "pending"}]})),
    ("syntax_code_fence", "Bash", '```json\n{"command": "ls"}\n```', ("repaired", "Bash", {"command": "ls"})),
    ("syntax_bare_fence", "Read", '```\n{"file_path": "/a"}\n```', ("repaired", "Read", {"file_path": "/a"})),
    ("syntax_unquoted_keys", "Bash", '{command: "ls"}', ("repaired", "Bash", {"command": "ls"})),
    ("syntax_extra_brace", "Bash", '{"command": "ls"}}', ("repaired", "Bash", {"command": "ls"})),
    # -- shape
    ("shape_double_encoded", "Bash", '"{\\"command\\": \\"ls\\"}"', ("repaired", "Bash", {"command": "ls"})),
    ("shape_call_envelope", "Bash", '{"name": "Bash", "arguments": {"command": "ls"}}', ("repaired", "Bash", {"command": "ls"})),
    # -- types
    ("type_string_integer", "Bash", '{"command": "sleep 1", "timeout": "5000"}', ("repaired", "Bash", {"command": "sleep 1", "timeout": 5000})),
    ("type_string_boolean", "Bash", '{"command": "ls", "run_in_background": "true"}', ("repaired", "Bash", {"command": "ls", "run_in_background": True})),
    ("type_python_boolean_string", "Edit", '{"file_path": "a", "old_string": "x", "new_string": "y", "replace_all": "False"}', ("repaired", "Edit", {"file_path": "a", "old_string": "x", "new_string": "y", "replace_all": False})),
    ("type_string_number", "Grep", '{"pattern": "x", "head_limit": "2.5"}', ("repaired", "Grep", {"pattern": "x", "head_limit": 2.5})),
    ("type_double_encoded_array", "TodoWrite", '{"todos": "[{\\"content\\": \\"x\\", \\"status\\": \\"pending\\"}]"}', ("repaired", "TodoWrite", {"todos": [{"content": "x", "status": "pending"}]})),
    ("type_single_to_array", "Glob", '{"paths": "src/*.py"}', ("repaired", "Glob", {"paths": ["src/*.py"]})),
    ("type_enum_case", "Grep", '{"pattern": "x", "output_mode": "Content"}', ("repaired", "Grep", {"pattern": "x", "output_mode": "content"})),
    ("type_nested_enum_case", "TodoWrite", '{"todos": [{"content": "x", "status": "Completed"}]}', ("repaired", "TodoWrite", {"todos": [{"content": "x", "status": "completed"}]})),
    ("type_null_optional_dropped", "Read", '{"file_path": "/a", "offset": null, "limit": null}', ("repaired", "Read", {"file_path": "/a"})),
    ("type_key_camel_case", "Read", '{"filePath": "/a"}', ("repaired", "Read", {"file_path": "/a"})),
    ("type_integer_to_string", "Grep", '{"pattern": 404}', ("repaired", "Grep", {"pattern": "404"})),
    ("type_ref_coercion", "Configure", '{"settings": {"level": "3"}}', ("repaired", "Configure", {"settings": {"level": 3}})),
    ("type_anyof_unique", "Pick", '{"ids": [1, "2"]}', ("repaired", "Pick", {"ids": [1, 2]})),
    # -- names
    ("name_lower_case", "bash", '{"command": "ls"}', ("repaired", "Bash", {"command": "ls"})),
    ("name_upper_case", "BASH", '{"command": "ls"}', ("repaired", "Bash", {"command": "ls"})),
    ("name_dash", "read-file", '{"path": "a"}', ("repaired", "read_file", {"path": "a"})),
    ("name_camel", "readFile", '{"path": "a"}', ("repaired", "read_file", {"path": "a"})),
    ("name_typo", "Bsh", '{"command": "ls"}', ("repaired", "Bash", {"command": "ls"})),
    ("name_prefix", "functions.Bash", '{"command": "ls"}', ("repaired", "Bash", {"command": "ls"})),
    ("name_and_args", "todo_write", "{'todos': [{'content': 'x', 'status': 'pending'},]}", ("repaired", "TodoWrite", {"todos": [{"content": "x", "status": "pending"}]})),
    # -- unrepairable: released as they came, noted
    ("fail_truncated_string", "Bash", '{"command": "rm -rf /tmp/bu', "failed"),
    ("fail_truncated_after_key", "Bash", '{"command": "ls", "timeout":', "failed"),
    ("fail_truncated_number", "Bash", '{"command": "ls", "timeout": 12', "failed"),
    ("fail_missing_required", "Edit", '{"file_path": "a", "old_string": "x"}', "failed"),
    ("fail_required_null", "Bash", '{"command": null}', "failed"),
    ("fail_unknown_tool", "Deploy", '{"target": "prod"}', "failed"),
    ("fail_close_name_wrong_args", "Reed", '{"command": "ls"}', "failed"),
    ("fail_not_json", "Bash", "ls -la", "failed"),
    ("fail_trailing_prose", "Bash", '{"command": "ls"} and then I will check', "failed"),
    ("fail_fractional_integer", "Bash", '{"command": "ls", "timeout": "5.5"}', "failed"),
    ("fail_yes_boolean", "Bash", '{"command": "ls", "run_in_background": "yes"}', "failed"),
    ("fail_nan", "Bash", '{"command": "ls", "timeout": NaN}', "failed"),
    ("fail_extra_parameter", "Bash", '{"command": "ls", "cwd": "/tmp"}', "failed"),
    ("fail_anyof_ambiguous", "Pick", '{"ids": 5}', "failed"),
    ("fail_array_arguments", "Bash", '["ls"]', "failed"),
]

# Called names that do not reach a Gemini backend's wire unchanged are left out of its runs;
# arguments that are not a JSON object cannot cross it at all (its encoder wraps them as {"_raw": ...}).

TEXTS: list[tuple[str, str, str, list[tuple[str, dict]]]] = [
    ("hermes", 'Let me check.<tool_call>{"name": "Bash", "arguments": {"command": "ls"}}</tool_call>', "Let me check.", [("Bash", {"command": "ls"})]),
    ("hermes_lines", 'Checking.\n<tool_call>\n{"name": "Bash", "arguments": {"command": "ls -la"}}\n</tool_call>\n', "Checking.\n\n", [("Bash", {"command": "ls -la"})]),
    ("hermes_text_after", 'A<tool_call>{"name": "read_file", "arguments": {"path": "x"}}</tool_call>B', "AB", [("read_file", {"path": "x"})]),
    ("hermes_name_and_types", '<tool_call>{"name": "bash", "arguments": {"command": "sleep 1", "timeout": "10"}}</tool_call>', "", [("Bash", {"command": "sleep 1", "timeout": 10})]),
    ("hermes_broken_json", "<tool_call>{'name': 'Bash', 'arguments': {'command': 'pwd',}}</tool_call>", "", [("Bash", {"command": "pwd"})]),
    ("hermes_arguments_string", '<tool_call>{"name": "Bash", "arguments": "{\\"command\\": \\"ls\\"}"}</tool_call>', "", [("Bash", {"command": "ls"})]),
    ("hermes_parallel", '<tool_call>{"name": "Bash", "arguments": {"command": "ls"}}</tool_call>\n<tool_call>{"name": "read_file", "arguments": {"path": "a"}}</tool_call>', "\n", [("Bash", {"command": "ls"}), ("read_file", {"path": "a"})]),
    ("hermes_unclosed_at_end", 'Now: <tool_call>\n{"name": "Bash", "arguments": {"command": "ls"}}\n', "Now: ", [("Bash", {"command": "ls"})]),
    ("hermes_parameters_key", '<tool_call>{"name": "Read", "parameters": {"file_path": "/etc/hosts"}}</tool_call>', "", [("Read", {"file_path": "/etc/hosts"})]),
    ("qwen_coder", "<tool_call>\n<function=Bash>\n<parameter=command>\nls -la\n</parameter>\n<parameter=timeout>\n5000\n</parameter>\n</function>\n</tool_call>", "", [("Bash", {"command": "ls -la", "timeout": 5000})]),
    ("function_params", "Run it.\n<function=Edit>\n<parameter=file_path>a.py</parameter>\n<parameter=old_string>x = 1\n</parameter>\n<parameter=new_string>x = 2\n</parameter>\n</function>", "Run it.\n", [("Edit", {"file_path": "a.py", "old_string": "x = 1", "new_string": "x = 2"})]),
    ("function_json", 'x <function=Bash>{"command": "date"}</function> y', "x  y", [("Bash", {"command": "date"})]),
    ("function_multiline_value", "<function=Bash>\n<parameter=command>\ncat <<EOF\na < b\nEOF\n</parameter>\n</function>", "", [("Bash", {"command": "cat <<EOF\na < b\nEOF"})]),
    ("invoke", '<function_calls>\n<invoke name="Bash">\n<parameter name="command">git status</parameter>\n</invoke>\n</function_calls>', "", [("Bash", {"command": "git status"})]),
    ("invoke_two", '<function_calls>\n<invoke name="Bash">\n<parameter name="command">ls</parameter>\n</invoke>\n<invoke name="Read">\n<parameter name="file_path">/a</parameter>\n<parameter name="limit">20</parameter>\n</invoke>\n</function_calls>', "", [("Bash", {"command": "ls"}), ("Read", {"file_path": "/a", "limit": 20})]),
    ("invoke_alone", 'Sure <invoke name="read_file"><parameter name="path">a.txt</parameter></invoke>', "Sure ", [("read_file", {"path": "a.txt"})]),
    ("xml_tool_tag", "I'll list the files.\n<Bash>\n<command>ls</command>\n</Bash>\n", "I'll list the files.\n\n", [("Bash", {"command": "ls"})]),
    ("xml_tool_tag_params", "<Read>\n  <file_path>/tmp/x</file_path>\n  <limit>5</limit>\n</Read>", "", [("Read", {"file_path": "/tmp/x", "limit": 5})]),
    ("deepseek_v3", 'ok<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>Bash\n```json\n{"command": "ls"}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>', "ok", [("Bash", {"command": "ls"})]),
    ("deepseek_v31", '<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>read_file<｜tool▁sep｜>{"path": "a"}<｜tool▁call▁end｜><｜tool▁call▁begin｜>Bash<｜tool▁sep｜>{"command": "pwd"}<｜tool▁call▁end｜><｜tool▁calls▁end｜>', "", [("read_file", {"path": "a"}), ("Bash", {"command": "pwd"})]),
    ("deepseek_ascii_bar", '<|tool▁calls▁begin|><|tool▁call▁begin|>function<|tool▁sep|>Bash\n```json\n{"command": "ls"}\n```<|tool▁call▁end|><|tool▁calls▁end|>', "", [("Bash", {"command": "ls"})]),
    ("glm", "Let me look.\n<tool_call>Bash\n<arg_key>command</arg_key>\n<arg_value>ls -la</arg_value>\n</tool_call>", "Let me look.\n", [("Bash", {"command": "ls -la"})]),
    ("glm_typed", "<tool_call>Read\n<arg_key>file_path</arg_key>\n<arg_value>/a.py</arg_value>\n<arg_key>limit</arg_key>\n<arg_value>50</arg_value>\n</tool_call>", "", [("Read", {"file_path": "/a.py", "limit": 50})]),
    ("glm_no_arguments", "<tool_call>Ping</tool_call>", "", [("Ping", {})]),
    ("kimi", 'On it.<|tool_calls_section_begin|><|tool_call_begin|>functions.Bash:0<|tool_call_argument_begin|>{"command": "pwd"}<|tool_call_end|><|tool_calls_section_end|>', "On it.", [("Bash", {"command": "pwd"})]),
    ("kimi_two", '<|tool_calls_section_begin|> <|tool_call_begin|>functions.read_file:0 <|tool_call_argument_begin|> {"path": "a"} <|tool_call_end|> <|tool_call_begin|>functions.Bash:1<|tool_call_argument_begin|>{"command": "ls"}<|tool_call_end|> <|tool_calls_section_end|>', "", [("read_file", {"path": "a"}), ("Bash", {"command": "ls"})]),
    ("mistral_array", '[TOOL_CALLS][{"name": "Bash", "arguments": {"command": "ls"}}, {"name": "Read", "arguments": {"file_path": "/a"}}]', "", [("Bash", {"command": "ls"}), ("Read", {"file_path": "/a"})]),
    ("mistral_args", 'Okay.[TOOL_CALLS]Bash[ARGS]{"command": "whoami"}', "Okay.", [("Bash", {"command": "whoami"})]),
    ("fenced_json", 'I will run:\n```json\n{"name": "Bash", "arguments": {"command": "make test"}}\n```\n', "I will run:\n", [("Bash", {"command": "make test"})]),
    ("fenced_no_info", '```\n{"name": "read_file", "arguments": {"path": "README.md"}}\n```', "", [("read_file", {"path": "README.md"})]),
    ("fenced_two", '```json\n{"name": "Bash", "arguments": {"command": "ls"}}\n```\n\n```json\n{"name": "read_file", "arguments": {"path": "a"}}\n```', "\n", [("Bash", {"command": "ls"}), ("read_file", {"path": "a"})]),
    ("fenced_coerced", '```json\n{"name": "Bash", "arguments": {"command": "ls", "run_in_background": "false"}}\n```', "", [("Bash", {"command": "ls", "run_in_background": False})]),
    ("bare_json", '{"name": "read_file", "parameters": {"path": "a.txt"}}', "", [("read_file", {"path": "a.txt"})]),
    ("bare_json_whitespace", '\n\n  {"name": "Bash", "arguments": {"command": "ls"}}\n', "\n\n  \n", [("Bash", {"command": "ls"})]),
    ("think_then_call", '<think>I should list {files}.</think>\n<tool_call>{"name": "Bash", "arguments": {"command": "ls"}}</tool_call>', "<think>I should list {files}.</think>\n", [("Bash", {"command": "ls"})]),
    ("code_then_call", 'Example:\n```python\nprint("<tool_call>")\n```\n<tool_call>{"name": "Bash", "arguments": {"command": "ls"}}</tool_call>', 'Example:\n```python\nprint("<tool_call>")\n```\n', [("Bash", {"command": "ls"})]),
]

NEAR_MISSES: list[tuple[str, str]] = [
    ("prose", "The answer is 42. Nothing to run here."),
    ("prose_names_tool", "I'll use the Bash tool to run `ls`, then Read to open the file."),
    ("python_fence_with_json", 'Here is code:\n```python\nimport json\nprint(json.dumps({"name": "Bash", "arguments": {"command": "ls"}}))\n```\n'),
    ("json_fence_config", 'Config:\n```json\n{"version": 2, "name": "demo"}\n```\n'),
    ("fenced_call_then_text", 'Like this:\n```json\n{"name": "Bash", "arguments": {"command": "ls"}}\n```\nThat is the format the tool takes.'),
    ("bare_json_after_text", 'The call would be {"name": "Bash", "arguments": {"command": "ls"}} in JSON.'),
    ("inline_code_example", 'Qwen writes `<tool_call>{"name": "Bash", "arguments": {"command": "ls"}}</tool_call>` for calls.'),
    ("double_backtick_example", 'Use ``<Bash><command>ls</command></Bash>`` as shown.'),
    ("thinking_block", '<thinking>I could call <tool_call>{"name": "Bash", "arguments": {"command": "ls"}}</tool_call> but no.</thinking>Done.'),
    ("think_unclosed", '<think>planning <tool_call>{"name": "Bash", "arguments": {"command": "ls"}}</tool_call>'),
    ("xml_document_fenced", 'Here is the file:\n```xml\n<Bash>\n<command>ls</command>\n</Bash>\n```\n'),
    ("xml_document_raw", '<?xml version="1.0"?>\n<config>\n<name>demo</name>\n<items><item>1</item></items>\n</config>'),
    ("xml_tool_unknown_child", "<Bash>\n<cmd>ls</cmd>\n</Bash>"),
    ("xml_tool_mid_line", "Wrap it as <Bash><command>ls</command></Bash> please."),
    ("xml_tool_then_text", "<Bash>\n<command>ls</command>\n</Bash>\nThat is how it would look."),
    ("hermes_undeclared_tool", '<tool_call>{"name": "Deploy", "arguments": {"target": "prod"}}</tool_call>'),
    ("hermes_missing_required", '<tool_call>{"name": "Edit", "arguments": {"file_path": "a"}}</tool_call>'),
    ("hermes_not_json", "<tool_call>call bash with ls</tool_call>"),
    ("hermes_mentioned", "Models emit a <tool_call> tag, then JSON, then a closing tag."),
    ("html_and_comparisons", "If a < b and b > c, use <b>bold</b> or <div class='x'>...</div>; x<y."),
    ("markdown_links", "See [the docs](https://example.com) and [TOOL] notes [1]."),
    ("deepseek_char_in_prose", "Fullwidth bar ｜ and block ▁ characters are fine."),
    ("fenced_undeclared", '```json\n{"name": "Deploy", "arguments": {"target": "prod"}}\n```'),
    ("json_name_not_call", '{"name": "Bash", "version": 2}'),
    ("bare_not_call", '{"result": 1, "ok": true}'),
    ("function_syntax_prose", "The <function=NAME> syntax takes parameters."),
    ("unicode_emoji", "Déjà vu ✓ — 日本語 🎉 < > done"),
    ("unclosed_backtick", "A stray ` backtick, then <tool> text."),
    ("outer_fence_example", '````markdown\n```json\n{"name": "Bash", "arguments": {"command": "ls"}}\n```\n````\n'),
    ("many_angles", "<" * 50 + " << >> <<<" + "a<b" * 20),
    ("glm_prose_in_tag", "<tool_call>Bash is the tool to use</tool_call> here."),
    ("glm_unknown_key", "<tool_call>Bash\n<arg_key>cmd</arg_key>\n<arg_value>ls</arg_value>\n</tool_call>"),
    ("kimi_undeclared", '<|tool_calls_section_begin|><|tool_call_begin|>functions.Deploy:0<|tool_call_argument_begin|>{}<|tool_call_end|><|tool_calls_section_end|>'),
    ("mistral_marker_prose", "The [TOOL_CALLS] token starts calls in Mistral."),
    ("invoke_undeclared", '<invoke name="Deploy"><parameter name="target">prod</parameter></invoke>'),
]
