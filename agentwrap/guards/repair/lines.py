"""Where the message's text is: at a line's start, on a blank line, still all whitespace.

Fenced calls and XML-style tag calls must start a line, inline code ends at
a blank line, and a bare call object must be the whole message: the
embedded-call scanner (embedded.py) needs this state for every piece of
text, including text that went by without being scanned (the filter's
quick path, and the text lane's runs, textlane.py, which move it from the
undecoded bytes with `at_newline` / `mid_line`).

Pure: no I/O.
"""

from __future__ import annotations

__all__ = ["LineState", "WS"]

WS = " \t\r\n"


class LineState:
    """The line and message state after the text so far; `advance` moves it past more text.

    `line_start`: only up to 3 spaces since the last newline (where a fence or a
    tag call may open). `ws_line`: only whitespace since the last newline.
    `blank`: the message's text so far is whitespace.
    """

    def __init__(self) -> None:
        self.line_start = True
        self._indent = 0
        self.ws_line = False
        self.blank = True

    def advance(self, text: str) -> None:
        """Move the state on past `text`."""
        if self.blank and text.strip(WS):
            self.blank = False
        nl = text.rfind("\n")
        if nl < 0:
            if self.line_start:
                self._indent += len(text)
                self.line_start = self._indent <= 3 and not text.strip(" ")
            if self.ws_line and text.strip(WS):
                self.ws_line = False
            return
        rest = text[nl + 1 :]
        self._indent = len(rest)
        self.line_start = len(rest) <= 3 and not rest.strip(" ")
        self.ws_line = not rest.strip(WS)

    def at_newline(self, spaces: int = 0) -> None:
        """Text that ends with a newline and `spaces` spaces went by (the message is not blank)."""
        self._indent, self.ws_line = spaces, True
        self.line_start = spaces <= 3

    def mid_line(self) -> None:
        """Text that ends with a visible character after its last newline went by (the
        message is not blank)."""
        self.line_start, self.ws_line = False, False
