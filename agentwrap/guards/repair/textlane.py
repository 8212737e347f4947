"""The text lane for the repair guard: runs of text deltas judged on their escaped bytes.

The pass-through tap hands text runs over as JSON string literals, still
escaped (`b'"hello \\u00e9"'`), and decoding them is what the lane saves.
`take(scanner, literals)` says whether the run may go by undecoded: the
scanner holds nothing and is not reading the message's start, and no
literal holds a character a call could start at (`<`, a backtick, `[`,
DeepSeek's U+FF5C bar; raw or `\\u`-escaped). If so, it moves the scanner's
line state on as feeding the text would (fences and XML-style calls must
start a line): from the bytes of the last literal, decoding only a run that
ends in spaces after its last newline.

Pure: no I/O.
"""

from __future__ import annotations

import json
import re

from agentwrap.guards.repair.embedded import EmbeddedScanner

__all__ = ["take", "LANE_GATE"]

# A cheap character class first; the exact pattern only for a literal with an escape or a U+Fxxx.
_MAYBE = re.compile(rb"[<`\[\\\xef]")
_TRIGGER = re.compile(rb"[<`\[]|\xef\xbd\x9c|\\u(?:003[cC]|0060|005[bB]|[fF][fF]5[cC])")
LANE_GATE = _TRIGGER.pattern  # what the filter chain may not keep from the guard (filters.py, the deferred lane)


def take(scanner: EmbeddedScanner, literals: list[bytes]) -> bool:
    """Whether `literals` may pass undecoded; if so the scanner has taken them into its state."""
    if not scanner.lane_quiet:
        return False
    joined = literals[0] if len(literals) == 1 else b"".join(literals)
    if (_MAYBE.search(joined) and _TRIGGER.search(joined)) or (scanner.lane_span and b"\\n" in joined):
        return False  # inline code ends at a blank line: a run with a newline is read
    last = literals[-1]
    if len(last) > 2 and last[-2] != 0x20 and last[-3] != 0x5C and last[-7:-5] != b"\\u":
        scanner.line_start = scanner.ws_line = False  # ends with a visible character, not an escape
    elif b"\\" not in joined and joined.strip(b'" '):
        scanner.line_start = scanner.ws_line = False  # no escape (so no newline), and something visible
    else:
        _line_state(scanner, literals)
    return True


def _line_state(scanner: EmbeddedScanner, literals: list[bytes]) -> None:
    n = len(literals) - 1
    while n > 0 and literals[n] == b'""':
        n -= 1
    last = literals[n]
    nl = last.rfind(b"\\n")
    if nl >= 0 and _escaped(last, nl):
        segment = last[nl + 2 : -1]
        if not segment:
            scanner.at_newline()
            return
        if not segment.strip(b" "):
            scanner.at_newline(len(segment))
            return
    else:
        segment = last[1:-1]  # no newline in it (an escaped backslash before an "n" is text)
    if segment.strip(b" "):
        scanner.mid_line()
        return
    # Spaces only (or nothing) after the last newline: the line state depends on what
    # came before, so decode back to the literal holding the run's last newline.
    start = n
    while start > 0 and b"\\n" not in literals[start]:
        start -= 1
    scanner.passed("".join(json.loads(b"[" + b",".join(literals[start : n + 1]) + b"]")))


def _escaped(literal: bytes, pos: int) -> bool:
    """Whether the backslash at `pos` starts an escape (an even number of backslashes before it)."""
    n = pos
    while n > 0 and literal[n - 1] == 0x5C:
        n -= 1
    return (pos - n) % 2 == 0
