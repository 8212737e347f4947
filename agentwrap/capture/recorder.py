"""The proxy's capture tap: cheap calls on the proxy thread, the work done in batches.

Every `Recorder` method called from the proxy only reads the clock and
appends a tuple to a `collections.deque` (atomic under the GIL). What queues
up is redacted, deduplicated and encoded (`BundleEncoder`) in batches by
`drain()`, and appended to the bundle file with one plain `os.write` per
batch: after `kill -9` of agentwrap the file holds every item queued more
than about `WRITE_INTERVAL_S` before. The footer is followed by `fsync`.

Who drains: in a proxy, the proxy's own event loop (`capture.addon.Capture`
calls `drive_from_loop()`, then `drain()` from a timer `WRITE_INTERVAL_S`
after something was queued, in slices of about a millisecond). A thread that
sleeps until woken costs ~0.2 ms of CPU per wake-up on a sandboxed kernel,
more than a whole Claude-Code-shaped request pair's encoding; a timer on a
loop that is awake anyway costs nothing, and the loop never waits for the
GIL. Otherwise (a recorder used without an event loop) a writer thread
drains: every `WRITE_INTERVAL_S` while an exchange is open; with none open it
sleeps until the next exchange wakes it. Either way the writer thread writes
what is left at `close()`.

A failure to write (disk full, file deleted, an encoding bug) is reported
once through `on_error` (on the thread that drained) and capture stops;
nothing ever raises into the proxy.
"""

from __future__ import annotations

import itertools
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable

from agentwrap.capture.writer import BundleEncoder
from agentwrap.errors import CaptureError
from agentwrap.files import open_private, write_all

__all__ = ["Recorder", "create_private_file"]


FLUSH_BYTES = 256 * 1024  # write out early when a burst of items piles up this much
WRITE_INTERVAL_S = 0.025  # while an exchange is open (docs/reliability.md: what a kill -9 may lose)
IDLE_WAIT_S = 1.0  # with none open: items outside exchanges (run-level errors) wait at most this
DELETED_CHECK_S = 1.0  # a deleted bundle file is noticed within this (and always at close)
_STOP = ("stop",)

Headers = list[tuple[bytes, bytes]]


def create_private_file(path: str) -> int:
    """Create `path` (never overwriting) readable by the user only; return its descriptor.

    Raises `CaptureError` naming the path when it cannot be created.
    """
    try:
        return open_private(path, exclusive=True, append=True)
    except OSError as exc:
        raise CaptureError(
            f"Cannot create capture bundle {path}: {exc.strerror or exc}. "
            "Choose another directory with --capture-dir, or run with --no-capture."
        ) from exc


