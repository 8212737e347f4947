"""Store repeated request content once: content-addressed blobs and list chains.

Sans-IO. Theory of operation: agents resend the whole conversation, system
prompt and tool list with every request, so a naive recording grows with the
square of the session. A JSON request body is therefore stored as its object
with three kinds of values replaced by references (a CBOR byte string, which
plain JSON can never contain, is always a reference):

- each element of the conversation array (`messages`, `input`, `contents`)
  becomes a *blob* keyed by the hash of its compact JSON, and the array itself
  becomes a *list node* that names the longest prefix of any array stored
  before (`base`, `base_len`) and appends only the new elements: when the
  newest element changes between turns, everything before it is still reused;
- any other top-level value of at least `BLOB_MIN_CHARS` of JSON (tools,
  system prompt, instructions) becomes a blob;
- inside a newly stored blob, every string of at least `STRING_BLOB_MIN_CHARS`
  becomes a blob of its own, so a message re-sent with one small change
  (Claude Code moves `cache_control` to the newest message every turn) costs
  its structure, not its text again.

The same rules apply to a nested `request` object (Gemini Code Assist wraps
the generateContent body in one). Ids are 16-byte BLAKE2b digests; a list
node's id is a hash chained over its element ids, so equal arrays share one
node whatever order requests came in. Everything a stored body references is
emitted before it, so a bundle cut anywhere resolves every complete item.
"""

from __future__ import annotations

import json
from hashlib import blake2b
from typing import Any

__all__ = [
    "BLOB_MIN_CHARS",
    "STRING_BLOB_MIN_CHARS",
    "JSON_MIN_BODY_BYTES",
    "CONVERSATION_KEYS",
    "STYLES",
    "BodyCompactor",
    "Expander",
    "serialise",
]

BLOB_MIN_CHARS = 256
STRING_BLOB_MIN_CHARS = 256
INLINE_MAX_CHARS = 64  # conversation elements this small stay inline in their list node
JSON_MIN_BODY_BYTES = 512  # smaller bodies are cheaper stored raw
# Deeper bodies are stored raw, so reading never meets Python's recursion limit
# (real request bodies nest about 10 deep; tool schemas a little more).
MAX_JSON_DEPTH = 128
CONVERSATION_KEYS = frozenset({"messages", "input", "contents"})
NESTED_KEYS = frozenset({"request"})
ID_BYTES = 16
_LIST_ROOT = blake2b(b"", digest_size=ID_BYTES, person=b"agentwrap-list").digest()

# How a body's bytes are rebuilt from its JSON value. "compact" is what
# JavaScript's JSON.stringify, serde_json and agentwrap's own rewrites emit.
STYLES: dict[str, dict[str, Any]] = {
    "compact": {"ensure_ascii": False, "separators": (",", ":")},
    "compact_ascii": {"ensure_ascii": True, "separators": (",", ":")},
    "python": {"ensure_ascii": True, "separators": (", ", ": ")},
    "spaced": {"ensure_ascii": False, "separators": (", ", ": ")},
}
_CANON = STYLES["compact"]


def _dumps(value: Any) -> str:
    return json.dumps(value, **_CANON)


def blob_id(canonical: str) -> bytes:
    """The id of a JSON value from its compact JSON text (strict UTF-8: lone surrogates raise)."""
    return blake2b(canonical.encode("utf-8"), digest_size=ID_BYTES, person=b"agentwrap-blob").digest()


def _chain(prev: bytes, element: bytes) -> bytes:
    return blake2b(prev + element, digest_size=ID_BYTES, person=b"agentwrap-list").digest()


def serialise(value: Any, style: str | None) -> bytes:
    """Bytes of a JSON value in a recorded style (unknown or None: compact)."""
    return json.dumps(value, **STYLES.get(style or "compact", _CANON)).encode("utf-8", "surrogatepass")


class _Fresh:
    """What encoding one body adds: items in emission order, and array prefixes."""

    __slots__ = ("items", "prefixes")

    def __init__(self) -> None:
        self.items: dict[bytes, dict] = {}
        self.prefixes: dict[bytes, tuple[bytes, int]] = {}


