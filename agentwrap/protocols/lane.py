"""The text lane: translating a stream's plain text deltas as bytes.

Theory of operation. Most events of a streamed answer are one shape: a piece
of text, wrapped in the same JSON every time (Chat: the same id, model and
choice; Anthropic: the same block index). The general path
(`SseParser -> StreamDecoder -> Adapter -> StreamEncoder`) decodes each
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
  is valid in any JSON document). The template's literal pattern admits only
  valid escapes, one `decode()` of the run checks the UTF-8, and the encoder's
  block keeps the literals as its text, decoded only when read (the Responses
  encoder's closing events).

Gemini chunks also carry the usage so far: their template keeps the shape
of the `usageMetadata` object (keys, nesting) and leaves its numbers open
(group "u"), so a match is valid JSON; the usage objects a run held back are
merged, as the encoder would merge them one by one, before the next event of
the general path or the end. A stream whose shape changes (a cache count
appears) goes to the general path and the template is learned again.
Templates use the stream's own line ends (LF or CRLF).

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
LITERAL = rb'"[^"\\\x00-\x1f]*+(?:\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4})[^"\\\x00-\x1f]*+)*+"'
_LITERAL_STR = re.compile(LITERAL.decode())
# A value left open in the template: a string without escapes, or a number.
_HOLE = rb'(?:"[^"\\\x00-\x1f]*"|-?[0-9][0-9.eE+-]*)'
_MARK = '"\\u0001lane\\u0002"'
_MARK_TEXT = "\x01lane\x02"

Locate = Callable[[Any], "tuple[dict, str] | None"]


class Template:
    """A compiled event template; see the module docstring."""

    __slots__ = ("_match", "_full", "has_usage")

    def __init__(self, pattern: re.Pattern[bytes], has_usage: bool) -> None:
        self._match = pattern.match
        self._full = pattern.fullmatch
        self.has_usage = has_usage  # group "u" holds the event's usage object

    def matches(self, event: bytes) -> bool:
        """Whether `event` (one whole event) is of this template's kind."""
        m = self._match(event)
        return m is not None and m.end() == len(event)

    def one(self, data: bytes) -> re.Match[bytes] | None:
        """The match of `data` if it is exactly one event of this template (groups "t", "u")."""
        return self._full(data)

    def scan(self, data: bytes, pos: int, usages: list[bytes] | None = None, limit: int = -1) -> tuple[list[bytes], int]:
        """The literals of the whole events matching from `pos` on (at most `limit`), and where
        the matching stopped. With `usages`, the usage object of each event is appended to it."""
        match = self._match
        literals: list[bytes] = []
        add = literals.append
        if usages is None:
            while limit:
                m = match(data, pos)
                if m is None:
                    break
                add(m["t"])
                pos = m.end()
                limit -= 1
            return literals, pos
        while limit:
            m = match(data, pos)
            if m is None:
                break
            add(m["t"])
            usages.append(m["u"])
            pos = m.end()
            limit -= 1
        return literals, pos


