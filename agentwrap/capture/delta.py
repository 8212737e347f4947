"""Store request bodies as ranges of earlier bodies plus their new bytes.

Sans-IO. Theory of operation: agents resend the whole conversation, system
prompt and tool list with every request, and a new request's bytes are mostly
an earlier request's bytes: the conversation grows at its end, and what comes
before it and after it (Claude Code sends `messages` before `system` and
`tools`) is sent again byte for byte. So a body is stored as *parts*: ranges
of bodies stored before it and the bytes that are new. Finding them costs a
few memory comparisons per kept body (`startswith` / `endswith` on
memoryviews, galloping, then bisecting); nothing is decoded, and only the new
bytes are redacted.

- A body of `MIN_DELTA_BYTES` or more is stored as `{"id": n, "parts": [...]}`;
  each part is a byte string (new bytes) or `[id, start, length]` (bytes of
  body `id`, stored earlier in the bundle). Smaller bodies stay byte strings.
- `BodyDeltas` keeps the last `CANDIDATES` bodies it stored, as stored. A new
  body takes the longest common prefix it has with any of them and the
  longest common suffix with any (not overlapping the prefix); the bytes in
  between are new.
- A body that continues a kept body (shares at least half of it, counting
  its common prefix and suffix) takes its place, so each conversation (the
  agent's requests, their rewritten upstream copies, a subagent's) holds one
  place. A body that continues none takes the place of the smallest kept
  body, so a run of side calls does not push a long conversation out.
- New bytes of `STRING_INDEX_MIN_BYTES` or more are cut at `"` too: a piece of
  `LONG_STRING_BYTES` or more (a tool description, a system prompt, a file a
  tool read) that an earlier body's new bytes held (known by its BLAKE2b-128
  digest, as version 1 knew its blobs) becomes a range of that body, so a new
  conversation that resends another's tools (a subagent) does not store them
  again.

Redaction without reading the whole body: kept bodies hold no secret (checked
as they are kept), and the new body equals them on its prefix and suffix, so
every secret in it overlaps the bytes in between. Shrinking both ranges by the
longest secret's length minus one puts every secret wholly inside the new
bytes, and only those are redacted. Where that redaction replaced something,
the result is checked for any secret left (inside and across its edges); a
failed check redacts the whole body instead. The stored body then reads back
as `Redactor.bytes(body)`.
"""

from __future__ import annotations

from bisect import bisect_right
from hashlib import blake2b
from itertools import accumulate, compress
from typing import Any

from agentwrap.capture.redact import Redactor

__all__ = ["MIN_DELTA_BYTES", "CANDIDATES", "BodyDeltas", "DeltaBodies"]

MIN_DELTA_BYTES = 512  # smaller bodies are stored as they are
CANDIDATES = 8
MIN_REF_BYTES = 64  # a shorter common prefix or suffix is not worth a reference
STRING_INDEX_MIN_BYTES = 4096  # new bytes this long are also searched for known long strings
LONG_STRING_BYTES = 256
STRING_INDEX_ENTRIES = 32768  # long strings remembered for that search (~6 MB at most)
_GALLOP_FIRST = 4096
_BISECT_TO = 32


def common_prefix(a: bytes, b: bytes) -> int:
    """Length of the longest common prefix of `a` and `b`."""
    n = min(len(a), len(b))
    mv = memoryview(b)
    lo, step = 0, _GALLOP_FIRST
    while lo < n:
        hi = min(n, lo + step)
        if a.startswith(mv[lo:hi], lo):
            lo = hi
            step <<= 1
            continue
        while hi - lo > _BISECT_TO:  # the first difference lies in [lo, hi)
            mid = (lo + hi) >> 1
            if a.startswith(mv[lo:mid], lo):
                lo = mid
            else:
                hi = mid
        while a[lo] == b[lo]:
            lo += 1
        return lo
    return lo


def common_suffix(a: bytes, b: bytes, limit: int) -> int:
    """Length of the longest common suffix of `a` and `b`, at most `limit`."""
    la, lb = len(a), len(b)
    n = min(la, lb, limit)
    mv = memoryview(b)
    lo, step = 0, _GALLOP_FIRST
    while lo < n:
        hi = min(n, lo + step)
        if a.endswith(mv[lb - hi:lb - lo], 0, la - lo):
            lo = hi
            step <<= 1
            continue
        while hi - lo > _BISECT_TO:
            mid = (lo + hi) >> 1
            if a.endswith(mv[lb - mid:lb - lo], 0, la - lo):
                lo = mid
            else:
                hi = mid
        while a[la - lo - 1] == b[lb - lo - 1]:
            lo += 1
        return lo
    return lo


class _Kept:
    __slots__ = ("id", "data")

    def __init__(self, ident: int, data: bytes) -> None:
        self.id = ident
        self.data = data  # the body as stored (redacted)


