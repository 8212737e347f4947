"""The text lane: translating a stream's plain text deltas as bytes.

Theory of operation. Most events of a streamed answer are one shape: a piece
of text, wrapped in the same JSON every time (Chat: the same id, model and
choice; Anthropic: the same block index). The general path
(`SseParser -> StreamDecoder -> _Adapter -> StreamEncoder`) decodes each
one into a `TextDelta` and encodes it again, ~6 us per event. The lane does
the same work on bytes:

- `learn` takes one event the general path has already decoded to exactly one
  `TextDelta` and turns its bytes into a *template*: the event with the text's
  JSON string literal cut out, and the values of the keys the decoder ignores
  once the stream is under way (`volatile`: ids, `created`, sequence numbers,
  OpenAI's `obfuscation` padding) left open. The template is proved before it
  is used: the event re-parsed with a marker literal in place of the text must
  equal the original with only the text changed, so any string literal in
  that place means the same event with another text.
- `Template.scan` matches consecutive whole events against the compiled
  template and returns their literals, still JSON-escaped. The encoder puts
  each literal into its own per-token event unchanged (a JSON string literal
  is valid in any JSON document), and one `json.loads` of all of them
  validates UTF-8 and escapes and gives the texts the encoder keeps.

The translator uses the lane only where it is exact: the decoder says its
state makes such an event a plain `TextDelta` (`lane_ready`), and the encoder
says its open block takes text (`text_run` returns None otherwise). Anything
else, including an event the template does not match byte for byte, takes the
general path. The compiled template does not name the response, so the same
model on the same server reuses it (`re`'s own cache) across requests.
Sans-IO.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

__all__ = ["Template", "learn", "LITERAL"]

# One JSON string literal: no raw control characters, only valid escapes.
LITERAL = rb'"[^"\\\x00-\x1f]*(?:\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4})[^"\\\x00-\x1f]*)*"'
_LITERAL = re.compile(LITERAL)
# A value left open in the template: a string without escapes, or a number.
_HOLE = rb'(?:"[^"\\\x00-\x1f]*"|-?[0-9][0-9.eE+-]*)'
_MARK = '"\\u0001lane\\u0002"'
_MARK_TEXT = "\x01lane\x02"

Locate = Callable[[Any], "tuple[dict, str] | None"]


class Template:
    """A compiled event template; see the module docstring."""

    __slots__ = ("_match",)

    def __init__(self, pattern: re.Pattern[bytes]) -> None:
        self._match = pattern.match

    def scan(self, data: bytes, pos: int = 0) -> tuple[list[bytes], int]:
        """The literals of the whole events matching from `pos` on, and where the matching stopped."""
        match = self._match
        literals: list[bytes] = []
        add = literals.append
        while True:
            m = match(data, pos)
            if m is None:
                return literals, pos
            add(m[1])
            pos = m.end()


def learn(event: bytes, text: str, locate: Locate, volatile: tuple[str, ...] = ()) -> Template | None:
    """A template from one event that decoded to exactly `TextDelta(text)`, or None.

    `event` is the event's canonical bytes (`[event: NAME\\n]data: JSON\\n\\n`);
    `locate(parsed JSON)` returns the (object, key) holding the text, or None
    when the JSON is not the decoder's plain-text shape.
    """
    head, sep, rest = event.partition(b"data: ")
    if not sep or not rest.endswith(b"\n\n") or b"\n" in rest[:-2]:
        return None
    body = rest[:-2]
    try:
        original = json.loads(body)
    except ValueError:
        return None
    where = locate(original)
    if where is None or where[0].get(where[1]) != text:
        return None
    for cut in _candidates(body, where[1]):
        start, end = cut
        try:
            marked = json.loads(body[:start].decode() + _MARK + body[end:].decode())
        except ValueError:
            continue
        spot = locate(marked)
        if spot is None or spot[0].get(spot[1]) != _MARK_TEXT:
            continue
        spot[0][spot[1]] = text
        if marked != original:
            continue
        source = _open(head + sep + body[:start], volatile) + b"(" + LITERAL + b")" + _open(body[end:], volatile) + re.escape(b"\n\n")
        return Template(re.compile(source))
    return None


def _candidates(body: bytes, key: str) -> list[tuple[int, int]]:
    """(start, end) of each string literal that is the value of `key` in `body`."""
    needle = b'"' + key.encode() + b'":'
    out = []
    at = body.find(needle)
    while at >= 0:
        start = at + len(needle)
        m = _LITERAL.match(body, start)
        if m is not None:
            out.append((start, m.end()))
        at = body.find(needle, at + 1)
    return out


def _open(fixed: bytes, volatile: tuple[str, ...]) -> bytes:
    """`fixed` as a regex, with the values of `volatile` keys matching any value of their kind."""
    if not volatile:
        return re.escape(fixed)
    keys = b"|".join(re.escape(k.encode()) for k in volatile)
    holes = re.compile(rb'("(?:' + keys + rb')":)(' + _HOLE + rb")")
    out: list[bytes] = []
    pos = 0
    for m in holes.finditer(fixed):
        out.append(re.escape(fixed[pos : m.end(1)]))
        out.append(_HOLE)
        pos = m.end(2)
    out.append(re.escape(fixed[pos:]))
    return b"".join(out)


_scanstring = json.decoder.scanstring  # C, as _scan_once
_scan_once = json.JSONDecoder().scan_once  # the C scanner: json.loads' Python layers cost more than the work


def texts(literals: list[bytes]) -> list[str] | None:
    """The texts of `literals` (one scan of them all), or None if any is not valid JSON/UTF-8."""
    try:
        if len(literals) == 1:
            literal = literals[0].decode()
            text, end = _scanstring(literal, 1)
            return [text] if end == len(literal) else None
        joined = (b"[" + b",".join(literals) + b"]").decode()
        values, end = _scan_once(joined, 0)
    except (ValueError, StopIteration):  # UnicodeDecodeError and JSONDecodeError included
        return None
    return values if end == len(joined) and len(values) == len(literals) else None