class Recorder:
    """Record one run's exchanges into a bundle file at `path`.

    The file is created (0600, parent directories 0700) and the header item
    written before `__init__` returns; raises `CaptureError` if that fails.
    Methods are safe to call from any thread and never raise; after `close()`
    or a write failure they do nothing.
    """

    def __init__(
        self,
        path: str,
        header: dict,
        secret_values: Iterable[str],
        *,
        clock_ns: Callable[[], int] = time.monotonic_ns,
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        self._path = os.fspath(path)
        self._clock = clock_ns
        self._t0 = clock_ns()
        self._on_error = on_error
        self._encoder = BundleEncoder(secret_values)
        self._failed: str | None = None
        self._off = False
        self._closed = False
        self._close_lock = threading.Lock()
        self._ids = itertools.count(1)
        self._q: deque[tuple] = deque()
        self._put = self._q.append
        # A lock as a binary semaphore: released = "wake up". Releasing a lock the
        # writer waits on costs the caller ~11 us here, setting an Event ~40 us.
        self._signal = threading.Lock()
        self._signal.acquire()
        self._idle = False  # the writer sleeps until woken (no exchange open, nothing queued)
        self._loop_mode = False  # an event loop calls drain() (drive_from_loop)
        self._drain_lock = threading.Lock()  # one drain at a time: the thread's or the loop's
        self._stopped = False  # the stop mark was written: the file is about to close
        self._done = False  # the footer was written
        self._next_check = 0.0  # when to look next whether the file was deleted (a system call)
        self._buf = bytearray()  # encoded, not yet written
        self._due = 0.0  # when what is in _buf must be written at the latest
        self._written = 0.0  # when bytes were last written
        self._fd = create_private_file(self._path)
        try:
            write_all(self._fd, self._encoder.header(header))
        except Exception as exc:
            os.close(self._fd)
            try:
                os.unlink(self._path)  # a bundle without its header is no bundle
            except OSError:
                pass
            raise CaptureError(f"Cannot write capture bundle {self._path}: {exc}") from exc
        # While the writer thread runs beside a proxy loop, the loop may wait for the GIL
        # up to the switch interval (5 ms by default); a shorter interval bounds that wait.
        if sys.getswitchinterval() > SWITCH_INTERVAL_S:
            sys.setswitchinterval(SWITCH_INTERVAL_S)
        self._thread = threading.Thread(target=self._run, name="agentwrap-capture", daemon=True)
        self._thread.start()

    @property
    def path(self) -> str:
        return self._path

    @property
    def failed(self) -> str | None:
        """The first write failure, if any."""
        return self._failed

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close({})

    # -- the tap: called on the proxy thread; enqueue only ---------------------------

    def _now(self) -> int:
        return self._clock() - self._t0

    def exchange(self, method: str, target: str, headers: Headers, body: bytes, xid: int | None = None,
                 *, wake: bool = True) -> int:
        """The agent's request; returns the exchange id the other calls take (`xid` if given).
        It wakes a sleeping writer thread unless `wake` is False (a loop drains instead)."""
        if xid is None:
            xid = next(self._ids)
        if not self._off:
            self._put(("request", xid, self._now(), method, target, tuple(headers), _b(body)))
            if wake and self._idle:
                self.wake_writer()
        return xid

    @property
    def writer_idle(self) -> bool:
        """True while the writer sleeps until woken (`wake_writer`)."""
        return self._idle

    def wake_writer(self) -> None:
        try:
            self._signal.release()
        except RuntimeError:  # already released: the writer will wake anyway
            pass

    def route(self, xid: int, info: dict) -> None:
        if not self._off:
            self._put(("route", xid, self._now(), info))

    def guard(self, xid: int | None, info: dict) -> None:
        """A guard changed the stream or refused a request: what and why."""
        if not self._off:
            self._put(("guard", xid, self._now(), info))

    def upstream_request(self, xid: int, method: str, url: str, headers: Headers, body: bytes) -> None:
        if not self._off:
            self._put(("upstream_request", xid, self._now(), method, url, tuple(headers), _b(body)))

    def upstream_response(self, xid: int, status: int, headers: Headers) -> None:
        if not self._off:
            self._put(("upstream_response", xid, self._now(), status, tuple(headers)))

    def chunk(self, xid: int, data: bytes) -> None:
        """One upstream body piece, as forwarded."""
        if not self._off:
            self._put(("chunk", xid, self._clock() - self._t0, data if type(data) is bytes else bytes(data)))

    def agent_response(self, xid: int, status: int, headers: Headers, body: bytes | None = None) -> None:
        """What the agent got where it differs from upstream (local errors, scripted answers)."""
        if not self._off:
            self._put(("agent_response", xid, self._now(), status, tuple(headers), None if body is None else _b(body)))

    def agent_chunk(self, xid: int, data: bytes) -> None:
        """A piece the agent got that upstream did not send (e.g. an appended error event)."""
        if not self._off:
            self._put(("agent_chunk", xid, self._now(), _b(data)))

    def error(self, xid: int | None, kind: str, message: str) -> None:
        if not self._off:
            self._put(("error", xid, self._now(), str(kind), str(message)))

    def end(self, xid: int) -> None:
        """The exchange is finished: a flush point."""
        if not self._off:  # no wake-up: the next drain (at most WRITE_INTERVAL_S away) takes it
            self._put(("end", xid, self._now()))

    def close(self, footer: dict | None = None) -> None:
        """Write the footer (with computed totals), fsync, stop the writer. Idempotent."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        running = not self._off
        self._off = True  # later calls from the proxy thread are dropped, never written after the footer
        if running:
            self._put(("footer", self._now(), dict(footer or {})))
        self._put(_STOP)
        self.wake_writer()
        self._thread.join()
        os.close(self._fd)

    # -- writing: the writer thread, or the proxy's event loop --------------------------

    def drive_from_loop(self) -> None:
        """From now on `drain()` is called regularly on the caller's event loop (see
        `capture.addon.Capture`): the writer thread only writes what is left at `close()`."""
        self._loop_mode = True
        self._idle = False  # nobody needs to wake the thread before close()

    def drain(self, budget_s: float | None = None) -> bool:
        """Encode and write what is queued, on the calling thread, stopping after about
        `budget_s` of work; True when items are left for another call. Never raises."""
        if not self._drain_lock.acquire(False):
            return True  # the writer thread is at it (close): try again later
        try:
            return self._drain(budget_s, coalesce=True) == _MORE
        finally:
            self._drain_lock.release()

    @property
    def write_due(self) -> float | None:
        """When bytes that `drain()` encoded but held back are due (`time.monotonic`), if any."""
        return self._due if self._buf else None

    def _run(self) -> None:
        timeout: float | None = WRITE_INTERVAL_S
        while True:
            # Taking the signal before draining: a wake-up after this point is not lost.
            if timeout is None:
                self._signal.acquire()
            elif timeout:
                self._signal.acquire(timeout=timeout)
            else:
                self._signal.acquire(False)
            if not self._loop_mode:
                self._idle = False
            with self._drain_lock:
                if self._drain(None) == _STOPPED or self._failed:
                    return  # after a failure nothing more is written
            if self._loop_mode:
                timeout = None  # until close() wakes it
            elif self._encoder.exchanges_open:
                timeout = WRITE_INTERVAL_S
            else:
                # Nothing open: sleep until the next exchange wakes us. Announce it first,
                # then look again: an item queued in between is either seen here or
                # followed by a wake-up.
                self._idle = True
                timeout = 0.0 if self._q else IDLE_WAIT_S

    def _drain(self, budget_s: float | None, coalesce: bool = False) -> int:
        """Encode and write queued items (the caller holds `_drain_lock`): `_DONE`, `_MORE`
        (the budget ran out) or `_STOPPED` (the stop mark was reached, or capture failed).

        With `coalesce`, bytes are written at most every WRITE_INTERVAL_S (at once after a
        quiet spell): under back-to-back requests one system call serves many; `write_due`
        says when held bytes must go."""
        if self._stopped:
            return _STOPPED
        enc = self._encoder
        q = self._q
        take = q.popleft
        clock = time.monotonic
        buf = self._buf  # kept between drains: a drain cut short by its budget writes later
        ended = False
        until = clock() + budget_s if budget_s is not None else None
        try:
            while q:
                op = take()
                kind = op[0]
                if kind == "chunk" and q and q[0][0] == "chunk" and q[0][1] == op[1]:
                    # A run of chunks of one exchange becomes one item: one redaction
                    # pass and one CBOR encoding per batch instead of per event, which is
                    # what keeps capture from competing with the proxy per event.
                    ats, datas, size = [op[2]], [op[3]], len(op[3])
                    while q and q[0][0] == "chunk" and q[0][1] == op[1] and len(datas) < MAX_BATCH_CHUNKS and size < FLUSH_BYTES:
                        nxt = take()
                        ats.append(nxt[2])
                        datas.append(nxt[3])
                        size += len(nxt[3])
                    op = ("chunks", op[1], ats, datas)
                elif kind in _STREAM_KINDS and q and q[0][0] in _STREAM_KINDS and q[0][1] == op[1]:
                    # A translated stream alternates upstream chunks and agent chunks:
                    # the run becomes one batch of each (agent pieces keep their place
                    # as the number of upstream pieces before each).
                    run = [op]
                    size = len(op[3])
                    while q and q[0][0] in _STREAM_KINDS and q[0][1] == op[1] and len(run) < MAX_BATCH_CHUNKS and size < FLUSH_BYTES:
                        run.append(take())
                        size += len(run[-1][3])
                    op = ("stream_run", op[1], run)
                if kind == "stop":
                    self._write(buf)
                    self._stopped = True
                    return _STOPPED
                if kind == "footer":
                    if os.fstat(self._fd).st_nlink == 0:
                        raise _Deleted
                    buf += enc.footer(op[1], op[2])
                    self._write(buf)
                    os.fsync(self._fd)
                    self._done = True
                elif not self._done:
                    if not buf:  # a long drain of a steady producer still writes
                        self._due = max(clock(), self._written + WRITE_INTERVAL_S) if coalesce else clock() + WRITE_INTERVAL_S
                    buf += enc.encode(op)
                    if kind == "end":
                        ended = True
                    if len(buf) >= FLUSH_BYTES or clock() >= self._due:
                        self._write(buf)
                if until is not None and clock() >= until:
                    break
            if buf and not q and (not coalesce or clock() >= self._due):
                self._write(buf)  # one write per drained queue: a system call is not cheap
            if ended and clock() >= self._next_check:
                if os.fstat(self._fd).st_nlink == 0:
                    raise _Deleted
                self._next_check = clock() + DELETED_CHECK_S
        except _Deleted:
            self._fail("the bundle file was deleted")
        except OSError as exc:
            self._fail(exc.strerror or str(exc))
        except Exception as exc:  # an encoding bug: report it rather than run on unrecorded
            self._fail(f"internal error {type(exc).__name__}: {exc}")
        return _MORE if q else _DONE

    def _write(self, buf: bytearray) -> None:
        if buf:
            write_all(self._fd, buf)
            buf.clear()
            self._written = time.monotonic()

    def _fail(self, reason: str) -> None:
        self._off = True
        self._q.clear()  # what is still queued will never be written
        self._failed = f"capture to {self._path} stopped: {reason}"
        if self._on_error is not None:
            try:
                self._on_error(self._failed)
            except Exception:
                pass


MAX_BATCH_CHUNKS = 512
_STREAM_KINDS = ("chunk", "agent_chunk")
_DONE, _MORE, _STOPPED = 0, 1, 2
SWITCH_INTERVAL_S = 0.0005


class _Deleted(Exception):
    pass


def _b(data: bytes) -> bytes:
    return data if type(data) is bytes else bytes(data or b"")


def __getattr__(name: str):
    # The proxy addon (`Capture`) lives in capture/addon.py; it is imported from here too.
    if name == "Capture":
        from agentwrap.capture.addon import Capture

        return Capture
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
