"""Mask the parts of tool output that change from run to run.

Two runs of the same command rarely print byte-identical output: clocks,
durations, process ids, random temp directories and ids differ. To tell "the
same result again" from "a new result", the tool-loop guard compares results
after `mask_volatile`, which replaces each such part with a fixed marker
(`<time>`, `<duration>`, `<pid>`, `<id>`, `<uuid>`, `<hex>`, `<tmp>`) and
drops terminal escape codes. The rules, in the order they apply:

1. ANSI escape sequences (CSI colours and cursor moves, OSC titles and
   links) are removed;
2. UUIDs become `<uuid>`;
3. temp paths: the first component under `/tmp`, `/var/tmp`, `/dev/shm`,
   macOS `/var/folders/../T` or Windows `...\\AppData\\Local\\Temp` becomes
   `<tmp>` when it looks generated (starts with `tmp`, or holds a digit:
   `/tmp/tmpk2x9_a/out.txt` -> `/tmp/<tmp>/out.txt`); `pytest-12` -> `pytest-<n>`;
4. dates and times: ISO 8601 (`2026-11-26`, `2026-11-26T10:00:00.123Z`),
   month-name dates (`Thu Nov 26`, `November 26, 2026`, `26 Nov 2026`),
   clock times (`10:00`, `10:00:00.5`; not `file.py:12:34`, which is a
   position), Unix epoch seconds or milliseconds (2017-2033) become `<time>`;
5. labelled ids (`Chunk ID: e99b75`, `session ID 12`, `request_id=...`)
   become `LABEL <id>`;
6. process ids where labelled (`PID 4242`, `Process Group PGID: 7146`,
   `pids: 1, 2`), in job notation (`[1] 4242`) or syslog style
   (`sshd[4242]:`) become `<pid>`;
7. hex: memory addresses (`0x7f3a...`) become `0x<hex>`, other runs of 12 or
   more hex digits mixing letters and digits (hashes, object ids) `<hex>`;
8. durations (`1.23s`, `45ms`, `1.2 ms`, `0m0.003s`, `1h2m`, `3 seconds`, `2 min`)
   become `<duration>`;
9. trailing spaces on each line and blank space at both ends are dropped.

Masking errs towards keeping text: a part that merely might be volatile (a
7-digit git hash, a plain number) stays, because two different results
masked into the same text could stop an agent that was making progress.

Pure: text in, text out.
"""

from __future__ import annotations

import re

__all__ = ["mask_volatile", "UUID_PATTERN", "TEMP_ROOT"]

_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")
UUID_PATTERN = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"  # also replay's
_UUID = re.compile(rf"\b{UUID_PATTERN}\b")

# A generated temp name: Python's tempfile ("tmpk2x9_a8"), mktemp ("tmp.Xa81b2"),
# or any name with a digit in it (prefix + random suffix).
_TMP_NAME = r"(?:tmp[\w.-]*|[\w.-]*\d[\w.-]*)"
# The temporary roots of POSIX systems and macOS (one home: replay matching uses it too).
TEMP_ROOT = r"(?:/private)?(?:/var/folders/[\w-]+/[\w-]+/T|/tmp|/var/tmp|/dev/shm)"
_TMP_POSIX = re.compile(r"(?<![\w/])(" + TEMP_ROOT + r"/)" + _TMP_NAME)
_TMP_WINDOWS = re.compile(r"(?i)(\\AppData\\Local\\Temp\\)" + _TMP_NAME)
_PYTEST_DIR = re.compile(r"\bpytest-\d+\b")

_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)[a-z]*\.?"
_WEEKDAY = r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*,?"
_ISO_TIME = re.compile(
    r"\b\d{4}-[01]\d-[0-3]\d(?:[T ][0-2]\d:[0-5]\d(?::[0-5]\d(?:[.,]\d+)?)?(?:\s?(?:Z|[+-][0-2]\d:?[0-5]\d|UTC|GMT)\b)?)?"
)
_NAMED_DATE = re.compile(
    rf"\b(?:{_WEEKDAY}\s+)?(?:{_MONTH}\s+[0-3]?\d(?:st|nd|rd|th)?\b(?:,?\s+\d{{4}}\b)?|[0-3]?\d\s+{_MONTH}\s+\d{{4}}\b)"
)
# hh:mm[:ss[.fff]] [am|pm]; not when it is part of "path:line:col".
_CLOCK = re.compile(r"(?<![\w:.])(?:[01]?\d|2[0-3]):[0-5]\d(?::[0-5]\d(?:[.,]\d+)?)?(?:\s?[AaPp][Mm]\b)?(?![\w:])")
_EPOCH = re.compile(r"(?<![\w.])1[5-9]\d{8}(?:\d{3}|\.\d+)?(?![\w.])")

