"""Where text-embedded calls open and end: the markers the scanner (embedded.py) watches.

An `Opener` is a sequence of tokens matched against held text with `partial`,
which says NO (this cannot be the opening), MAYBE (a prefix of it: hold on)
or YES (the whole opening, and where it ends). Tokens: a literal; optional
whitespace; a name running to a terminator, which must be a declared tool's
exact name (a prefix of one while it is incomplete). A confirmed `Block` is
then held until `Block.end` finds its end: a literal closer (`</tool_call>`,
`</NAME>` for an XML-style call, DeepSeek's end token), the end of a JSON
object (bare calls), a closing fence line (fenced calls), or the end of the
message (`[TOOL_CALLS]`). An XML-style block is also checked as it grows
(`xml_viable`), so text that merely starts with a tool's tag is released as
soon as a child that is not a parameter appears; a strong block's body must
start as its format's does (`HEADS`: `{`, `<function=` or a name and
`<arg_key>` after `<tool_call>`, `<invoke` after `<function_calls>`, ...) within the hold
bound, so a marker merely named in prose is released at once.

Pure: no I/O.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from agentwrap.guards.repair.formats import DS, KIMI

__all__ = ["NO", "MAYBE", "YES", "Opener", "Block", "partial", "head_status", "LT_OPENERS", "BARE", "MISTRAL", "FENCED"]

NO, MAYBE, YES = 0, 1, 2
_WS = " \t\r\n"
_WORD = re.compile(r"[\w.:-]*")  # a tool name as models write it after a marker
_JSON_IN_STRING = re.compile(r'[^"\\]*')
_JSON_OUTSIDE = re.compile(r'[^"{}\[\]]*')


class Opener(NamedTuple):
    fmt: str  # a formats.PARSERS key, or "region" (<think>: never scanned, never held)
    tokens: tuple  # ("lit", s) | ("ws",) | ("name", terminator): a declared name | ("any"/"word", terminator)
    closer: str  # "" when the end is not a literal (or depends on the name)
    strong: bool  # False: the tail rule applies (embedded.py)
    line_start: bool = False  # only at the start of a line
    head: str = ""  # the HEADS entry its body must start with ("" = the format's own, if any)


def _lt_openers() -> list[Opener]:
    out = [
        Opener("tool_call", (("lit", "<tool_call>"),), "</tool_call>", True),
        Opener("function_calls", (("lit", "<function_calls>"),), "</function_calls>", True),
        Opener("invoke", (("lit", "<invoke name="),), "</invoke>", True),
        Opener("function", (("lit", "<function="),), "</function>", True),
    ]
    for bar in ("｜", "|"):
        calls_begin, calls_end = DS["calls_begin"].replace("｜", bar), DS["calls_end"].replace("｜", bar)
        call_begin, call_end = DS["call_begin"].replace("｜", bar), DS["call_end"].replace("｜", bar)
        out.append(Opener("deepseek", (("lit", calls_begin),), calls_end, True, head="deepseek_calls"))
        out.append(Opener("deepseek", (("lit", call_begin),), call_end, True, head="deepseek_call"))
    out.append(Opener("kimi", (("lit", KIMI["calls_begin"]),), KIMI["calls_end"], True, head="kimi_calls"))
    out.append(Opener("kimi", (("lit", KIMI["call_begin"]),), KIMI["call_end"], True, head="kimi_call"))
    for tag in ("think", "thinking"):
        out.append(Opener("region", (("lit", f"<{tag}>"),), f"</{tag}>", True))
    out.append(Opener("xml", (("lit", "<"), ("name", ">"), ("lit", ">")), "", False, True))
    return out


LT_OPENERS = _lt_openers()  # in order of preference
BARE = Opener("bare", (("lit", "{"), ("ws",), ("lit", '"name"'), ("ws",), ("lit", ":"), ("ws",), ("lit", '"'), ("name", '"'), ("lit", '"')), "", False)
MISTRAL = Opener("mistral", (("lit", "[TOOL_CALLS]"),), "", True)

FENCED = Opener("fenced", (), "", False)  # its opening is the fence line, then BARE's tokens


def partial(s: str, tokens: tuple, names: frozenset[str], prefixes: frozenset[str]) -> tuple[int, int, str]:
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
        elif kind == "any" or kind == "word":  # a name on one line (a word: no spaces), to a terminator
            stop = s.find(token[1], pos)
            name = s[pos:] if stop < 0 else s[pos:stop]
            if len(name) > 200 or "\n" in name or (kind == "word" and not _WORD.fullmatch(name)):
                return NO, 0, ""
            if stop < 0:
                return MAYBE, 0, ""
            pos = stop
        else:
            stop = s.find(token[1], pos)
            if stop < 0:
                return (MAYBE if s[pos:] in prefixes else NO), 0, ""
            name = s[pos:stop]
            if name not in names:
                return NO, 0, ""
            pos = stop
    return YES, pos, name


def _ws_lit(*lits: str) -> tuple:
    return tuple((("ws",), ("lit", lit)) for lit in lits)


def _named(terminator: str, *after: str) -> tuple:
    return tuple((("any", terminator), ("lit", terminator), ("ws",), ("lit", lit)) for lit in after)


# What a strong block's body must start with (alternatives); checked until it does.
_SEP = (DS["sep"], DS["sep"].replace("｜", "|"))
HEADS: dict[str, tuple] = {
    # JSON, Qwen3-Coder's <function=...>, or GLM's name then <arg_key> (or nothing: no arguments)
    "tool_call": (
        *_ws_lit("{", "<function="),
        (("word", "<"), ("lit", "<arg_key>")),
        (("word", "\n"), ("ws",), ("lit", "<arg_key>")),
        (("word", "<"), ("lit", "</tool_call>")),
    ),
    "function": _named(">", "{", "<parameter=", "</function>"),
    "invoke": _named(">", "<parameter", "</invoke>"),
    "function_calls": _ws_lit("<invoke"),
    "deepseek_calls": _ws_lit(DS["call_begin"], DS["call_begin"].replace("｜", "|")),
    "deepseek_call": tuple((("any", sep), ("lit", sep)) for sep in _SEP),
    "kimi_calls": _ws_lit(KIMI["call_begin"]),
    "kimi_call": ((("any", KIMI["args"]), ("lit", KIMI["args"])),),
    "mistral": (*_ws_lit("["), (("word", "["), ("lit", "[ARGS]")), (("word", "["), ("lit", "[CALL_ID]"))),
}


def head_status(fmt: str, body: str) -> int:
    """YES when a strong block's body starts as its format's does, MAYBE while it may, else NO."""
    maybe = False
    for tokens in HEADS[fmt]:
        status = partial(body, tokens, frozenset(), frozenset())[0]
        if status == YES:
            return YES
        maybe = maybe or status == MAYBE
    return MAYBE if maybe else NO


class Block:
    """A confirmed block being held, from its opening (at 0 in the held text) on."""

    __slots__ = ("opener", "body", "closer", "searched", "fence", "depth", "quote", "xml_key", "xml_pos", "props", "head")

    def __init__(self, opener: Opener, body: int, closer: str = "", fence: int = 0, props: frozenset[str] = frozenset()) -> None:
        self.opener = opener
        self.body = body  # where the body starts (after the opening)
        self.closer = closer
        self.searched = 0 if opener.fmt == "bare" else body  # how far the end was looked for
        self.fence = fence  # backticks of a fenced block's opening
        self.depth = 0  # bare JSON: bracket depth so far
        self.quote = False  # bare JSON: inside a string
        self.xml_key = ""  # XML-style: the parameter tag open
        self.xml_pos = body
        self.props = props  # XML-style: the tool's parameters
        head = opener.head or opener.fmt
        self.head = head if opener.strong and head in HEADS else ""  # cleared once the body starts right

    def end(self, buf: str, final: bool, max_tag: int) -> int:
        """Where the block ends in `buf` (after its closer); 0 while it may still end; -1
        when it cannot be a call any more. `max_tag` bounds an unfinished parameter tag
        and how much of a strong block's body is read before it must look right."""
        if self.head:
            status = head_status(self.head, buf[self.body : self.body + max_tag + 1])
            if status == NO or (status == MAYBE and len(buf) - self.body > max_tag):
                return -1
            if status == MAYBE:
                return 0
            self.head = ""
        if self.closer:
            if self.opener.fmt == "xml" and not self.xml_viable(buf, max_tag):
                return -1
            i = buf.find(self.closer, max(self.searched, self.body))
            if i >= 0:
                return i + len(self.closer)
            self.searched = max(self.body, len(buf) - len(self.closer) + 1)
            return 0
        fmt = self.opener.fmt
        if fmt == "bare":
            return self._json_end(buf)
        if fmt == "fenced":
            return self._fence_end(buf, final)
        return 0  # mistral: to the end of the message

    def _json_end(self, buf: str) -> int:
        i, n = self.searched, len(buf)
        while i < n:
            if self.quote:
                i = _JSON_IN_STRING.match(buf, i).end()  # type: ignore[union-attr]
                if i >= n:
                    break
                if buf[i] == "\\":
                    i += 2
                    continue
                self.quote = False
            else:
                i = _JSON_OUTSIDE.match(buf, i).end()  # type: ignore[union-attr]
                if i >= n:
                    break
                ch = buf[i]
                if ch == '"':
                    self.quote = True
                elif ch in "{[":
                    self.depth += 1
                else:
                    self.depth -= 1
                    if self.depth <= 0:
                        return i + 1
            i += 1
        self.searched = min(i, n)
        return 0

    def _fence_end(self, buf: str, final: bool) -> int:
        """After the closing fence line (same backticks or more, up to 3 spaces before)."""
        fence = "`" * self.fence
        i = max(self.body, self.searched)
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
                self.searched = i
                return 0
            if line_end < 0:
                self.searched = i
                return 0
            i = line_end

    def xml_viable(self, buf: str, max_tag: int) -> bool:
        """Whether the held XML element can still be a call: whitespace-separated tags named
        after the tool's parameters, each closed, then the tool's own closing tag."""
        pos = self.xml_pos
        while True:
            if self.xml_key:
                close = f"</{self.xml_key}>"
                stop = buf.find(close, pos)
                if stop < 0:
                    self.xml_pos = max(pos, len(buf) - len(close) + 1)
                    return True
                pos, self.xml_key = stop + len(close), ""
                self.xml_pos = pos
                continue
            while pos < len(buf) and buf[pos] in _WS:
                pos += 1
            self.xml_pos = pos
            rest = buf[pos:]
            if not rest or rest.startswith(self.closer) or self.closer.startswith(rest):
                return True
            if rest[0] != "<":
                return False
            gt = rest.find(">")
            if gt < 0:
                return len(rest) <= max_tag and any(("<" + p).startswith(rest) for p in self.props)
            key = rest[1:gt]
            if key not in self.props:
                return False
            self.xml_key = key
            pos += gt + 1
