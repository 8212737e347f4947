"""The capture addon: a `Recorder` fed by the proxy's flow hooks and drained by its event loop.

I/O shell (files through the recorder; the event loop's timers). Each hook
turns what a flow did into the recorder's calls, keyed by the flow's exchange
id. On the first hook the addon finds the running loop and takes over the
recorder's draining (`Recorder.drive_from_loop`, `LoopDrainer`): the queue
is drained in slices of `DRAIN_SLICE_S`, each followed by the loop's other
work, in loop turns that happen anyway where possible (a timed wake-up is
what costs most here). A request goes upstream before its capture costs
anything; an exchange is drained when it ends, after the agent has its
answer.
"""

from __future__ import annotations

import asyncio

from agentwrap.capture.recorder import WRITE_INTERVAL_S, Headers, Recorder

__all__ = ["Capture", "LoopDrainer", "DRAIN_SLICE_S"]

DRAIN_SLICE_S = 0.0005  # the longest the loop works on capture before serving sockets again
STREAM_WAIT_S = 0.05  # the longest a queued stream piece waits for a drain (docs/reliability.md)
OTHER_WAIT_S = 1.0  # the longest anything else waits (a request whose answer is slow to start)


class LoopDrainer:
    """Drains a `Recorder` from an event loop, in the loop's own wake-ups where it can.

    A timed wake-up costs ~0.1-0.2 ms of CPU on a sandboxed kernel (a loop's or a
    thread's alike), more than draining a Claude-Code-shaped request pair. So after
    something is queued (`kick`, on the loop's thread) the drain runs in the first loop
    turn that happens anyway `WRITE_INTERVAL_S` or more later (the next stream piece or
    request); only when none comes does a timer drain it: `STREAM_WAIT_S` after the
    first queued stream piece (what a kill -9 may lose is bounded by that),
    `OTHER_WAIT_S` after anything else. `ended` drains on the loop's next turn (the
    agent has its answer). Encoded bytes are written at most every `WRITE_INTERVAL_S`
    (at once after a quiet spell), so back-to-back requests share system calls; bytes
    held back go with a later drain, or with a timer `STREAM_WAIT_S` after the last
    write when none comes.
    """

    __slots__ = ("recorder", "loop", "since", "timer", "soon")

    def __init__(self, recorder: Recorder, loop: asyncio.AbstractEventLoop) -> None:
        self.recorder = recorder
        self.loop = loop
        self.since: float | None = None  # loop time of the first item queued since the last drain
        self.timer: asyncio.TimerHandle | None = None  # the fallback drain
        self.soon: asyncio.Handle | None = None  # a drain on the loop's next turn
        recorder.drive_from_loop()

    def request(self) -> None:
        """A request was queued: it waits for the answer to start, or OTHER_WAIT_S."""
        self.kick()

    def ended(self) -> None:
        """An exchange ended: drain on the loop's next turn, after the agent has its answer.

        (Tried: when requests come faster than one per WRITE_INTERVAL_S, leaving the
        drain for a later turn with the others. On one CPU that moved capture's cost
        from every answer, +0.05-0.1 ms at the median, to the answers overlapping a
        batch: p99 +2.7-3.5 ms instead of +0.9-1.3 ms. Not kept.)"""
        self.flush()

    def kick(self, stream: bool = False) -> None:
        """Something was queued (a stream piece if `stream`)."""
        if self.soon is not None:
            return
        now = self.loop.time()
        since = self.since
        if since is None:
            self.since = since = now
        elif now - since >= WRITE_INTERVAL_S:
            self.soon = self.loop.call_soon(self._tick)
            return
        self._arm(since + (STREAM_WAIT_S if stream else OTHER_WAIT_S))

    def flush(self) -> None:
        if self.soon is None:
            if self.since is None:
                self.since = self.loop.time()
            self.soon = self.loop.call_soon(self._tick)

    def _arm(self, when: float) -> None:
        timer = self.timer
        if timer is None or timer.when() > when:
            if timer is not None:
                timer.cancel()
            self.timer = self.loop.call_at(when, self._tick)

    def _tick(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.soon = None
        rec = self.recorder
        if rec._off:
            return  # closed (its thread writes the rest) or failed
        if rec.drain(DRAIN_SLICE_S):
            self.soon = self.loop.call_soon(self._tick)  # more: after the loop's other work
            return
        self.since = None
        due = rec.write_due  # bytes held back to share a write with the next ones
        if due is not None:
            # A later drain writes them once they are due; the timer only fires when no
            # drain comes (the traffic stopped), within the bound for stream pieces.
            self._arm(due + STREAM_WAIT_S - WRITE_INTERVAL_S)


class _NoLoop:
    """Before a hook has run on a loop (or without one): the recorder's thread drains."""

    soon = True

    def kick(self, stream: bool = False) -> None:
        pass

    request = ended = flush = kick


class Capture:
    """A `Recorder` as a proxy addon: records every flow, whatever its backend.

    What the agent got is recorded only where it differs from the upstream
    leg (docs/bundle-format.md, "the agent leg"): agentwrap's own answers
    (`agent_response` with the body, at `done`), a re-encoded stream's head
    (`agent_response` without a body, when it starts streaming) and pieces
    (`agent_chunk`). A flow's notes become `guard` items at its next recorded
    step. The per-piece hooks (`chunk`, `agent_chunk`) enqueue directly: they
    run once per upstream piece.
    """

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        self._noted: dict[int, int] = {}  # exchange id -> notes written
        # What the per-piece hooks need, bound once (all fixed for the recorder's life).
        self._put, self._clock, self._t0 = recorder._put, recorder._clock, recorder._t0
        self._drainer: LoopDrainer | _NoLoop = _NoLoop()
        self._on_loop = False

    def _attach(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # hooks called without a loop: the recorder's thread drains
            return
        self._drainer = LoopDrainer(self.recorder, loop)
        self._on_loop = True

    def _notes(self, flow) -> None:
        done = self._noted.get(flow.xid, 0)
        if len(flow.notes) > done:
            for info in flow.notes[done:]:
                self.recorder.guard(flow.xid, info)
            self._noted[flow.xid] = len(flow.notes)

    # -- hooks -------------------------------------------------------------------------

    def request(self, flow) -> None:
        if not self._on_loop:
            self._attach()
        self.recorder.exchange(flow.method.decode("latin-1"), flow.target.decode("latin-1"), flow.headers, flow.body,
                               flow.xid, wake=not self._on_loop)
        self._notes(flow)
        self._drainer.request()

    def route(self, flow) -> None:
        self._notes(flow)
        if not flow.attempts:
            d, model = flow.decision, flow.model
            self.recorder.route(flow.xid, {"backend": d.backend, "model": d.model or model, "requested_model": model,
                                           "reason": d.reason, "fallbacks": list(d.fallbacks)})
        else:
            attempt, outcome, verdict = flow.attempts[-1]
            if len(flow.plan.chain) > 1 or verdict.action != "done":
                self.recorder.route(flow.xid, {"attempt": attempt.number, "backend": attempt.backend,
                                               "outcome": outcome.describe(), "decision": verdict.action, "why": verdict.reason})
        self._drainer.kick()

    def upstream_request(self, flow, leg) -> None:
        self._notes(flow)
        self.recorder.upstream_request(flow.xid, leg.method, leg.url, leg.headers, leg.body)
        self._drainer.kick()

    def upstream_response(self, flow, status: int, headers: Headers) -> None:
        self.recorder.upstream_response(flow.xid, status, headers)
        self._drainer.kick(True)

    def chunk(self, flow, data: bytes) -> None:
        if not self.recorder._off:
            self._put(("chunk", flow.xid, self._clock() - self._t0, data if type(data) is bytes else bytes(data)))
            if self._drainer.soon is None:
                self._drainer.kick(True)

    def agent_chunk(self, flow, data: bytes) -> None:
        if not self.recorder._off:
            self._put(("agent_chunk", flow.xid, self._clock() - self._t0, data if type(data) is bytes else bytes(data)))
            if self._drainer.soon is None:
                self._drainer.kick(True)

    def error(self, flow, kind: str, message: str) -> None:
        self.recorder.error(flow.xid if flow is not None else None, kind, message)
        self._drainer.kick()

    def agent_head(self, flow) -> None:
        response = flow.response
        if response is not None:
            self.recorder.agent_response(flow.xid, response.status, response.headers)
            if self._drainer.soon is None:
                self._drainer.kick(True)

    def done(self, flow) -> None:
        self._notes(flow)
        self._noted.pop(flow.xid, None)
        response = flow.response
        if response is not None and not response.relayed and isinstance(response.body, (bytes, bytearray)):
            self.recorder.agent_response(flow.xid, response.status, response.headers, response.body)
        self.recorder.end(flow.xid)
        self._drainer.ended()
