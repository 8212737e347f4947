"""A stream filter that keeps provider keys out of a model's text, however it is split.

The relay already replaces every key agentwrap holds in the bytes it sends
(`capture.redact.StreamRedactor`), but a model that repeats a key (prompt
injection, an upstream that echoes its credentials) spreads it over several
text deltas, and each delta is a separate JSON string in its own SSE event:
the bytes never hold the whole key, while the client joins the deltas back
into it. This filter works on the text itself.

Theory of operation. For each text or thinking delta, the text is the part
still held from the previous delta plus the new one. Every whole key in it is
replaced by a marker of the same length. A tail that is the beginning of a
key, at least `MIN_HELD_PREFIX` characters long, is held back until the next
delta shows whether the key follows (shorter beginnings of a key say nothing
about it: `sk-ant-` is in every key). A delta the filter does not change
passes as it came (the tap then keeps the upstream's bytes); a changed one is
a rewrite. `finish()` releases whatever is held. On the text lane, a run whose
escaped bytes neither contain a key nor end with one's beginning passes
undecoded (keys are ASCII without quotes or backslashes, so their JSON
escaping is themselves).

Pure.
"""

from __future__ import annotations

from dataclasses import replace

from agentwrap.capture.redact import KEY_MARKER, fit_marker
from agentwrap.guards.base import GuardNote
from agentwrap.protocols.neutral import NeutralEvent, TextDelta, ThinkingDelta

__all__ = ["KeyGuard", "MARKER", "MIN_HELD_PREFIX"]

MARKER = KEY_MARKER.decode()
MIN_HELD_PREFIX = 8


def _mask(key: str) -> str:
    """The marker at the key's length, as the relay's redaction writes it (`fit_marker`)."""
    return fit_marker(KEY_MARKER, len(key)).decode("latin-1")


def _begins_key(text, key) -> int:
    """The length of the longest tail of `text` (str or bytes) that is a beginning of `key`
    at least MIN_HELD_PREFIX long, else 0: one search for the key's first characters."""
    start = text.rfind(key[:MIN_HELD_PREFIX], max(0, len(text) - len(key) + 1))
    while start >= 0:
        if key.startswith(text[start:]):
            return len(text) - start
        start = text.rfind(key[:MIN_HELD_PREFIX], max(0, len(text) - len(key) + 1), start)
    return 0


class KeyGuard:
    """See the module docstring. `keys`: every key value agentwrap holds (at least 8 characters)."""

    name = "keys"
    wants_text = True

    def __init__(self, keys) -> None:
        self._keys = sorted({k for k in keys if len(k) >= MIN_HELD_PREFIX}, key=len, reverse=True)
        self._held = {"text_delta": "", "thinking_delta": ""}
        self._kbytes = [k.encode() for k in self._keys]
        # A key's first MIN_HELD_PREFIX bytes: a run whose text (with what went out before it)
        # holds none of them can hold neither a key nor the beginning of one worth holding.
        self._probes = tuple(dict.fromkeys(k[:MIN_HELD_PREFIX] for k in self._kbytes))
        self._ctx = b""  # the end of the text that went out (UTF-8), to see a key begun there
        self._thinking_ctx = ""
        self._longest = max((len(k) for k in self._keys), default=1) - 1
        self.notes: list[GuardNote] = []
        self._noted = False

    @property
    def holding(self) -> bool:
        return bool(self._held["text_delta"] or self._held["thinking_delta"])

    def _scrub(self, kind: str, text: str) -> tuple[str, str]:
        """(text to send, tail to hold) with every key masked, also one that began in text
        already sent (its remaining characters are masked)."""
        sent = self._ctx.decode("latin-1") if kind == "text_delta" else self._thinking_ctx  # keys are ASCII
        whole = sent + text
        hit = False
        for key in self._keys:
            start = whole.find(key)
            while start >= 0:
                end = start + len(key)
                if end > len(sent):
                    lo = max(start, len(sent))
                    whole = whole[:lo] + _mask(key)[lo - start:] + whole[end:]
                    hit = True
                start = whole.find(key, end)
        text = whole[len(sent):]
        if hit and not self._noted:
            self._noted = True
            self.notes.append(GuardNote("keys", "redacted", {"where": "model text"}))
        tail = ""
        for key in self._keys:
            n = _begins_key(text, key)
            if n:
                text, tail = text[:-n], text[-n:]
                break
        if kind == "text_delta":
            self._ctx = (self._ctx + text.encode("utf-8", "surrogatepass"))[-self._longest:]
        else:
            self._thinking_ctx = (sent + text)[-self._longest:]
        return text, tail

    def feed(self, event: NeutralEvent) -> list[NeutralEvent]:
        kind = event.kind
        if kind not in ("text_delta", "thinking_delta"):
            if self.holding and kind != "usage":
                return self._release() + [event]
            return [event]
        held = self._held[kind]
        text = held + event.text
        out, tail = self._scrub(kind, text)
        self._held[kind] = tail
        if not held and not tail and out == event.text:
            return [event]
        if not out and (kind == "text_delta" or event.provider_meta is None):
            return []
        return [replace(event, text=out)]

    def lane_text(self, literals: list[bytes]) -> bool:
        if self.holding:
            return False
        # The literals' insides, escapes and all: a key (ASCII, no quote or backslash) reads the
        # same escaped, and an escape sequence can never be part of one. Bytes only, no decoding.
        inner = literals[0][1:-1] if len(literals) == 1 else b"".join([lit[1:-1] for lit in literals])
        seen = self._ctx + inner
        for probe in self._probes:
            if seen.find(probe) >= 0:  # (`find` is faster than `in` on bytes)
                for key in self._kbytes:
                    if seen.find(key) >= 0 or _begins_key(inner, key):
                        return False
                break
        self._ctx = seen[-self._longest:]
        return True

    def _release(self) -> list[NeutralEvent]:
        out: list[NeutralEvent] = []
        for kind, cls in (("thinking_delta", ThinkingDelta), ("text_delta", TextDelta)):
            if self._held[kind]:
                out.append(cls(self._held[kind]))
                self._held[kind] = ""
        return out

    def finish(self) -> list[NeutralEvent]:
        return self._release()