_LABELLED_ID = re.compile(
    r"(?i)\b((?:chunk|session|cell|request|trace|span|correlation|container|execution|thread|run|job|task)[ _-]?id)\b"
    r"(\s*(?:[:=#]\s*)?)[\w.-]+"
)
_PID = re.compile(r"(?i)\b(p?pids?|pgid|tgid|process id)\b(\s*(?:[:=#]\s*)?)\d+(?:\s*,\s*\d+)*")
_JOB_PID = re.compile(r"(?m)^(\[\d+\]\+?\s+)\d+\s*$")
_SYSLOG_PID = re.compile(r"(?<=[\w.-])\[\d+\]:")

_ADDRESS = re.compile(r"\b0x[0-9a-fA-F]{6,}\b")
_HEX = re.compile(r"(?<![\w-])(?=[0-9a-fA-F]*[a-fA-F])(?=[0-9a-fA-F]*\d)[0-9a-fA-F]{12,}(?![\w-])")

_UNIT = r"(?:ns|us|µs|μs|ms|s|m|h)"
_DURATION = re.compile(
    rf"(?<![\w.])\d+(?:\.\d+)?{_UNIT}(?:\d+(?:\.\d+)?{_UNIT})*\b"
    r"|(?<![\w.])\d+(?:\.\d+)?\s?(?:ns|us|µs|μs|ms|nanoseconds?|microseconds?|milliseconds?|seconds?|secs?|minutes?|mins?|hours?|hrs?)\b"
)


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# Looser forms of the patterns below that open with a digit, which the engine
# finds by a fast scan: a text without a match needs no full pass.
_CLOCK_HINT = re.compile(r"\d:[0-5]\d")
_EPOCH_HINT = re.compile(r"1[5-9]\d{8}")
_HEX_HINT = re.compile(r"[0-9a-fA-F]{12}")
_DURATION_HINT = re.compile(r"\d\s?(?:[nuµμm]?s|[mh]|sec|min|hour|hr|nano|micro|milli)")


def _tmp(match: re.Match) -> str:
    return match.group(1) + "<tmp>"


# (does the text need this rule?, pattern, replacement), in the order of the
# module docstring. The checks are substring tests or hint searches (fast
# scans in C) that every match of the pattern must pass; they spare most
# texts most passes, since Python's regex engine cannot skip ahead to a
# pattern that opens with a lookbehind or a \b, and each such pass costs
# ~20-80 ns per character.
_RULES: tuple = (
    (lambda t, low: "\x1b" in t, _ANSI, ""),
    (lambda t, low: "-" in t, _UUID, "<uuid>"),
    (lambda t, low: "/tmp/" in t or "/var/" in t or "/dev/shm/" in t, _TMP_POSIX, _tmp),
    (lambda t, low: "\\appdata\\" in low, _TMP_WINDOWS, _tmp),
    (lambda t, low: "pytest-" in t, _PYTEST_DIR, "pytest-<n>"),
    (lambda t, low: "-" in t, _ISO_TIME, "<time>"),
    (lambda t, low: any(m in t for m in _MONTHS), _NAMED_DATE, "<time>"),
    (lambda t, low: _CLOCK_HINT.search(t) is not None, _CLOCK, "<time>"),
    (lambda t, low: _EPOCH_HINT.search(t) is not None, _EPOCH, "<time>"),
    (lambda t, low: "id" in low, _LABELLED_ID, r"\1\2<id>"),
    (lambda t, low: "pid" in low or "pgid" in low or "tgid" in low or "process id" in low, _PID, r"\1\2<pid>"),
    (lambda t, low: "[" in t, _JOB_PID, r"\1<pid>"),
    (lambda t, low: "]:" in t, _SYSLOG_PID, "[<pid>]:"),
    (lambda t, low: "0x" in t, _ADDRESS, "0x<hex>"),
    (lambda t, low: _HEX_HINT.search(t) is not None, _HEX, "<hex>"),
    (lambda t, low: _DURATION_HINT.search(t) is not None, _DURATION, "<duration>"),
)


def mask_volatile(text: str) -> str:
    """`text` with its run-to-run volatile parts replaced by fixed markers (rules in the module docstring)."""
    low = text.lower()  # for the case-insensitive checks; the markers add nothing they look for
    for needed, pattern, replacement in _RULES:
        if needed(text, low):
            text = pattern.sub(replacement, text)
    # Per line, not with a regex: "[ \t]+$" retries every position of a long run of spaces.
    return "\n".join(line.rstrip(" \t") for line in text.split("\n")).strip()