class BodyDeltas:
    """Request bodies in, stored form out (writer side).

    `encode(raw)` returns a byte string (the redacted body) or
    `{"id": n, "parts": [...]}`; a part refers only to bodies this object
    returned before.
    """

    def __init__(self, redactor: Redactor) -> None:
        self._r = redactor
        self._kept: list[_Kept] = []  # most recently stored first
        self._next_id = 1
        # BLAKE2b-128 of a long string -> (body id, offset, length): the bytes are not kept
        self._strings: dict[bytes, tuple[int, int, int]] = {}
        # A secret overlapping a kept range ends at most this far inside it.
        self._margin = max((len(s) for s, _ in redactor._pairs_b), default=1) - 1

    def encode(self, raw: bytes) -> bytes | dict:
        r = self._r
        if len(raw) < MIN_DELTA_BYTES:
            return r.bytes(raw)
        stored = self._delta(raw, r.active) if self._kept else None
        if stored is None:
            data = r.bytes(raw)
            if data is not raw and not self._clean(data):
                return data  # redaction left a secret (one made of a marker and its neighbours): keep nothing
            stored = self._delta(data, False)
        return stored

    def _clean(self, data: bytes) -> bool:
        return all(data.find(secret) < 0 for secret, _ in self._r._pairs_b)

    def _best_prefix(self, data: bytes) -> tuple[int, _Kept | None]:
        best, best_p = None, 0
        for kept in self._kept:
            k = kept.data
            if best_p >= len(data):
                break
            if best_p:
                # To beat the best, `k` must equal `data` up to best_p and one byte beyond:
                # test a short window there before comparing from the start.
                if len(k) <= best_p or k[best_p] != data[best_p]:
                    continue
                lo = max(0, best_p - 63)
                if not data.startswith(memoryview(k)[lo:best_p + 1], lo):
                    continue
            p = common_prefix(data, k)
            if p > best_p:
                best, best_p = kept, p
        return best_p, best

    def _best_suffix(self, data: bytes, limit: int) -> tuple[int, _Kept | None]:
        best, best_s = None, 0
        n = len(data)
        for kept in self._kept:
            k = kept.data
            m = len(k)
            if best_s:
                if m <= best_s or best_s >= limit or k[m - best_s - 1] != data[n - best_s - 1]:
                    continue
                hi = best_s + 1
                lo = max(0, best_s - 63)
                if not data.endswith(memoryview(k)[m - hi:m - lo], 0, n - lo):
                    continue
            s = common_suffix(data, k, limit)
            if s > best_s:
                best, best_s = kept, s
        return best_s, best

    def _delta(self, data: bytes, redact: bool) -> dict | None:
        """`data` as parts. With `redact`, `data` is the raw body and only its new bytes are
        redacted (None when the result fails its check); otherwise `data` is already redacted."""
        n = len(data)
        p, pk = self._best_prefix(data)
        if p < MIN_REF_BYTES:
            p, pk = 0, None
        s, sk = self._best_suffix(data, n - p)
        if s < MIN_REF_BYTES:
            s, sk = 0, None
        if redact:
            p = max(0, p - self._margin) if pk is not None else 0
            s = max(0, s - self._margin) if sk is not None else 0
        new = data[p:n - s] if p or s else data
        body = data
        if redact:
            red = self._r.bytes(new)
            if red is not new:
                if not self._clean(red):
                    return None
                m = self._margin
                edges = (data[max(0, p - m):p] + red[:m], red[-m:] + data[n - s:n - s + m])
                if not all(self._clean(e) for e in edges):
                    return None
                body = data[:p] + red + data[n - s:] if p or s else red
                new = red
        ident = self._next_id
        self._next_id += 1
        parts: list[Any] = [[pk.id, 0, p]] if p else []
        if len(new) >= STRING_INDEX_MIN_BYTES:
            parts += self._strings_of(new, ident, p)
        elif new:
            parts.append(new)
        if s:
            parts.append([sk.id, len(sk.data) - s, s])
        if pk is not None:
            # Does the new body continue pk's conversation (share most of it, both ends)?
            shared = p + (s if sk is pk else common_suffix(data, pk.data, n - p))
            if shared * 2 < len(pk.data):
                pk = None
        self._keep(_Kept(ident, body), pk)
        return {"id": ident, "parts": parts}

    def _strings_of(self, new: bytes, ident: int, offset: int) -> list:
        """`new` (starting at `offset` of body `ident`) as parts: long strings an earlier body
        held become references; the others are remembered for later bodies."""
        pieces = new.split(b'"')
        lens = list(map(len, pieces))
        longs = list(compress(range(len(lens)), map(LONG_STRING_BYTES.__le__, lens)))
        if not longs:
            return [new]
        starts = list(accumulate(lens, initial=0))
        parts: list[Any] = []
        at = 0  # bytes of `new` already in parts
        index = self._strings
        learnt: list[tuple[bytes, int]] = []
        lens_of: dict[bytes, int] = {}
        for i in longs:
            length = lens[i]
            pos = starts[i] + i  # one `"` before each piece but the first
            key = blake2b(pieces[i], digest_size=16).digest()
            known = index.get(key)
            if known is not None and known[2] == length:
                if pos > at:
                    parts.append(new[at:pos])
                parts.append([known[0], known[1], length])
                at = pos + length
            else:
                learnt.append((key, offset + pos))
                lens_of[key] = length
        if at < len(new):
            parts.append(new[at:] if at else new)
        room = STRING_INDEX_ENTRIES - len(index)
        for key, pos in learnt[:max(0, room)]:
            index.setdefault(key, (ident, pos, lens_of[key]))
        return parts

    def _keep(self, new: _Kept, replaces: _Kept | None) -> None:
        kept = self._kept
        if replaces is not None:
            kept.remove(replaces)  # the same conversation, one turn on
        elif len(kept) >= CANDIDATES:
            # Side calls come and go between a long conversation's turns: the smallest
            # kept body is the one whose loss costs least.
            kept.remove(min(kept, key=lambda k: len(k.data)))
        kept.insert(0, new)


