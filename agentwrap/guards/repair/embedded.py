"""Tool calls written into the text: an incremental scanner over text deltas.

Theory of operation. `EmbeddedScanner.feed(text)` returns what is decided:
plain text (`str`) and extracted blocks (`Extracted`: the calls and the
exact source text they replace), in order; the concatenation of the
decided pieces' text is always a prefix of the input. Text streams as it
arrives. Only a run that may still be the start of a call is held:

- an *unconfirmed opening* is held while it is a prefix of some opening
  marker, and never past `max_hold_chars` characters (raised, if need be,
  to fit the longest opening a declared tool name makes, e.g. a 64-character
  MCP name); ordinary text is thus never delayed by more than that bound;
- a *confirmed* block is held until its closing marker, and never past
  `max_block_chars` (64 KiB): past that it is released as text;
- after a *weak* call (see below), following whitespace is held to see
  whether the message ends there.

The message's text ends with `finish()` (the stream's Stop, the end of the
stream, or a real tool call): blocks still open are parsed then, if their
format may end without its closer, else released as text.

Rules (a call is only ever a call of a declared function tool whose
arguments can be made schema-valid, see formats.py; anything else stays text,
byte for byte):

1. Strong markers, anywhere in the text (mid-line too): `<tool_call>`,
   `<function=`, `<function_calls>`, `<invoke name=`, DeepSeek's
   `<｜tool▁calls▁begin｜>` / `<｜tool▁call▁begin｜>` (also with an ASCII
   bar), `[TOOL_CALLS]`. Text before and after stays text.
2. Weak formats count only where nothing but whitespace (or other calls)
   follows them in the message ("tail rule"); one that more text follows
   is released as the text it was:
   - a fenced block (``` at the start of a line, info string empty, json,
     tool_call, tool or function) whose whole content is one object
     `{"name": <declared exactly>, "arguments"|"parameters": {...}}` with
     "name" its first key;
   - that object bare, as the whole text of the message so far (only
     whitespace before it);
   - an XML element at the start of a line whose tag is a declared tool's
     exact name and whose children are only whitespace-separated tags
     named after parameters of that tool's schema (`<Bash><command>ls
     </command></Bash>`).
3. Never inside: inline code (a backtick run up to the same-length run, or
   a blank line), a fenced code block that is not itself a fenced call,
   `<think>`/`<thinking>` regions.
4. An explanation that names a tool, shows JSON or XML in prose, or
   mentions a marker without a complete valid call after it is text.

Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import NamedTuple

from agentwrap.guards.repair.formats import DS, FENCE_INFOS, PARSERS, EmbeddedCall, Toolbox
from agentwrap.guards.repair.validate import properties_of

__all__ = ["EmbeddedScanner", "Extracted", "MAX_HOLD_CHARS", "MAX_BLOCK_CHARS"]

MAX_HOLD_CHARS = 64
MAX_BLOCK_CHARS = 64 * 1024

NO, MAYBE, YES = 0, 1, 2
_PLAIN, _OPEN, _BLOCK, _SPAN, _FENCE, _REGION = range(6)
_TRIGGER = re.compile(r"[<`\[]")
_TRIGGER_BLANK = re.compile(r"[<`\[{]")
_SPAN_STOP = re.compile(r"`+|\n")
_WS = " \t\r\n"
_JSON_IN_STRING = re.compile(r'[^"\\]*')
_JSON_OUTSIDE = re.compile(r'[^"{}\[\]]*')


@dataclass(slots=True)
class Extracted:
    """Calls found in the text, and the text (`raw`) they stand for."""

    calls: list[EmbeddedCall]
    raw: str
    fmt: str
    strong: bool = True


class _Opener(NamedTuple):
    fmt: str  # a formats.PARSERS key, or "region"
    tokens: tuple  # ("lit", s) | ("name", terminator) | ("ws",)
    closer: str  # "" when the closer depends on the name
    strong: bool
    line_start: bool = False


def _lt_openers() -> list[_Opener]:
    out = [
        _Opener("tool_call", (("lit", "<tool_call>"),), "</tool_call>", True),
        _Opener("function_calls", (("lit", "<function_calls>"),), "</function_calls>", True),
        _Opener("invoke", (("lit", "<invoke name="),), "</invoke>", True),
        _Opener("function", (("lit", "<function="),), "</function>", True),
    ]
    for bar in ("｜", "|"):
        calls_begin, calls_end = DS["calls_begin"].replace("｜", bar), DS["calls_end"].replace("｜", bar)
        call_begin, call_end = DS["call_begin"].replace("｜", bar), DS["call_end"].replace("｜", bar)
        out.append(_Opener("deepseek", (("lit", calls_begin),), calls_end, True))
        out.append(_Opener("deepseek", (("lit", call_begin),), call_end, True))
    for tag in ("think", "thinking"):
        out.append(_Opener("region", (("lit", f"<{tag}>"),), f"</{tag}>", True))
    out.append(_Opener("xml", (("lit", "<"), ("name", ">"), ("lit", ">")), "", False, True))
    return out


_LT = _lt_openers()
_BARE = _Opener("bare", (("lit", "{"), ("ws",), ("lit", '"name"'), ("ws",), ("lit", ":"), ("ws",), ("lit", '"'), ("name", '"'), ("lit", '"')), "", False)
_MISTRAL = _Opener("mistral", (("lit", "[TOOL_CALLS]"),), "", True)


def _partial(s: str, tokens: tuple, names: frozenset[str], prefixes: frozenset[str]) -> tuple[int, int, str]:
    """(NO | MAYBE | YES, end of the opening, name captured) for `s` against `tokens`."""
    pos, name, end = 0, "", len(s)
    for token in tokens:
        kind = token[0]
        if kind == "lit":
            lit = token[1]
            part = s[pos : pos + len(lit)]
            if not lit.startswith(part):
                return NO, 0, ""
            if len(part) < len(lit):
                return MAYBE, 0, ""
            pos += len(lit)
        elif kind == "ws":
            while pos < end and s[pos] in _WS:
                pos += 1
            if pos == end:
                return MAYBE, 0, ""
        else:
            stop = s.find(token[1], pos)
            if stop < 0:
                return (MAYBE if s[pos:] in prefixes else NO), 0, ""
            name = s[pos:stop]
            if name not in names:
                return NO, 0, ""
            pos = stop
    return YES, pos, name


class _Block:
    """A confirmed block being held: its format and how far its end was looked for."""

    __slots__ = ("opener", "body", "closer", "searched", "fence", "depth", "quote", "escape", "xml_key", "xml_pos", "props", "name")

    def __init__(self, opener: _Opener, body: int, closer: str, name: str = "", fence: int = 0) -> None:
        self.opener = opener
        self.body = body  # where the block's body starts in the held text
        self.closer = closer
        self.searched = body
        self.fence = fence  # backticks of a fenced block's opening
        self.depth = 0  # bare JSON: bracket depth so far
        self.quote = False
        self.escape = False
        self.xml_key = ""
        self.xml_pos = body
        self.props: frozenset[str] = frozenset()
        self.name = name


class EmbeddedScanner:
    """Finds tool calls in a message's text as it streams; see the module docstring."""

    def __init__(self, box: Toolbox, *, max_hold_chars: int = MAX_HOLD_CHARS, max_block_chars: int = MAX_BLOCK_CHARS) -> None:
        self.box = box
        self._names = frozenset(box.names)
        self._prefixes = frozenset(n[:k] for n in box.names for k in range(len(n) + 1))
        longest = max((len(n) for n in box.names), default=0)
        self.max_hold = max(max_hold_chars, longest + 32)
        self.max_block = max_block_chars
        self._buf = ""  # undecided text (a candidate, or a partial marker)
        self._mode = _PLAIN
        self._kind = ""  # what opened the candidate: < ` { [
        self._at_line = False  # the candidate began at the start of a line
        self._block: _Block | None = None
        self._ticks = 0  # inline code: the opening run; fence: its length
        self._region = ""  # the closer of a <think> region
        self._out: list[str | Extracted] = []
        self._tail: list[str | Extracted] = []  # held behind a weak call
        self.line_start = True  # only up to 3 spaces since the last newline
        self._indent = 0
        self.ws_line = False  # only whitespace since the last newline (inline code ends at a blank line)
        self.blank = True  # the message's text so far is whitespace
        self.quiet = False  # plain text, nothing held, message not blank: text without a trigger just passes
        self.lane_quiet = False  # as quiet, but in a fence, region or inline code too (see lane_ok)
        self.lane_span = False  # inline code is open: a run with a newline must be read

    # -- state -----------------------------------------------------------------

    @property
    def holding(self) -> bool:
        return bool(self._buf or self._tail)

    @property
    def idle(self) -> bool:
        """Nothing held and plain text (no inline code, fence or region open)."""
        return self._mode == _PLAIN and not self._buf and not self._tail

    @property
    def lane_ok(self) -> bool:
        """Whether text without a trigger character may pass unscanned (`passed`, `at_newline`,
        `mid_line`): nothing held, the message not blank (inline code takes it only without
        a newline: a blank line would end it). Also kept as `lane_quiet` / `lane_span`."""
        return self.lane_quiet

    def at_newline(self, spaces: int = 0) -> None:
        """Text that ends with a newline and `spaces` spaces went by unscanned (the message is
        not blank)."""
        self._indent, self.ws_line = spaces, True
        self.line_start = spaces <= 3

    def mid_line(self) -> None:
        """Text that ends with a visible character after its last newline went by unscanned
        (the message is not blank)."""
        self.line_start, self.ws_line = False, False

    def passed(self, text: str) -> None:
        """`text` went by unscanned (it holds no trigger character and the scanner was idle)."""
        self._advance(text)
        self._settle()

    def _settle(self) -> None:
        mode = self._mode
        idle = not self._buf and not self._tail and not self.blank
        self.quiet = idle and mode == _PLAIN
        self.lane_quiet = idle and mode != _OPEN and mode != _BLOCK
        self.lane_span = mode == _SPAN

    def _advance(self, text: str) -> None:
        if self.blank and text.strip(_WS):
            self.blank = False
        nl = text.rfind("\n")
        if nl < 0:
            if self.line_start:
                self._indent += len(text)
                self.line_start = self._indent <= 3 and not text.strip(" ")
            if self.ws_line and text.strip(_WS):
                self.ws_line = False
            return
        rest = text[nl + 1 :]
        self._indent = len(rest)
        self.line_start = len(rest) <= 3 and not rest.strip(" ")
        self.ws_line = not rest.strip(_WS)

    # -- output ----------------------------------------------------------------

    def _text(self, text: str) -> None:
        if not text:
            return
        self._advance(text)
        if self._tail:
            if not text.strip(_WS):
                self._tail.append(text)
                return
            self._release_tail(as_calls=False)
        out = self._out
        if out and type(out[-1]) is str:
            out[-1] += text
        else:
            out.append(text)

    def _calls(self, found: Extracted) -> None:
        self._advance(found.raw)
        self.blank = False
        if not found.strong or self._tail:
            self._tail.append(found)
        else:
            self._out.append(found)

    def _release_tail(self, as_calls: bool) -> None:
        tail, self._tail = self._tail, []
        for piece in tail:
            if type(piece) is str or as_calls or piece.strong:
                self._out.append(piece)
            else:
                self._out.append(piece.raw)

    # -- the stage interface -------------------------------------------------------

    def feed(self, text: str) -> list[str | Extracted]:
        """The pieces decided once `text` follows what came before."""
        self._buf += text
        self._run(False)
        self._settle()
        out, self._out = self._out, []
        return out

    def finish(self) -> list[str | Extracted]:
        """The end of the message's text: decide everything held. The scanner is then ready
        for more text (after a real tool call, say), which is not the message's start."""
        self._run(True)
        self._release_tail(as_calls=True)
        self._mode, self._block = _PLAIN, None
        self._settle()
        out, self._out = self._out, []
        return [p for p in out if p != ""]

    # -- the scanner ---------------------------------------------------------------

    def _run(self, final: bool) -> None:
        step = {_PLAIN: self._plain, _OPEN: self._open, _BLOCK: self._held_block, _SPAN: self._span, _FENCE: self._fence, _REGION: self._in_region}
        while self._buf:
            if not step[self._mode](final):
                return

    def _plain(self, final: bool) -> bool:
        buf = self._buf
        m = (_TRIGGER_BLANK if self.blank else _TRIGGER).search(buf)
        if m is None:
            self._buf = ""
            self._text(buf)
            return False
        i = m.start()
        if i:
            self._text(buf[:i])
        self._buf = buf[i:]
        self._kind = buf[i]
        self._at_line = self.line_start
        self._mode = _OPEN
        return True

    def _reject(self, n: int = 1, mode: int = _PLAIN) -> bool:
        """The held candidate is not one: its first `n` characters are text."""
        head, self._buf = self._buf[:n], self._buf[n:]
        self._mode = mode
        self._text(head)
        return True

    def _open(self, final: bool) -> bool:
        kind = self._kind
        if kind == "`":
            return self._ticks_open(final)
        if kind == "{":
            candidates = [_BARE] if self.blank else []
        elif kind == "[":
            candidates = [_MISTRAL]
        else:
            candidates = [o for o in _LT if self._at_line or not o.line_start]
        buf = self._buf
        maybe = False
        for opener in candidates:
            status, end, name = _partial(buf, opener.tokens, self._names, self._prefixes)
            if status == YES:
                return self._confirm(opener, end, name)
            maybe = maybe or status == MAYBE
        if maybe and not final and len(buf) <= self.max_hold:
            return False
        return self._reject()

    def _confirm(self, opener: _Opener, end: int, name: str) -> bool:
        if opener.fmt == "region":
            self._region = opener.closer
            self._mode = _REGION
            return self._reject(end, _REGION)
        closer = opener.closer or (f"</{name}>" if opener.fmt == "xml" else "")
        block = _Block(opener, end, closer, name)
        if opener.fmt == "xml":
            spec = self.box.specs[name]
            block.props = frozenset(properties_of(spec.parameters))
        if opener.fmt == "bare":
            block.searched = 0
        self._block = block
        self._mode = _BLOCK
        return True

    def _ticks_open(self, final: bool) -> bool:
        buf = self._buf
        run = len(buf) - len(buf.lstrip("`"))
        if run == len(buf) and not final:
            return False if run <= self.max_hold else self._reject(run, _FENCE if self._at_line and run >= 3 else _SPAN)
        if not (self._at_line and run >= 3):
            self._ticks = run
            return self._reject(run, _SPAN)
        self._ticks = run
        nl = buf.find("\n")
        line = buf[run:] if nl < 0 else buf[run:nl]
        info = line.strip(" \t\r").lower()
        if "`" in line or (nl < 0 and not any(i.startswith(info) for i in FENCE_INFOS)) or (nl >= 0 and info not in FENCE_INFOS):
            return self._reject(run, _FENCE)
        if nl < 0:
            if final or len(buf) > self.max_hold:
                return self._reject(run, _FENCE)
            return False
        status, end, name = _partial(buf[nl + 1 :].lstrip(_WS), _BARE.tokens, self._names, self._prefixes)
        if status == YES:
            self._block = _Block(_Opener("fenced", (), "", False), nl + 1, "", name, run)
            self._mode = _BLOCK
            return True
        if status == MAYBE and not final and len(buf) <= self.max_hold:
            return False
        return self._reject(nl + 1, _FENCE)

    # -- a confirmed block ---------------------------------------------------------

    def _held_block(self, final: bool) -> bool:
        block = self._block
        assert block is not None
        buf = self._buf
        end = self._block_end(block, buf, final)
        if end > 0:
            return self._close_block(buf[:end], True, end)
        if end == 0 and not final and len(buf) <= self.max_block:
            return False
        # Unfinished at the end of the message, too long, or not a call after all.
        fmt = block.opener.fmt
        if final and end == 0 and fmt not in ("xml", "fenced"):
            return self._close_block(buf, False, len(buf))
        self._buf = ""
        self._block = None
        self._mode = _FENCE if fmt == "fenced" else _PLAIN
        self._text(buf)
        return False

    def _close_block(self, raw: str, closed: bool, end: int) -> bool:
        block = self._block
        assert block is not None
        self._buf = self._buf[end:]
        self._block = None
        self._mode = _PLAIN
        calls = PARSERS[block.opener.fmt](raw, self.box, closed)
        if calls:
            self._calls(Extracted(calls, raw, block.opener.fmt, block.opener.strong))
        else:
            self._text(raw)
        return True

    def _block_end(self, block: _Block, buf: str, final: bool) -> int:
        """Where the block ends in `buf` (after its closer); 0 while it may still end; -1
        when it cannot be a call any more."""
        fmt = block.opener.fmt
        if block.closer:
            if fmt == "xml" and not self._xml_viable(block, buf):
                return -1
            i = buf.find(block.closer, max(block.searched, block.body))
            if i >= 0:
                return i + len(block.closer)
            block.searched = max(block.body, len(buf) - len(block.closer) + 1)
            return 0
        if fmt == "bare":
            return self._json_end(block, buf)
        if fmt == "fenced":
            return self._fence_end(block, buf, final)
        return 0  # mistral: to the end of the message

    def _json_end(self, block: _Block, buf: str) -> int:
        i, n = block.searched, len(buf)
        while i < n:
            if block.quote:
                i = _JSON_IN_STRING.match(buf, i).end()
                if i >= n:
                    break
                if buf[i] == "\\":
                    i += 2
                    continue
                block.quote = False
            else:
                i = _JSON_OUTSIDE.match(buf, i).end()
                if i >= n:
                    break
                ch = buf[i]
                if ch == '"':
                    block.quote = True
                elif ch in "{[":
                    block.depth += 1
                else:
                    block.depth -= 1
                    if block.depth <= 0:
                        return i + 1
            i += 1
        block.searched = min(i, n)
        return 0

    def _fence_end(self, block: _Block, buf: str, final: bool) -> int:
        fence = "`" * block.fence
        i = max(block.body, block.searched)
        while True:
            i = buf.find("\n", i)
            if i < 0:
                return 0
            line_end = buf.find("\n", i + 1)
            line = buf[i + 1 :] if line_end < 0 else buf[i + 1 : line_end]
            stripped = line.strip(" \t\r")
            if stripped.startswith(fence) and not stripped.strip("`") and len(line) - len(line.lstrip(" ")) <= 3:
                if line_end >= 0:
                    return line_end + 1
                if final:
                    return len(buf)
                block.searched = i
                return 0
            if line_end < 0:
                block.searched = i
                return 0
            i = line_end

    def _xml_viable(self, block: _Block, buf: str) -> bool:
        """Whether the held XML element can still be a call: whitespace-separated tags named
        after the tool's parameters, each closed, then the tool's own closing tag."""
        pos = block.xml_pos
        while True:
            if block.xml_key:
                close = f"</{block.xml_key}>"
                stop = buf.find(close, pos)
                if stop < 0:
                    block.xml_pos = max(pos, len(buf) - len(close) + 1)
                    return True
                pos, block.xml_key = stop + len(close), ""
                block.xml_pos = pos
                continue
            while pos < len(buf) and buf[pos] in _WS:
                pos += 1
            block.xml_pos = pos
            rest = buf[pos:]
            if not rest or rest.startswith(block.closer) or block.closer.startswith(rest):
                return True
            if rest[0] != "<":
                return False
            gt = rest.find(">")
            if gt < 0:
                return any(("<" + p).startswith(rest) for p in block.props) and len(rest) <= self.max_hold
            key = rest[1:gt]
            if key not in block.props:
                return False
            block.xml_key = key
            pos += gt + 1

    # -- regions where calls are never looked for ------------------------------------

    def _span(self, final: bool) -> bool:
        buf = self._buf
        m = _SPAN_STOP.search(buf)
        if m is None:
            self._buf = ""
            self._text(buf)
            return False
        if m.group() == "\n":
            blank_line = self.ws_line
            self._buf = buf[m.end() :]
            self._text(buf[: m.end()])
            if blank_line and not buf[: m.start()].strip(_WS):
                self._mode = _PLAIN
            return True
        if m.end() == len(buf) and not final:
            self._text(buf[: m.start()])
            self._buf = buf[m.start() :]
            return False
        self._buf = buf[m.end() :]
        self._text(buf[: m.end()])
        if len(m.group()) == self._ticks:
            self._mode = _PLAIN
        return True

    def _fence(self, final: bool) -> bool:
        buf = self._buf
        if self.line_start:
            nl = buf.find("\n")
            line = buf if nl < 0 else buf[:nl]
            body = line.strip(" \t\r")
            if body.startswith("`") and not body.strip("`") and len(body) >= self._ticks and len(line) - len(line.lstrip(" ")) <= 3:
                if nl >= 0 or final:
                    self._buf = buf[len(line) :]
                    self._mode = _PLAIN
                    self._text(line)
                    return True
                return False
            if nl < 0 and not body.strip("`") and len(line) <= self.max_hold and not final:
                return False  # may become the closing fence
        nl = buf.find("\n")
        if nl < 0:
            self._buf = ""
            self._text(buf)
            return False
        self._buf = buf[nl + 1 :]
        self._text(buf[: nl + 1])
        return True

    def _in_region(self, final: bool) -> bool:
        buf = self._buf
        closer = self._region
        i = buf.find(closer)
        if i >= 0:
            self._buf = buf[i + len(closer) :]
            self._mode = _PLAIN
            self._text(buf[: i + len(closer)])
            return True
        lt = buf.rfind("<")
        if lt >= 0 and closer.startswith(buf[lt:]) and not final:
            self._text(buf[:lt])
            self._buf = buf[lt:]
            return False
        self._buf = ""
        self._text(buf)
        return False