class BodyCompactor:
    """Turn request bodies into stored form, remembering what is already stored.

    `encode(raw, out)` returns bytes (stored raw) or `{"json": value, "style": s}`
    and appends the blob and list items the value needs to `out`.
    """

    def __init__(self) -> None:
        self._stored: set[bytes] = set()  # ids of blobs and list nodes already emitted
        # chained hash of every array prefix stored so far -> (list node holding it, its length)
        self._prefixes: dict[bytes, tuple[bytes, int]] = {}

    def encode(self, raw: bytes, out: list[dict]) -> bytes | dict:
        if len(raw) < JSON_MIN_BODY_BYTES or raw[:1] != b"{":
            return raw
        try:
            obj = json.loads(raw)
        except (ValueError, RecursionError):
            return raw
        if not isinstance(obj, dict):
            return raw
        fresh = _Fresh()
        try:
            stored, text = self._object(obj, fresh, nested=True)
            data = text.encode("utf-8")
        except (UnicodeEncodeError, RecursionError, ValueError):
            # Lone surrogates cannot be CBOR text; odd depth: keep the bytes as they came.
            return raw
        style = "compact" if data == raw else _find_style(obj, raw)
        # Committed only now: a body that fell back to raw must not leave ids behind.
        self._prefixes.update(fresh.prefixes)
        self._stored.update(fresh.items)
        out.extend(fresh.items.values())
        return {"json": stored, "style": style}

    def _object(self, obj: dict, fresh: _Fresh, nested: bool) -> tuple[dict, str]:
        stored: dict = {}
        parts: list[str] = []
        for key, value in obj.items():
            if key in CONVERSATION_KEYS and isinstance(value, list):
                sv, text = self._conversation(value, fresh)
            elif nested and key in NESTED_KEYS and isinstance(value, dict):
                sv, text = self._object(value, fresh, nested=False)
            else:
                text = _dumps(value)
                sv = self._blob(value, text, fresh) if len(text) >= BLOB_MIN_CHARS else value
            stored[key] = sv
            parts.append(_dumps(key) + ":" + text)
        return stored, "{" + ",".join(parts) + "}"

    def _known(self, ident: bytes, fresh: _Fresh) -> bool:
        return ident in self._stored or ident in fresh.items

    def _blob(self, value: Any, text: str, fresh: _Fresh) -> bytes:
        ident = blob_id(text)
        if not self._known(ident, fresh):
            inner = value if isinstance(value, str) else self._shred(value, fresh, 0)
            fresh.items[ident] = {"t": "blob", "id": ident, "v": inner}  # after its children
        return ident

    def _shred(self, value: Any, fresh: _Fresh, depth: int) -> Any:
        if isinstance(value, str):
            return self._blob(value, _dumps(value), fresh) if len(value) >= STRING_BLOB_MIN_CHARS else value
        if depth > MAX_JSON_DEPTH:
            raise ValueError("JSON nested too deep to store structured")
        if isinstance(value, dict):
            return {k: self._shred(v, fresh, depth + 1) for k, v in value.items()}
        if isinstance(value, list):
            return [self._shred(v, fresh, depth + 1) for v in value]
        return value

    def _conversation(self, elements: list, fresh: _Fresh) -> tuple[Any, str]:
        texts = [_dumps(e) for e in elements]
        text = "[" + ",".join(texts) + "]"
        if not elements:
            return [], text
        chain = [_LIST_ROOT]
        for t in texts:
            chain.append(_chain(chain[-1], blob_id(t)))
        n = len(elements)
        if self._known(chain[n], fresh):
            return chain[n], text
        k = n
        while k > 0 and chain[k] not in self._prefixes and chain[k] not in fresh.prefixes:
            k -= 1
        base, base_len = self._prefixes.get(chain[k]) or fresh.prefixes.get(chain[k]) or (None, 0)
        items = [e if len(t) <= INLINE_MAX_CHARS else self._blob(e, t, fresh) for e, t in zip(elements[k:], texts[k:])]
        node = chain[n]
        fresh.items[node] = {"t": "list", "id": node, "base": base, "base_len": base_len, "items": items}
        for i in range(k + 1, n + 1):
            fresh.prefixes[chain[i]] = (node, i)
        return node, text


def _find_style(obj: dict, raw: bytes) -> str | None:
    for name, kwargs in STYLES.items():
        if name != "compact" and json.dumps(obj, **kwargs).encode("utf-8", "surrogatepass") == raw:
            return name
    return None  # parses to the same JSON; the exact bytes are not reproducible


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
