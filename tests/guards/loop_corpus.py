"""The loop guard's case corpus: repetition loops to find and legitimate repetition never to cut.

A `Case` is a whole streamed answer. `unit` is the loop's unit (primitive: not
itself a repetition of a shorter one), or None for a near miss: legitimate
output, which must never trigger. Near misses of some size live in
`tests/fixtures/loops/<name>.<ext>`, one per case, named after it; loops are
built here from their unit, so the unit and its count read at a glance.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "loops"

NAMES = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy"]


@dataclass(frozen=True)
class Case:
    name: str
    text: str
    unit: str | None = None  # None: legitimate, never a loop
    lane: str = "text"  # "thinking": the guard tests feed it as thinking
    copies: int = 0  # of the unit, for a loop

    def __repr__(self) -> str:  # keeps pytest ids and failure output short
        return f"Case({self.name})"


def fixture(name: str) -> str:
    return next(FIXTURES.glob(name + ".*")).read_text()


def fixture_names() -> list[str]:
    return sorted(path.stem for path in FIXTURES.iterdir() if path.is_file())


# --- text around the loops ------------------------------------------------------------------------

PROSE = (
    "I looked at the failing test first. The parser reads the header, then the body, and the body reader assumes "
    "the length field is present; in the failing case it is not, so it reads to the end of the buffer and the "
    "checksum no longer matches.\n\n"
)
CODE = (
    "```python\n"
    "def read_body(buf: bytes, header: Header) -> bytes:\n"
    "    if header.length is None:\n"
    "        raise ValueError(\"missing length\")\n"
    "    return buf[header.size : header.size + header.length]\n"
    "```\n\n"
)
PARAGRAPH_300 = (
    "The upload handler streams the request body to a temporary file, computes its checksum on the way, and only "
    "then moves the file into the content store. If the client disconnects midway, the temporary file is removed "
    "and nothing is recorded, so a retry starts from a clean state. "
)
PARAGRAPH_520 = (
    "Next, I will update the retry logic in the client.\n"
    "The current code retries every error, including the 400s that will never succeed,\n"
    "and it sleeps a fixed two seconds between attempts, which is both too slow for transient\n"
    "network errors and too fast for a server that is shedding load. I will retry only\n"
    "connection errors, timeouts and 429/503 responses, with exponential backoff and jitter,\n"
    "and honour Retry-After when the server sends it. Then I will add tests for each case.\n\n"
)
PARAGRAPH_1000 = (
    "Let me summarise the plan before making any more changes. First, the configuration loader must accept both "
    "the old and the new key names for one release, logging a deprecation warning when it sees an old one, so that "
    "existing deployments keep working while their owners update their files. Second, the migration script has to "
    "be idempotent: running it twice must leave the database in the same state as running it once, which means "
    "every step checks whether its change is already present before applying it. Third, the health check should "
    "report the schema version it expects and the one it finds, so that an operator can see at a glance why a "
    "node refuses to start. Fourth, the documentation needs a short upgrade section with the exact commands, in "
    "order, and a note on how to roll back if the migration fails halfway. Finally, I will run the whole test "
    "suite against a copy of the production schema to make sure nothing else depends on the old names.\n\n"
)
CODE_BLOCK = (
    "def test_upload_rejects_empty_body(client):\n"
    "    response = client.post(\"/upload\", data=b\"\")\n"
    "    assert response.status_code == 400\n"
    "    assert response.json()[\"error\"] == \"empty body\"\n\n"
)


def _numbered(n: int, template: str) -> str:
    return "".join(template.format(i=i, name=NAMES[i % len(NAMES)]) for i in range(n))


def _loop(name: str, unit: str, times: int, prefix: str = PROSE, lane: str = "text", first: str = "") -> Case:
    return Case(name, prefix + first + unit * times, unit, lane, times)


def _paragraph(chars: int) -> str:
    """A paragraph of about `chars` characters made of distinct numbered sentences."""
    out, i = [], 0
    while sum(map(len, out)) < chars:
        out.append(f"Sentence {i} of the long answer explains one more detail of the design, {NAMES[i % 10]}. ")
        i += 1
    return "".join(out) + "\n\n"


def _fib(n: int) -> list[int]:
    out = [0, 1]
    while len(out) < n:
        out.append(out[-1] + out[-2])
    return out


LOOPS = [
    # one or two characters, for thousands
    _loop("dash_run", "-", 6000),
    _loop("equals_run", "=", 6000, prefix="Results\n"),
    _loop("blank_lines", "\n", 6000),
    _loop("spaces", " ", 6000),
    _loop("zero_digits", "0", 6000, prefix="The value is 1"),
    _loop("dots", ".", 6000, prefix="Loading"),
    _loop("emoji", "\U0001f642", 5000),
    _loop("cjk_character", "\u597d", 5000),
    _loop("ha", "ha", 3000),
    _loop("crlf_blank_lines", "\r\n", 3000),
    _loop("newline_space", "\n ", 3000),
    _loop("tab_newline", "\t\n", 3000),
    # short tokens
    _loop("the_the", "the ", 1500),
    _loop("no_no", "no ", 2000),
    _loop("ok_period", "OK. ", 1500),
    _loop("code_fences", "```\n", 1500, prefix=CODE),
    _loop("closing_braces", "}\n", 3000, prefix=CODE),
    _loop("closing_divs", "</div>\n", 1000, prefix="<div>\n<div>\n"),
    # sentences and lines
    _loop("sentence_newline", "Let me check the file again.\n", 200),
    _loop("sentence_space", "Let me check the file again. ", 200),
    _loop("sentence_57", "I will now run the full test suite to verify the change.\n", 100),
    _loop("apology", "I apologize for the confusion. ", 150),
    _loop("list_item", "- Check the configuration file for errors\n", 150),
    _loop("same_numbered_item", "1. Check the file\n", 200),
    _loop("same_step", "Step 3: run the tests again.\n", 200),
    _loop("markdown_bold", "**Note:** Let me verify this once more.\n", 200),
    _loop("url_sentence", "See https://example.com/docs/upload for details.\n", 200),
    _loop("chinese_sentence", "\u6211\u9700\u8981\u518d\u68c0\u67e5\u4e00\u4e0b\u8fd9\u4e2a\u6587\u4ef6\u3002\n", 300),
    _loop("two_sentences", "The test still fails. Let me look at the parser again. ", 100),
    # code and data
    _loop("code_line", "    return self._parse(data)\n", 300, prefix=CODE),
    _loop("code_block", CODE_BLOCK, 60, prefix=CODE),
    _loop("json_object", '  {"id": 1, "name": "alice", "active": true},\n', 300, prefix="[\n"),
    _loop("table_row", "| foo | bar | baz |\n", 400, prefix="| a | b | c |\n|---|---|---|\n"),
    _loop("html_row", "<tr><td>Item</td><td>0</td></tr>\n", 300, prefix="<table>\n"),
    _loop("stack_frame", "\tat com.example.tree.Node.depth(Node.java:42)\n", 300,
          prefix="java.lang.StackOverflowError\n"),
    # paragraphs
    _loop("paragraph", PARAGRAPH_300, 20),
    _loop("paragraph_multiline", PARAGRAPH_520, 15),
    _loop("paragraph_long", PARAGRAPH_1000, 12),
    _loop("paragraph_near_max_unit", _paragraph(1900)[:2000] + "\n\n", 10),
    # where the loop starts and how
    _loop("after_long_code_prefix", "Let me check the file again.\n", 200,
          prefix=fixture("python_module") + fixture("markdown_table")),
    _loop("after_long_prose_prefix", PARAGRAPH_300, 20,
          prefix=fixture("essay") + fixture("numbered_list") + fixture("lyrics")),
    _loop("very_late_loop", "I need to look at the parser module again to be sure.\n", 200,
          prefix="".join(fixture(n) for n in fixture_names())),
    _loop("first_copy_misspelt", "Let me check the file again.\n", 150, first="Let me check the file agian.\n"),
    _loop("first_copies_vary", "Let me check the file again.\n", 150,
          first="Let me check that file again.\nLet me check the file again:\nLet me check the file again!\n"),
    _loop("short_loop_then_long", "Let me check the file again.\n", 150,
          prefix=PROSE + "Running the tests again.\n" * 20 + CODE),
    _loop("blank_stretch_inside_unit", "x\n" + " " * 500 + "\n", 20),
    _loop("local_period_inside_unit", "a" * 100 + "b\n", 60),
    _loop("unit_256", _paragraph(300)[:254] + "\n\n", 20),
    _loop("unit_1024", _paragraph(1100)[:1022] + "\n\n", 10),
    # in the thinking
    _loop("thinking_wait", "Wait, let me reconsider the problem from the start. ", 100, lane="thinking",
          prefix="The user wants the parser fixed. "),
    _loop("thinking_paragraph", PARAGRAPH_520, 15, lane="thinking"),
    _loop("thinking_blank_lines", "\n", 6000, lane="thinking"),
]

NEAR_MISSES = [Case(name, fixture(name)) for name in fixture_names()] + [
    Case("all_fixtures_in_one_answer", "".join(fixture(n) for n in fixture_names())),
    Case("counter_lines", _numbered(300, "Attempt {i} failed, retrying in 5 seconds.\n")),
    Case("changing_names", _numbered(300, "Let me check the file {name}_{i}.py again.\n")),
    Case("sentence_below_threshold", PROSE + "Let me check the file again.\n" * 30 + CODE),
    Case("dash_run_below_threshold", "Output:\n" + "-" * 4000 + "\nDone.\n"),
    Case("blank_lines_below_threshold", PROSE + "\n" * 3000 + PROSE),
    Case("code_line_below_threshold", CODE + "    x = step(x, key)\n" * 150 + CODE),
    Case("paragraph_seven_times", PROSE + PARAGRAPH_300 * 7 + CODE),
    Case("uuid_list", "".join(
        f"{(i * 2654435761) % 2**32:08x}-{i:04x}-4{i % 4096:03x}-a{(i * 7) % 4096:03x}-{(i * 40503) % 2**48:012x}\n"
        for i in range(300))),
    Case("fibonacci", ", ".join(str(f) for f in _fib(300)) + "\n"),
    Case("squares_table", "| n | n^2 |\n|---|-----|\n" + "".join(f"| {n} | {n * n} |\n" for n in range(400))),
    Case("dates", "".join(f"2024-{m:02d}-{d:02d}: backup ok\n" for m in range(1, 13) for d in range(1, 29))),
    Case("refrain_three_times", PROSE + ("We keep going, we keep going, we never stop.\n" * 3 + PARAGRAPH_300) * 3),
    Case("thinking_similar_steps",
         _numbered(120, "Step {i}: check whether {name} is in the list; it is not, so move on.\n")),
    Case("long_prose_and_code", (PROSE + CODE + PARAGRAPH_520 + CODE_BLOCK + PARAGRAPH_1000)
         + "".join(f"\nPart {i}:\n" + PARAGRAPH_300 + CODE for i in range(40))),
]


CASES = LOOPS + NEAR_MISSES