class DeltaBodies:
    """Bodies stored as parts, read back (reader side).

    Each body is resolved into spans of the byte strings the bundle holds, so
    a long session costs the memory of its new bytes and span lists, not of
    every body. Raises `ValueError` for parts that do not resolve.
    """

    def __init__(self) -> None:
        self._parts: dict[int, list] = {}
        self._lengths: dict[int, int] = {}
        self._order: dict[int, int] = {}  # id -> place in the bundle (parts refer only backwards)
        self._spans: dict[int, tuple[list[int], list[tuple[bytes, int, int]]]] = {}

    def add(self, ident: Any, parts: Any) -> None:
        if not isinstance(ident, int) or isinstance(ident, bool) or ident in self._parts:
            raise ValueError(f"body id {ident!r}")
        if not isinstance(parts, list):
            raise ValueError("body parts")
        total = 0
        for part in parts:
            if isinstance(part, bytes):
                total += len(part)
                continue
            if not (isinstance(part, list) and len(part) == 3 and all(type(v) is int for v in part)):
                raise ValueError(f"body part {part!r}")
            ref, start, length = part
            if ref not in self._lengths or start < 0 or length < 0 or start + length > self._lengths[ref]:
                raise ValueError(f"body {ident} refers to bytes {start}+{length} of body {ref}, which the bundle does not hold")
            total += length
        self._parts[ident] = parts
        self._lengths[ident] = total
        self._order[ident] = len(self._order)

    def has(self, ident: Any) -> bool:
        return ident in self._parts

    def bytes(self, ident: int) -> bytes:
        _, spans = self._resolve(ident)
        if len(spans) == 1:
            data, a, b = spans[0]
            return data if a == 0 and b == len(data) else data[a:b]
        return b"".join(memoryview(d)[a:b] for d, a, b in spans)

    def _resolve(self, ident: int) -> tuple[list[int], list[tuple[bytes, int, int]]]:
        done = self._spans
        if ident in done:
            return done[ident]
        # Parts refer only to earlier bodies: resolve what this one needs, oldest first
        # (iteratively: a long session's chain is deeper than Python's stack).
        need, stack = set(), [ident]
        while stack:
            i = stack.pop()
            if i in done or i in need:
                continue
            need.add(i)
            stack.extend(p[0] for p in self._parts[i] if not isinstance(p, bytes))
        for i in sorted(need, key=self._order.__getitem__):
            spans: list[tuple[bytes, int, int]] = []
            for part in self._parts[i]:
                if isinstance(part, bytes):
                    if part:
                        _append(spans, (part, 0, len(part)))
                else:
                    ref, start, length = part
                    for span in _cut(done[ref], start, start + length):
                        _append(spans, span)
            done[i] = (list(accumulate((b - a for _, a, b in spans), initial=0)), spans)
        return done[ident]


def _append(spans: list[tuple[bytes, int, int]], span: tuple[bytes, int, int]) -> None:
    if spans:
        d, a, b = spans[-1]
        if d is span[0] and b == span[1]:
            spans[-1] = (d, a, span[2])
            return
    spans.append(span)


def _cut(resolved: tuple[list[int], list[tuple[bytes, int, int]]], lo: int, hi: int) -> list[tuple[bytes, int, int]]:
    """The spans covering bytes [lo, hi) of a resolved body."""
    starts, spans = resolved
    out = []
    i = bisect_right(starts, lo) - 1
    while lo < hi and i < len(spans):
        d, a, b = spans[i]
        begin = a + (lo - starts[i])
        end = min(b, a + (hi - starts[i]))
        if end > begin:
            out.append((d, begin, end))
        lo = starts[i + 1]
        i += 1
    return out
