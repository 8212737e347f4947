"""Version 1 bodies, read side: JSON values stored with content-addressed blobs and list chains.

Sans-IO. Bundles of format version 1 stored a JSON object body as its value
with references in it (a 16-byte CBOR byte string, which plain JSON can never
contain): each conversation element and each long top-level value was a
`blob` item, each conversation array a `list` item naming the longest prefix
stored before (`base`, `base_len`) plus its new elements, and long strings
inside new blobs were blobs of their own. `{"json": value, "style": s}` said
how to rebuild the body's bytes (docs/bundle-format.md, "Version 1 bodies").
Version 2 writers store bytes instead (`capture/delta.py`); this module keeps
version 1 bundles readable.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["STYLES", "Expander", "serialise"]

# How a body's bytes are rebuilt from its JSON value. "compact" is what
# JavaScript's JSON.stringify, serde_json and agentwrap's own rewrites emit.
STYLES: dict[str, dict[str, Any]] = {
    "compact": {"ensure_ascii": False, "separators": (",", ":")},
    "compact_ascii": {"ensure_ascii": True, "separators": (",", ":")},
    "python": {"ensure_ascii": True, "separators": (", ", ": ")},
    "spaced": {"ensure_ascii": False, "separators": (", ", ": ")},
}
_CANON = STYLES["compact"]


def serialise(value: Any, style: str | None) -> bytes:
    """Bytes of a JSON value in a recorded style (unknown or None: compact)."""
    return json.dumps(value, **STYLES.get(style or "compact", _CANON)).encode("utf-8", "surrogatepass")


class Expander:
    """Resolve references in stored values against the blob and list items of a bundle.

    Expanded values are shared between bodies (memoised): treat them as read-only.
    Raises `KeyError` with the missing id when a reference does not resolve.
    """

    def __init__(self) -> None:
        self.blobs: dict[bytes, Any] = {}
        self.lists: dict[bytes, tuple[bytes | None, int, list]] = {}
        self._memo: dict[bytes, Any] = {}

    def add(self, item: dict) -> None:
        if item["t"] == "blob":
            self.blobs[item["id"]] = item["v"]
        else:
            self.lists[item["id"]] = (item.get("base"), item.get("base_len", 0), item["items"])

    def expand(self, value: Any) -> Any:
        if isinstance(value, bytes):
            return self.resolve(value)
        if isinstance(value, dict):
            return {k: self.expand(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.expand(v) for v in value]
        return value

    def resolve(self, ident: bytes) -> Any:
        if ident in self._memo:
            return self._memo[ident]
        if ident in self.blobs:
            result = self.expand(self.blobs[ident])
            self._memo[ident] = result
            return result
        # A list node: walk its base chain iteratively (a long session's chain is
        # deeper than Python's stack), then build the lists from the oldest up.
        pending: list[bytes] = []
        cur: bytes | None = ident
        while cur is not None and cur not in self._memo:
            if cur not in self.lists:
                raise KeyError(cur)
            pending.append(cur)
            cur = self.lists[cur][0]
        for node in reversed(pending):
            base, base_len, items = self.lists[node]
            head = self._memo[base][:base_len] if base is not None else []
            self._memo[node] = head + [self.expand(v) for v in items]
        return self._memo[ident]
