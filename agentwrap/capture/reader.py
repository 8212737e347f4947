"""Read a capture bundle back: header, exchanges with all four legs, footer.

A bundle cut short (agentwrap killed, disk full) reads as `complete=False`
up to its last whole item; only a file whose header cannot be read, a
foreign file, a corrupt item or a newer format version raise
`BundleFormatError`, with one line naming the file and the problem. Older
format versions are upgraded step by step through `_UPGRADES`.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from typing import Any

import cbor2

from agentwrap.capture.bundle import Body, Bundle, Chunk, ErrorRecord, Exchange, HttpRequest, HttpResponse, RouteRecord
from agentwrap.capture.dedup import Expander
from agentwrap.capture.delta import DeltaBodies
from agentwrap.capture.writer import FORMAT_NAME, FORMAT_VERSION, LOCATOR, MAGIC
from agentwrap.errors import BundleFormatError, CaptureError

__all__ = [
    "Body", "Bundle", "Chunk", "ErrorRecord", "Exchange", "HttpRequest", "HttpResponse", "RouteRecord",
    "read_bundle", "read_header_footer",
]


def _upgrade_1_to_2(items: list[dict]) -> list[dict]:
    """Version 2 stores bodies as parts of earlier bodies (`{"id", "parts"}`) where version 1
    stored JSON values (`{"json", "style"}` with `blob` and `list` items). Nothing else
    changed, and this reader resolves both kinds of body, so version 1 items are read as
    they are (a version 1 reader would misread version 2 bodies: hence the new version)."""
    return items


# version -> function turning that version's items into the next version's.
_UPGRADES: dict[int, Callable[[list[dict]], list[dict]]] = {1: _upgrade_1_to_2}
ZERO_TAIL_BYTES = 16
_MAX_DEPTH = 2048  # JSON bodies nest deeper than cbor2's default limit of 400


def _decoder(fp: Any) -> cbor2.CBORDecoder:
    try:
        return cbor2.CBORDecoder(fp, max_depth=_MAX_DEPTH)
    except TypeError:  # cbor2 releases without the max_depth option
        return cbor2.CBORDecoder(fp)


def _check_header(item: Any, path: str) -> int:
    if not isinstance(item, dict) or item.get("t") != "header" or item.get("format") != FORMAT_NAME:
        raise BundleFormatError(f"{path}: not an agentwrap bundle (no bundle header)")
    version = item.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise BundleFormatError(f"{path}: bundle header has an invalid version {version!r}")
    if version > FORMAT_VERSION:
        raise BundleFormatError(
            f"{path}: bundle format version {version} is newer than this agentwrap reads ({FORMAT_VERSION}); "
            "upgrade agentwrap to read it"
        )
    return version


def _upgrade(items: list[dict], version: int, path: str) -> list[dict]:
    while version < FORMAT_VERSION:
        step = _UPGRADES.get(version)
        if step is None:
            raise BundleFormatError(f"{path}: bundle format version {version} cannot be upgraded by this agentwrap")
        items = step(items)
        version += 1
    return items


def _decode_items(data: bytes, path: str) -> tuple[list[tuple[int, Any]], bool]:
    """(offset, item) pairs and whether the file ends inside an item."""
    if not data.startswith(MAGIC):
        if MAGIC.startswith(data):
            raise BundleFormatError(f"{path}: bundle cut short inside its header")
        raise BundleFormatError(f"{path}: not an agentwrap bundle (no bundle header)")
    # After a power loss some file systems leave the tail zero-filled; no bundle
    # ends in a run of zeros this long (the footer locator ends in its offset).
    end = len(data.rstrip(b"\0"))
    zero_tail = len(data) - end >= ZERO_TAIL_BYTES
    if zero_tail:
        data = data[:end]
    fp = io.BytesIO(data)
    fp.seek(len(MAGIC))
    dec = _decoder(fp)
    items: list[tuple[int, Any]] = []
    while (pos := fp.tell()) < len(data):
        try:
            item = dec.decode()
        except cbor2.CBORDecodeEOF:
            return items, True
        except (cbor2.CBORDecodeError, ValueError, TypeError, RecursionError, OverflowError) as exc:
            if not items:
                raise BundleFormatError(f"{path}: not an agentwrap bundle (unreadable header: {exc})") from None
            raise BundleFormatError(f"{path}: corrupt item at byte {pos} ({exc})") from None
        items.append((pos, item))
    return items, zero_tail


def read_bundle(path: str | os.PathLike) -> Bundle:
    """Read a whole bundle. Raises `BundleFormatError` (or `CaptureError` if the file cannot be read)."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise CaptureError(f"Cannot read bundle {path}: {exc.strerror or exc}") from exc
    if not data:
        raise BundleFormatError(f"{path}: empty file, not an agentwrap bundle")
    pairs, truncated = _decode_items(data, path)
    if not pairs:
        raise BundleFormatError(f"{path}: bundle cut short inside its header")
    version = _check_header(pairs[0][1], path)
    if version < FORMAT_VERSION:
        # Upgrade steps see bundle items only (not the footer locator).
        items = _upgrade([i for _, i in pairs if isinstance(i, dict)], version, path)
        pairs = [(-1, i) for i in items]
    return _Builder(path, version).build(pairs, truncated)


