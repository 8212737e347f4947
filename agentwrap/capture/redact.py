"""Remove key material before anything reaches a bundle.

Sans-IO. A `Redactor` knows the secret values of one run (the session secret
and every provider key agentwrap holds) and replaces each verbatim occurrence
with `[REDACTED]`; it also blanks the values of authentication headers and of
key-carrying URL query parameters, whose values agentwrap may not know (the
agent's own OAuth token in pass-through mode).

A `StreamRedactor` does the same for a body that arrives in pieces: a secret
split across two pieces is still found, because a piece's tail that could be
the start of a secret is held back and joined to the next piece.

The proxy uses the same two on what goes to the agent (an upstream may echo
the key it got), with its own marker and `keep_length=True`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote

__all__ = ["REDACTED", "KEY_MARKER", "fit_marker", "MIN_SECRET_CHARS", "SENSITIVE_HEADERS", "SENSITIVE_QUERY_KEYS", "Redactor", "StreamRedactor"]

REDACTED = "[REDACTED]"
# What replaces a key agentwrap holds in anything that goes to the agent (its bytes, and the
# model's text: guards/keys.py), at the key's length.
KEY_MARKER = b"[redacted by agentwrap]"
_REDACTED_B = REDACTED.encode()
# Shorter values would match ordinary text; no real key or session secret is that short.
MIN_SECRET_CHARS = 8
SENSITIVE_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "x-api-key", "x-goog-api-key", "cookie", "set-cookie", "x-agentwrap-secret"}
)
SENSITIVE_QUERY_KEYS = frozenset({"key", "api_key", "apikey", "access_token"})


class Redactor:
    """Replace known secret values, auth header values and `key=` query values.

    Longer secrets are replaced first, so a secret that contains another is
    removed whole. Methods never raise on odd input; they return it redacted.
    """

    __slots__ = ("_str", "_bytes", "_longest", "_secret_bytes", "_pairs", "_pairs_b")

    def __init__(self, secret_values: Iterable[str], *, replacement: bytes = _REDACTED_B, keep_length: bool = False) -> None:
        values = {v for v in secret_values if isinstance(v, str) and len(v) >= MIN_SECRET_CHARS}
        self._str = tuple(sorted(values, key=len, reverse=True))
        self._bytes = tuple(v.encode("utf-8") for v in self._str)
        self._longest = max((len(b) for b in self._bytes), default=0)
        # Byte values that occur in any secret: a piece ending in another byte
        # (SSE pieces end in "\n") cannot end with the start of a secret.
        self._secret_bytes = frozenset(b"".join(self._bytes))
        # `keep_length`: each secret's replacement has the secret's length (the marker cut
        # or padded with "*"), so a Content-Length stays true after redaction.
        marks = [fit_marker(replacement, len(b)) if keep_length else replacement for b in self._bytes]
        self._pairs_b = tuple(zip(self._bytes, marks))
        self._pairs = tuple(zip(self._str, (m.decode("latin-1") for m in marks)))

    @property
    def active(self) -> bool:
        """True when there is at least one secret value to look for."""
        return bool(self._str)

    def bytes(self, data: bytes) -> bytes:
        for secret, mark in self._pairs_b:
            if data.find(secret) >= 0:  # one pass; replace only when needed (find: 2x faster than `in`)
                data = data.replace(secret, mark)
        return data

    def text(self, text: str) -> str:
        for secret, mark in self._pairs:
            if secret in text:
                text = text.replace(secret, mark)
        return text

    def value(self, obj: Any) -> Any:
        """Redact every string and byte string inside a JSON/CBOR-like value (keys too).

        Values that are not plain data become their (redacted) text.
        """
        if isinstance(obj, str):
            return self.text(obj)
        if isinstance(obj, (bytes, bytearray, memoryview)):
            return self.bytes(bytes(obj))
        if isinstance(obj, dict):
            return {self.value(k): self.value(v) for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            return [self.value(v) for v in obj]
        if obj is None or isinstance(obj, (bool, int, float)):
            return obj
        # Anything else (a Path, a config object) is kept as its text, redacted like any text.
        return self.text(str(obj))

    def headers(self, headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
        """Decode header pairs (latin-1, lossless) and redact them.

        Authentication and cookie headers lose their value whatever it is; an
        auth scheme word is kept (`Bearer [REDACTED]`) because it tells which
        kind of credential was sent.
        """
        out: list[tuple[str, str]] = []
        for name, value in headers:
            n = name.decode("latin-1") if isinstance(name, (bytes, bytearray)) else str(name)
            v = value.decode("latin-1") if isinstance(value, (bytes, bytearray)) else str(value)
            if n.lower() in SENSITIVE_HEADERS:
                scheme, sep, _ = v.partition(" ")
                v = f"{scheme} {REDACTED}" if sep and scheme.isalpha() and n.lower().endswith("authorization") else REDACTED
            else:
                v = self.text(v)
            out.append((self.text(n), v))
        return out

    def url(self, url: str) -> str:
        """Redact secrets anywhere in a URL or request target, and key-like query values."""
        url = self.text(url)
        head, sep, query = url.partition("?")
        if not sep:
            return url
        query, hsep, fragment = query.partition("#")
        parts = []
        for part in query.split("&"):
            name, eq, _ = part.partition("=")
            if eq and unquote(name).lower() in SENSITIVE_QUERY_KEYS:
                part = f"{name}={REDACTED}"
            parts.append(part)
        return head + sep + "&".join(parts) + hsep + fragment

    def partial_tail(self, data: bytes) -> int:
        """Length of the longest suffix of `data` that is a proper prefix of a secret (0 if none)."""
        best = 0
        n = len(data)
        if not n or data[-1] not in self._secret_bytes:
            return 0
        for secret in self._bytes:
            window_start = max(0, n - len(secret) + 1)
            first = secret[0]
            pos = data.find(first, window_start)
            while pos >= 0:
                # The earliest match in the window is the longest candidate suffix.
                if secret.startswith(data[pos:]):
                    best = max(best, n - pos)
                    break
                pos = data.find(first, pos + 1)
        return best


def fit_marker(marker: bytes, n: int) -> bytes:
    """`marker` padded with "*" to n bytes; a shorter secret gets `[REDACTED]` (or stars) instead."""
    for candidate in (marker, _REDACTED_B, b""):
        if len(candidate) <= n:
            return candidate + b"*" * (n - len(candidate))
    return b"*" * n


class StreamRedactor:
    """Redact a body that arrives in pieces, including secrets split across pieces.

    `feed()` returns the redacted bytes that are safe to emit now; up to
    len(longest secret) - 1 bytes may be held back until the next piece or
    `finish()`. The concatenation of everything returned equals
    `Redactor.bytes()` of the whole body.
    """

    __slots__ = ("_r", "_held")

    def __init__(self, redactor: Redactor) -> None:
        self._r = redactor
        self._held = b""

    def feed(self, data: bytes) -> bytes:
        # Inlined Redactor.bytes and the first test of partial_tail: the proxy calls
        # this once per piece going to the agent whenever it holds a key.
        r = self._r
        if self._held:
            data, self._held = self._held + data, b""
        for secret, mark in r._pairs_b:
            if data.find(secret) >= 0:
                data = data.replace(secret, mark)
        if data and data[-1] in r._secret_bytes:
            keep = r.partial_tail(data)
            if keep:
                self._held = data[-keep:]
                return data[:-keep]
        return data

    def finish(self) -> bytes:
        """What is still held: never a whole secret, only the start of one."""
        held, self._held = self._held, b""
        return held
