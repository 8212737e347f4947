"""Masking run-to-run volatile parts of tool output."""

from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agentwrap.guards.volatile import mask_volatile


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        # Codex classic exec_command output (0.169)
        (
            "Chunk ID: e99b75\nWall time: 0.0000 seconds\nProcess exited with code 0\nOriginal token count: 0\nOutput:\n",
            "Chunk ID: <id>\nWall time: <duration>\nProcess exited with code 0\nOriginal token count: 0\nOutput:",
        ),
        ("Process running with session ID 31337", "Process running with session ID <id>"),
        ("Chunk ID: abcdef", "Chunk ID: <id>"),
        # Codex code mode
        ("Script completed\nWall time 0.1 seconds\nOutput:\n", "Script completed\nWall time <duration>\nOutput:"),
        ("Script running with cell ID 7", "Script running with cell ID <id>"),
        # Gemini CLI run_shell_command
        ("Output: (empty)\nProcess Group PGID: 7146", "Output: (empty)\nProcess Group PGID: <pid>"),
        ("Background PIDs: 4242, 4243", "Background PIDs: <pid>"),
        # ANSI
        ("\x1b[1;31mFAILED\x1b[0m x", "FAILED x"),
        ("\x1b]0;title\x07\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\ done\x1b[2K", "link done"),
        # dates and times
        ("at 2026-11-26T10:00:00.123Z ok", "at <time> ok"),
        ("at 2026-11-26 10:00:00+01:00 ok", "at <time> ok"),
        ("on 2026-11-26.", "on <time>."),
        ("Thu Nov 26 10:00:00 UTC 2026", "<time> <time> UTC 2026"),
        ("Today's date is Thursday, November 26, 2026.", "Today's date is <time>."),
        ("Date: 26 Nov 2026", "Date: <time>"),
        ("-rw-r--r-- 1 me me 12 Nov 26 09:41 made.txt", "-rw-r--r-- 1 me me 12 <time> <time> made.txt"),
        ("finished at 3:04:05 PM", "finished at <time>"),
        ("mtime 1795669097 / 1795669097202 ms", "mtime <time> / <time> ms"),
        # durations
        ("1 passed in 0.42s", "1 passed in <duration>"),
        ("took 45ms (p99 1.2 ms) and 3 µs", "took <duration> (p99 <duration>) and <duration>"),
        ("real\t0m0.003s\nuser\t1m2.5s", "real\t<duration>\nuser\t<duration>"),
        ("elapsed 1h2m3s", "elapsed <duration>"),
        ("waited 3 seconds, then 2 min, then 1.5 hours", "waited <duration>, then <duration>, then <duration>"),
        # ids
        ("id 550e8400-e29b-41d4-a716-446655440000 x", "id <uuid> x"),
        ("commit 3f786850e387550fdab836ed7e6dc881de23001b", "commit <hex>"),
        ("<Foo object at 0x7f3a2b1c9d90>", "<Foo object at 0x<hex>>"),
        ("request_id=req_abc123 trace-id: 00f067aa0ba902b7", "request_id=<id> trace-id: <id>"),
        # PIDs
        ("[1] 12345", "[1] <pid>"),
        ("sshd[4242]: session opened", "sshd[<pid>]: session opened"),
        ("killed (pid 99) ppid=1", "killed (pid <pid>) ppid=<pid>"),
        # temp paths
        ("wrote /tmp/tmpk2x9_a8/out.txt", "wrote /tmp/<tmp>/out.txt"),
        ("dir /tmp/tmp.Xa81b2Cq", "dir /tmp/<tmp>"),
        ("wrote /tmp/tmpabcdef/out.txt", "wrote /tmp/<tmp>/out.txt"),
        ("/var/folders/zz/zyxvpxvq6csfxvn_n0000000000000/T/tmpab_cd/f", "/var/folders/zz/zyxvpxvq6csfxvn_n0000000000000/T/<tmp>/f"),
        ("C:\\Users\\me\\AppData\\Local\\Temp\\tmp_ab12\\x", "C:\\Users\\me\\AppData\\Local\\Temp\\<tmp>\\x"),
        ("/tmp/pytest-of-me/pytest-12/test_a0", "/tmp/pytest-of-me/pytest-<n>/test_a0"),
        # trailing space
        ("a   \nb\t\n\n", "a\nb"),
    ],
)
def test_masks(text: str, masked: str) -> None:
    assert mask_volatile(text) == masked


@pytest.mark.parametrize(
    "text",
    [
        "src/main.py:12:34: E501 line too long",
        "version 1.2.3, 10 items, exit code 2",
        "commit 3f78685 (a short hash stays)",
        "/tmp/research/notes.md",
        "deadbeefcafe",  # hex letters only: a word, not an id
        "12345678901234",  # digits only: a number, not an id
        "def f(x): return x",
        "5 files changed, 3 insertions(+)",
    ],
)
def test_keeps_what_is_not_volatile(text: str) -> None:
    assert mask_volatile(text) == text


@given(st.text(max_size=300) | st.lists(st.sampled_from(["2026-11-26", "10:00", "pid ", "4242", "1.5s", " ", "\n", "/tmp/", "tmp", "x", ":", "0x", "ab12", "\x1b[", "m", "ID: "])).map("".join))
def test_any_text_masks_the_same_way_every_time(text: str) -> None:
    out = mask_volatile(text)
    assert isinstance(out, str) and mask_volatile(text) == out and "\x1b[0m" not in out


ADVERSARIAL_CHARS = 50_000


@pytest.mark.parametrize(
    "unit",
    [" ", "\t", "a-", "ab" * 10 + "-", "a.", "1.", "1 ", "1.5 ", "1s", "id:", "pid ", "Mon, ", "Jan 1 ", "\x1b[0;", "/tmp/a", "[1] ", "0x"],
)
def test_time_is_linear_on_adversarial_text(unit: str) -> None:
    # Each rule is linear: a regex that backtracks over a long run (such as
    # "[ \t]+$" over a run of spaces that is not at the end of a line) takes
    # minutes on this input, where a linear one takes well under a second.
    text = unit * (ADVERSARIAL_CHARS // len(unit)) + "!"
    start = time.perf_counter()
    mask_volatile(text)
    assert time.perf_counter() - start < 3.0