class _Builder:
    def __init__(self, path: str, version: int) -> None:
        self.path = path
        self.version = version
        self.expander = Expander()
        self.deltas = DeltaBodies()
        self.exchanges: dict[int, Exchange] = {}
        self.errors: list[ErrorRecord] = []
        self.guards: list[dict] = []
        self.other: list[dict] = []
        self.footer: dict | None = None

    def build(self, pairs: list[tuple[int, Any]], truncated: bool) -> Bundle:
        for pos, item in pairs[1:]:
            if self.footer is not None and not isinstance(item, dict):
                continue  # the footer locator
            if not isinstance(item, dict) or not isinstance(item.get("t"), str):
                raise BundleFormatError(f"{self.path}: corrupt item at byte {pos} (not a bundle item)")
            try:
                handler = self._HANDLERS.get(item["t"], _Builder._unknown)
                handler(self, item)
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise BundleFormatError(f"{self.path}: corrupt {item['t']} item at byte {pos} ({exc!r})") from None
        return Bundle(
            path=self.path, header=pairs[0][1], exchanges=list(self.exchanges.values()), footer=self.footer,
            complete=self.footer is not None, errors=self.errors, guards=self.guards,
            other=self.other, version=self.version, truncated=truncated,
        )

    def _ex(self, item: dict) -> Exchange:
        xid = item["x"]
        if not isinstance(xid, int):
            raise TypeError(f"exchange id {xid!r}")
        ex = self.exchanges.get(xid)
        if ex is None:
            ex = self.exchanges[xid] = Exchange(xid)
        return ex

    def _body(self, stored: Any) -> Body:
        if not isinstance(stored, (bytes, dict)) and stored is not None:
            raise TypeError(f"body {type(stored).__name__}")
        if isinstance(stored, dict) and "parts" in stored:
            self.deltas.add(stored.get("id"), stored["parts"])  # ValueError: a corrupt item
        return Body(stored, self.expander, self.path, self.deltas)

    def _headers(self, item: dict) -> list[tuple[str, str]]:
        return [(str(n), str(v)) for n, v in item["headers"]]

    def _blob(self, item: dict) -> None:
        self.expander.add(item)

    def _request(self, item: dict) -> None:
        body = self._body(item["body"])
        self._ex(item).request = HttpRequest(item["at"], item["method"], item["target"], self._headers(item), body)

    def _route(self, item: dict) -> None:
        info = item["info"]
        if not isinstance(info, dict):
            raise TypeError(f"route info {type(info).__name__}")
        ex = self._ex(item)
        ex.routes.append(RouteRecord(item["at"], info))
        if "attempt" not in info:
            ex.route = info

    def _guard(self, item: dict) -> None:
        (self._ex(item).guards if item.get("x") is not None else self.guards).append(item["info"])

    def _upstream_request(self, item: dict) -> None:
        ex = self._ex(item)
        stored = item["body"]
        if isinstance(stored, dict) and stored.get("same_as") == "request" and ex.request is not None:
            body = ex.request.body
        else:
            body = self._body(stored)
        ex.upstream_request = HttpRequest(item["at"], item["method"], item["url"], self._headers(item), body)
        ex.upstream_requests.append(ex.upstream_request)

    def _upstream_response(self, item: dict) -> None:
        ex = self._ex(item)
        ex.upstream_response = HttpResponse(item["at"], item["status"], self._headers(item))
        ex.upstream_responses.append(ex.upstream_response)

    def _chunk(self, item: dict) -> None:
        self._ex(item).chunks.append(Chunk(item["at"], bytes(item["data"])))

    def _chunks(self, item: dict) -> None:
        # A batch of upstream pieces: split back by the recorded sizes. Redaction may
        # have changed the length (or held a tail back for the next item), so the
        # last piece takes whatever is left.
        data = bytes(item["data"])
        ats, sizes = list(item.get("ats") or [item["at"]]), list(item.get("sizes") or [len(data)])
        chunks = self._ex(item).chunks
        pos = 0
        for i, at in enumerate(ats):
            end = len(data) if i == len(ats) - 1 else min(pos + (sizes[i] if i < len(sizes) else 0), len(data))
            chunks.append(Chunk(at, data[pos:end]))
            pos = end

    def _agent_response(self, item: dict) -> None:
        body = self._body(item["body"]) if "body" in item else None
        self._ex(item).agent_response = HttpResponse(item["at"], item["status"], self._headers(item), body)

    def _agent_chunk(self, item: dict) -> None:
        data = bytes(item["data"])
        chunks = self._ex(item).agent_chunks
        ats = item.get("ats")
        if not ats:
            chunks.append(Chunk(item["at"], data, item.get("after", 0)))
            return
        # A batch of agent pieces (a translated stream): split back as `_chunks` does.
        sizes, afters = list(item.get("sizes") or []), list(item.get("afters") or [])
        pos = 0
        for i, at in enumerate(ats):
            end = len(data) if i == len(ats) - 1 else min(pos + (sizes[i] if i < len(sizes) else 0), len(data))
            chunks.append(Chunk(at, data[pos:end], afters[i] if i < len(afters) else item.get("after", 0)))
            pos = end

    def _error(self, item: dict) -> None:
        rec = ErrorRecord(item["at"], str(item["kind"]), str(item["message"]))
        (self._ex(item).errors if item.get("x") is not None else self.errors).append(rec)

    def _end(self, item: dict) -> None:
        self._ex(item).end_ns = item["at"]

    def _footer(self, item: dict) -> None:
        self.footer = item

    def _header(self, item: dict) -> None:
        raise ValueError("a second header")

    def _unknown(self, item: dict) -> None:
        # Newer writers of the same version may add item types; keep them, do not fail.
        if isinstance(item.get("x"), int):
            self._ex(item).other.append(item)
        else:
            self.other.append(item)

    _HANDLERS: dict[str, Callable[[_Builder, dict], None]] = {
        "blob": _blob, "list": _blob, "request": _request, "route": _route, "guard": _guard,
        "upstream_request": _upstream_request, "upstream_response": _upstream_response, "chunk": _chunk, "chunks": _chunks,
        "agent_response": _agent_response, "agent_chunk": _agent_chunk, "error": _error, "end": _end,
        "footer": _footer, "header": _header,
    }


