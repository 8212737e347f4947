#!/usr/bin/env python3
"""In-process cost of translating a streamed answer: `StreamTranslator` alone.

    python bench/translate_bench.py [--events N] [--repeat R]

For each backend protocol (the same streams bench/proxy_bench.py's fake upstream
sends: N text deltas as OpenAI Chat chunks, OpenAI Responses events with sequence
numbers, Gemini chunks with CRLF line ends and the usage on every chunk) and each
agent protocol, the stream is fed to a `StreamTranslator` in 64 KiB pieces (a busy
upstream: many events per read) and one event per piece (a slow one), with the text
lane on (as agentwrap runs) and off (every event through the general path:
SSE parser, decoder, adapter, encoder). Prints microseconds per event, best of R.
No sockets, no other process: this is the translator's own cost, which
bench/proxy_bench.py --translate measures end to end.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from proxy_bench import chat_stream_events, gemini_stream_events, responses_stream_events  # noqa: E402

from agentwrap.protocols.translate import StreamTranslator, TranslationContext  # noqa: E402

STREAMS = {"openai_chat": chat_stream_events, "openai_responses": responses_stream_events, "gemini": gemini_stream_events}
AGENTS = ["anthropic_messages", "openai_chat", "openai_responses", "gemini"]


def run(agent: str, backend: str, pieces: list[bytes], lane: bool) -> tuple[float, int]:
    translator = StreamTranslator(TranslationContext(agent, backend, "agent-model", "backend-model", True, created=1))
    if not lane:
        translator.LANE_AFTER = 10**9
    t0 = time.perf_counter()
    for piece in pieces:
        translator.feed(piece)
    translator.finish()
    return time.perf_counter() - t0, translator.lane_events


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    n = args.events
    print(f"StreamTranslator, {n} text deltas per stream, best of {args.repeat}; us per event")
    print(f"{'backend -> agent':42} {'64 KiB reads':>14} {'(general)':>10} {'1 event/read':>14} {'(general)':>10}  lane events")
    for backend, make in STREAMS.items():
        events = make(n)
        body = b"".join(events)
        shapes = {"bulk": [body[i : i + 65536] for i in range(0, len(body), 65536)], "per": events}
        for agent in AGENTS:
            if agent == backend:
                continue  # the same protocol is passed through, not translated
            cells, taken = [], 0
            for shape in ("bulk", "per"):
                for lane in (True, False):
                    best = min(run(agent, backend, shapes[shape], lane)[0] for _ in range(args.repeat))
                    cells.append(f"{best / n * 1e6:.2f}")
                    if lane and shape == "bulk":
                        taken = run(agent, backend, shapes[shape], lane)[1]
            print(f"{backend + ' -> ' + agent:42} {cells[0]:>14} {cells[1]:>10} {cells[2]:>14} {cells[3]:>10}  {taken}/{n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