def learn(event: bytes, text: str, locate: Locate, volatile: tuple[str, ...] = (), usage_key: str | None = None,
          eol: bytes = b"\n") -> Template | None:
    """A template from one event that decoded to `TextDelta(text)` (and, with `usage_key`,
    the usage its object at that key carries), or None.

    `event` is the event's canonical bytes (`[event: NAME<eol>]data: JSON<eol><eol>`);
    `locate(parsed JSON)` returns the (object, key) holding the text, or None
    when the JSON is not the decoder's plain-text shape.
    """
    head, sep, rest = event.partition(b"data: ")
    end_mark = eol + eol
    if not sep or not rest.endswith(end_mark) or b"\n" in rest[: -len(end_mark)] or b"\r" in rest[: -len(end_mark)]:
        return None
    try:
        body = rest[: -len(end_mark)].decode()
        original = json.loads(body)
    except ValueError:
        return None
    where = locate(original)
    if where is None or where[0].get(where[1]) != text:
        return None
    usage_at = None
    if usage_key is not None:
        usage_at = _object_at(body, usage_key)
        if usage_at is None:
            return None
    for start, end in _candidates(body, where[1]):
        holes = sorted([(start, end, "t"), *([(*usage_at, "u")] if usage_at else [])])
        if len(holes) == 2 and holes[0][1] > holes[1][0]:
            continue  # overlapping: the text inside the usage object cannot be
        try:
            marked = json.loads(body[:start] + _MARK + body[end:])
        except ValueError:
            continue
        spot = locate(marked)
        if spot is None or spot[0].get(spot[1]) != _MARK_TEXT:
            continue
        spot[0][spot[1]] = text
        if marked != original:
            continue
        pieces, pos = [], 0
        for hole_start, hole_end, kind in holes:
            pieces.append(_open(body[pos:hole_start].encode(), volatile))
            if kind == "t":
                pieces.append(b"(?P<t>" + LITERAL + b")")
            else:
                pieces.append(b"(?P<u>" + _shape(body[hole_start:hole_end]) + b")")
            pos = hole_end
        pieces.append(_open(body[pos:].encode(), volatile))
        source = re.escape(head + sep) + b"".join(pieces) + re.escape(end_mark)
        return Template(re.compile(source), usage_at is not None)
    return None


# JSON tokens of a usage object: its strings stay as they are, its whole numbers are left
# open (any whole number is valid JSON there), so a match is valid JSON of the same shape.
_TOKENS = re.compile(r'("(?:[^"\\]|\\.)*")|(-?[0-9][0-9.eE+-]*)')
_NUMBER = rb"(?:[1-9][0-9]*+|0)"  # counts are whole numbers; any other takes the general path


def _shape(fixed: str) -> bytes:
    """A usage object as a regex: the same keys and nesting, any numbers."""
    out: list[bytes] = []
    pos = 0
    for m in _TOKENS.finditer(fixed):
        if m.group(2) is not None:
            out.append(re.escape(fixed[pos : m.start()].encode()))
            out.append(_NUMBER)
            pos = m.end()
    out.append(re.escape(fixed[pos:].encode()))
    return b"".join(out)


_OBJECT_START = re.compile(r"\s*\{")
_json_decoder = json.JSONDecoder()


def _object_at(body: str, key: str) -> tuple[int, int] | None:
    """(start, end) of the object that is the value of the first `key` in `body`."""
    at = body.find(f'"{key}":')
    if at < 0:
        return None
    m = _OBJECT_START.match(body, at + len(key) + 3)
    if m is None:
        return None
    start = m.end() - 1
    try:
        _, end = _json_decoder.raw_decode(body, start)
    except ValueError:
        return None
    return start, end


def _candidates(body: str, key: str) -> list[tuple[int, int]]:
    """(start, end) of each string literal that is the value of `key` in `body`."""
    needle = f'"{key}":'
    out = []
    at = body.find(needle)
    while at >= 0:
        start = at + len(needle)
        while body[start : start + 1] == " ":
            start += 1
        m = _LITERAL_STR.match(body, start)
        if m is not None:
            out.append((start, m.end()))
        at = body.find(needle, at + 1)
    return out


def _open(fixed: bytes, volatile: tuple[str, ...]) -> bytes:
    """`fixed` as a regex, with the values of `volatile` keys matching any value of their kind."""
    if not volatile:
        return re.escape(fixed)
    keys = b"|".join(re.escape(k.encode()) for k in volatile)
    holes = re.compile(rb'("(?:' + keys + rb')": ?)(' + _HOLE + rb")")
    out: list[bytes] = []
    pos = 0
    for m in holes.finditer(fixed):
        out.append(re.escape(fixed[pos : m.end(1)]))
        out.append(_HOLE)
        pos = m.end(2)
    out.append(re.escape(fixed[pos:]))
    return b"".join(out)