def read_header_footer(path: str | os.PathLike) -> tuple[dict, dict | None]:
    """Read only the header and (through the footer locator) the footer; None if the run is incomplete."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if f.read(len(MAGIC)) != MAGIC:
                raise BundleFormatError(f"{path}: not an agentwrap bundle (no bundle header)")
            try:
                header = _decoder(f).decode()
            except (cbor2.CBORDecodeError, ValueError, TypeError, RecursionError) as exc:
                raise BundleFormatError(f"{path}: unreadable bundle header ({exc})") from None
            version = _check_header(header, path)
            header_end = f.tell()
            footer = None
            if size - header_end >= LOCATOR.size:
                f.seek(size - LOCATOR.size)
                tag, offset = LOCATOR.unpack(f.read(LOCATOR.size))
                if tag == 0x1B and header_end <= offset < size - LOCATOR.size:
                    f.seek(offset)
                    try:
                        item = _decoder(f).decode()
                    except (cbor2.CBORDecodeError, ValueError, TypeError, RecursionError):
                        item = None
                    if isinstance(item, dict) and item.get("t") == "footer" and f.tell() == size - LOCATOR.size:
                        footer = item
    except OSError as exc:
        raise CaptureError(f"Cannot read bundle {path}: {exc.strerror or exc}") from exc
    if version < FORMAT_VERSION:
        items = _upgrade([header] + ([footer] if footer else []), version, path)
        header, footer = items[0], (items[1] if len(items) > 1 else None)
    return header, footer
