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

The formats and their rules are written once, in docs/tool-repair.md
("Formats"). In short: strong markers (`<tool_call>`, `<function=`,
`<invoke name=`, DeepSeek's and Kimi's markup, `[TOOL_CALLS]`; markers.py)
count anywhere, if the block's body starts as its format's does within the
hold bound (markers.HEADS); weak formats (a fenced call object, a bare one
as the whole message, an XML element named after a declared tool at a
line start) count only where nothing but whitespace or other calls follows
them in the message (the "tail rule"); nothing counts inside inline code,
a fenced code block that is not itself a call, or a `<think>`/`<thinking>`
region. A call is only ever a call of a declared function tool whose
arguments can be made schema-valid (toolbox.py); anything else, prose that
names a tool or shows JSON included, stays text, byte for byte.

Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from agentwrap.guards.repair.formats import FENCE_INFOS, PARSERS
from agentwrap.guards.repair.lines import WS as _WS
from agentwrap.guards.repair.lines import LineState
from agentwrap.guards.repair.toolbox import EmbeddedCall, Toolbox
from agentwrap.guards.repair.markers import BARE, FENCED, LT_OPENERS, MAYBE, MISTRAL, NO, YES, Block, Opener, partial
from agentwrap.guards.repair.validate import properties_of

__all__ = ["EmbeddedScanner", "Extracted", "MAX_HOLD_CHARS", "MAX_BLOCK_CHARS", "MAX_NAME_CHARS", "TRIGGER"]

MAX_HOLD_CHARS = 64
MAX_BLOCK_CHARS = 64 * 1024
# The providers take tool names of up to 64 (OpenAI, Gemini) or 128 (Anthropic) characters, so a
# longer declared name is never called; the scanner does not look for it in text (the set of a
# name's prefixes grows with the square of its length: a 100 KB name took 5 GB).
MAX_NAME_CHARS = 256

_PLAIN, _OPEN, _BLOCK, _SPAN, _FENCE, _REGION = range(6)
TRIGGER = re.compile(r"[<`\[]")  # where a call in the text can start (the filter checks text with it too)
_TRIGGER_BLANK = re.compile(r"[<`\[{]")
_SPAN_STOP = re.compile(r"`+|\n")


@dataclass(slots=True)
class Extracted:
    """Calls found in the text, and the text (`raw`) they stand for."""

    calls: list[EmbeddedCall]
    raw: str
    fmt: str
    strong: bool = True


