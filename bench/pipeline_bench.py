#!/usr/bin/env python3
"""In-process cost of the stream-filter pipeline: what guards add per event.

    python bench/pipeline_bench.py [--events N] [--repeat R]

Pass-through (the agent and the upstream speak the same protocol), for a long
text answer in each protocol (the streams bench/proxy_bench.py's fake upstream
sends: Anthropic events, OpenAI Chat chunks, OpenAI Responses events with
sequence numbers, Gemini chunks with CRLF line ends and the usage on every
chunk), fed in 64 KiB pieces (a busy upstream) and one event per piece:

- raw:        the relay's own loop, no tap (what a flow without filters runs);
- tap:        `StreamTap` with no filters (framing, the lane, the decoder's state);
- +loop, +repair, +keys: the tap with that one guard (`LoopGuard`; `ToolRepair`
  with tools declared, no calls; `KeyGuard` holding one key, as in key mode);
- tap+guards: `StreamTap` with `LoopGuard` and `ToolRepair` (tools declared, no calls);
- all:        the tap with the three, as a key-mode session whose agent declares tools.

Translated (the 12 cross pairs): `StreamTranslator` without and with the same
two guards. Prints microseconds per event, best of R, and the ratio of the
guarded stream rate to the unguarded one. No sockets: the pipeline's own CPU.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from proxy_bench import chat_stream_events, gemini_stream_events, responses_stream_events, stream_events  # noqa: E402

from agentwrap.guards import LoopGuard  # noqa: E402
from agentwrap.guards.keys import KeyGuard  # noqa: E402
from agentwrap.guards.repair import ToolRepair  # noqa: E402
from agentwrap.protocols.neutral.summary import ToolSpec  # noqa: E402
from agentwrap.protocols.tap import StreamTap  # noqa: E402
from agentwrap.protocols.translate import StreamTranslator, TranslationContext  # noqa: E402

STREAMS = {
    "anthropic_messages": stream_events,
    "openai_chat": chat_stream_events,
    "openai_responses": responses_stream_events,
    "gemini": gemini_stream_events,
}
TOOLS = (
    ToolSpec("Bash", parameters={"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}),
    ToolSpec("Read", parameters={"type": "object", "properties": {"file_path": {"type": "string"}}, "required": ["file_path"]}),
    ToolSpec("Edit", parameters={"type": "object", "properties": {"file_path": {"type": "string"}, "old": {"type": "string"},
                                                                  "new": {"type": "string"}}}),
)


KEY = "sk-ant-api03-" + "x" * 80  # a key the model never writes: the key guard's common case


def guards(agent: str) -> list:
    return [LoopGuard(), ToolRepair(TOOLS, agent)]


def all_guards(agent: str) -> list:
    return [KeyGuard([KEY]), ToolRepair(TOOLS, agent), LoopGuard()]  # the order the guards addon uses


def relay(pieces: list[bytes]) -> float:
    """The raw relay's in-process work: hand each piece on (as its async generator does)."""
    out = []
    t0 = time.perf_counter()
    for piece in pieces:
        if piece:
            out.append(piece)
    return time.perf_counter() - t0


def tap(protocol: str, pieces: list[bytes], filters: list) -> tuple[float, int]:
    pipeline = StreamTap(protocol, filters)
    t0 = time.perf_counter()
    for piece in pieces:
        pipeline.feed(piece)
    pipeline.finish()
    return time.perf_counter() - t0, pipeline.lane_events


def translate(agent: str, backend: str, pieces: list[bytes], filters: list) -> tuple[float, int]:
    translator = StreamTranslator(TranslationContext(agent, backend, "agent-model", "backend-model", True, created=1), filters)
    t0 = time.perf_counter()
    for piece in pieces:
        translator.feed(piece)
    translator.finish()
    return time.perf_counter() - t0, translator.lane_events


def best(repeat: int, *variants: tuple) -> list[tuple[float, int]]:
    """Best time (and the first run's lane count) of each (fn, *args) variant, runs interleaved so
    that the load of a shared machine falls on all of them alike."""
    runs: list[list] = [[] for _ in variants]
    for _ in range(repeat):
        for n, (fn, *args) in enumerate(variants):
            result = fn(*args)
            runs[n].append(result if isinstance(result, tuple) else (result, 0))
    return [(min(r[0] for r in rs), rs[0][1]) for rs in runs]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    n, r = args.events, args.repeat
    us = 1e6 / n
    print(f"Pass-through, {n} text deltas per stream, best of {r}; us per event (lane events);"
          " added = tap+guards - raw (all: the three guards)")
    print(f"{'protocol':20} {'reads':>9} {'raw':>6} {'tap':>6} {'+loop':>6} {'+repair':>8} {'+keys':>6}"
          f" {'tap+guards':>11} {'added':>6} {'all':>6} {'added':>6}  lane")
    for protocol, make in STREAMS.items():
        events = make(n)
        body = b"".join(events)
        for shape, pieces in (("64 KiB", [body[i : i + 65536] for i in range(0, len(body), 65536)]), ("1 event", events)):
            (raw, _), (bare, _), (loop, _), (rep, _), (keys, _), (guarded, lane_events), (every, _) = best(
                r, (relay, pieces), (tap, protocol, pieces, []),
                (lambda: tap(protocol, pieces, [LoopGuard()]),),
                (lambda: tap(protocol, pieces, [ToolRepair(TOOLS, protocol)]),),
                (lambda: tap(protocol, pieces, [KeyGuard([KEY])]),),
                (lambda: tap(protocol, pieces, guards(protocol)),),
                (lambda: tap(protocol, pieces, all_guards(protocol)),))
            print(f"{protocol:20} {shape:>9} {raw * us:6.2f} {bare * us:6.2f} {loop * us:6.2f} {rep * us:8.2f} {keys * us:6.2f}"
                  f" {guarded * us:11.2f} {(guarded - raw) * us:6.2f} {every * us:6.2f} {(every - raw) * us:6.2f}  {lane_events}")
    print()
    print(f"Translated, {n} text deltas, best of {r}; us per event without / with LoopGuard + ToolRepair (rate ratio)")
    print(f"{'backend -> agent':42} {'64 KiB reads':>22} {'1 event/read':>22}")
    for backend, make in STREAMS.items():
        events = make(n)
        body = b"".join(events)
        shapes = [[body[i : i + 65536] for i in range(0, len(body), 65536)], events]
        for agent in STREAMS:
            if agent == backend:
                continue
            cells = []
            for pieces in shapes:
                (plain, _), (guarded, _) = best(
                    r, (translate, agent, backend, pieces, []), (lambda: translate(agent, backend, pieces, guards(agent)),))
                cells.append(f"{plain * us:5.2f} / {guarded * us:5.2f} ({plain / guarded:4.2f}x)")
            print(f"{backend + ' -> ' + agent:42} {cells[0]:>22} {cells[1]:>22}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