class EmbeddedScanner(LineState):
    """Finds tool calls in a message's text as it streams; see the module docstring.

    Its line state (lines.py) is moved on past every piece it emits, and past
    text that went by unscanned (`advance`, `passed`, `at_newline`, `mid_line`).
    """

    def __init__(self, box: Toolbox, *, max_hold_chars: int = MAX_HOLD_CHARS, max_block_chars: int = MAX_BLOCK_CHARS) -> None:
        super().__init__()
        self.box = box
        names = [n for n in box.names if len(n) <= MAX_NAME_CHARS]
        self._names = frozenset(names)
        self._prefixes = frozenset(n[:k] for n in names for k in range(len(n) + 1))
        longest = max((len(n) for n in names), default=0)
        self.max_hold = max(max_hold_chars, longest + 32)
        # The characters that can follow "<" in an opening (a region's, a marker's, a tool tag's).
        self._second = frozenset(o.tokens[0][1][1] for o in LT_OPENERS if len(o.tokens[0][1]) > 1) | {n[0] for n in names if n}
        self.max_block = max_block_chars
        self._buf = ""  # undecided text (a candidate, or a partial marker)
        self._mode = _PLAIN
        self._kind = ""  # what opened the candidate: < ` { [
        self._at_line = False  # the candidate began at the start of a line
        self._block: Block | None = None
        self._ticks = 0  # inline code: the opening run; fence: its length
        self._region = ""  # the closer of a <think> region
        self._region_blank = False  # the message was blank before the region
        self._out: list[str | Extracted] = []
        self._tail: list[str | Extracted] = []  # held behind a weak call
        self._steps = (self._plain, self._open, self._held_block, self._span, self._fence, self._in_region)  # by mode
        # Kept by _settle. quiet: plain text, nothing held, the message not blank, so text
        # without a trigger just passes (`advance`). lane_quiet: the same in a fence, region
        # or inline code too, for the lane (`passed`, `at_newline`, `mid_line`); lane_span:
        # inline code is open, which a blank line ends, so a run with a newline must be read.
        self.quiet = self.lane_quiet = self.lane_span = False

    # -- state -----------------------------------------------------------------

    @property
    def holding(self) -> bool:
        return bool(self._buf or self._tail)

    def passed(self, text: str) -> None:
        """`text` went by unscanned (it holds no trigger character and the scanner was idle)."""
        self.advance(text)
        self._settle()

    def _settle(self) -> None:
        mode = self._mode
        idle = not self._buf and not self._tail and not self.blank
        self.quiet = idle and mode == _PLAIN
        self.lane_quiet = idle and mode != _OPEN and mode != _BLOCK
        self.lane_span = mode == _SPAN

    # -- output ----------------------------------------------------------------

    def _text(self, text: str) -> None:
        if not text:
            return
        self.advance(text)
        if self._tail:
            if not text.strip(_WS):
                self._tail.append(text)
                return
            self._release_tail(as_calls=False)
        self._out.append(text)

    def _calls(self, found: Extracted) -> None:
        self.advance(found.raw)
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
        steps = self._steps
        while self._buf:
            if not steps[self._mode](final):
                return

    def _plain(self, final: bool) -> bool:
        buf = self._buf
        search = (_TRIGGER_BLANK if self.blank else TRIGGER).search
        start = pos = 0  # buf[start:] is not emitted yet; triggers are looked for from pos
        while True:
            m = search(buf, pos)
            if m is None:
                self._buf = ""
                self._text(buf[start:])
                return False
            i = m.start()
            if i > start:
                self._text(buf[start:i])  # the line state at i is then known
                start = i
            kind = buf[i]
            if kind in "<[" and self._status(kind, buf[i : i + self.max_hold + 1], final or i + self.max_hold < len(buf))[0] == NO:
                pos = i + 1  # not an opening: it is text (emitted with what follows), no held copy made
                continue
            self._buf = buf[i:]
            self._kind = kind
            self._at_line = self.line_start
            self._mode = _OPEN
            return True

    def _reject(self, n: int = 1, mode: int = _PLAIN) -> bool:
        """The held candidate is not one: its first `n` characters are text."""
        head, self._buf = self._buf[:n], self._buf[n:]
        self._mode = mode
        self._text(head)
        return True

    def _status(self, kind: str, held: str, complete: bool) -> tuple[int, Opener | None, int, str]:
        """Whether `held` opens a block or region: (YES, opener, end, name), MAYBE while it may
        (unless `complete`: no more text will come within the bound), else NO."""
        if kind == "{":
            candidates = [BARE] if self.blank else []
        elif kind == "[":
            if len(held) > 1 and held[1] != "T":
                return NO, None, 0, ""
            candidates = [MISTRAL]
        else:
            if len(held) > 1 and held[1] not in self._second:
                return NO, None, 0, ""  # no opening has this second character: the common case
            candidates = [o for o in LT_OPENERS if self.line_start or not o.line_start]
        maybe = False
        for opener in candidates:
            status, end, name = partial(held, opener.tokens, self._names, self._prefixes)
            if status == YES:
                return YES, opener, end, name
            maybe = maybe or status == MAYBE
        if maybe and not complete and len(held) <= self.max_hold:
            return MAYBE, None, 0, ""
        return NO, None, 0, ""

    def _open(self, final: bool) -> bool:
        kind = self._kind
        if kind == "`":
            return self._ticks_open(final)
        line_start, self.line_start = self.line_start, self._at_line
        status, opener, end, name = self._status(kind, self._buf, final)
        self.line_start = line_start
        if status == YES:
            return self._confirm(opener, end, name)  # type: ignore[arg-type]
        if status == MAYBE:
            return False
        return self._reject()

    def _confirm(self, opener: Opener, end: int, name: str) -> bool:
        if opener.fmt == "region":
            self._region = opener.closer
            self._region_blank = self.blank  # a bare call may still follow a leading <think> region
            return self._reject(end, _REGION)
        if opener.fmt == "xml":
            props = frozenset(properties_of(self.box.specs[name].parameters))
            self._block = Block(opener, end, f"</{name}>", props=props)
        else:
            self._block = Block(opener, end, opener.closer)
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
        status, _, _ = partial(buf[nl + 1 :].lstrip(_WS), BARE.tokens, self._names, self._prefixes)
        if status == YES:
            self._block = Block(FENCED, nl + 1, fence=run)
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
        end = block.end(buf, final, self.max_hold)
        if end > 0:
            return self._close_block(buf[:end], True, end)
        if end == 0 and not final and len(buf) <= self.max_block:
            return False
        fmt = block.opener.fmt
        if end < 0:
            # Not a call after all: its opening is text, and what follows is scanned again.
            self._block = None
            return self._reject(block.body)
        # Unfinished at the end of the message, or too long.
        if final and fmt not in ("xml", "fenced"):
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
            if self._region_blank:
                self.blank = True
            return True
        lt = buf.rfind("<")
        if lt >= 0 and closer.startswith(buf[lt:]) and not final:
            self._text(buf[:lt])
            self._buf = buf[lt:]
            return False
        self._buf = ""
        self._text(buf)
        return False
