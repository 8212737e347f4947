#!/usr/bin/env python3
"""In-process cost of the content-loop guard: `LoopDetector` and `LoopGuard` alone.

    python bench/loop_bench.py [--kib K] [--repeat R]

Three texts of ~K KiB each:

* prose+code: a realistic answer, loop-free: agentwrap's own documentation
  paragraphs interleaved with its source files in ``` fences;
* near-loops: runs that stop just short of a loop, one after another (a prose
  sentence 30 times, a code line, a divider, blank lines, a paragraph 7 times),
  so that nearly every check has a period in hand;
* loop: 8 KiB of prose+code, then one sentence repeated; timed until the cut.

Each is streamed as TextDelta events of 3-40 characters (random, seeded), as
64 KiB pieces, and through `LoopGuard.lane_text` in runs of 64 literals. The
baseline is the same stream in the same run with no detector: a call that
returns at once (`[event]` for the filter). Prints the best of R runs, in
microseconds per event and per character, and the detector's cost as the
difference. No sockets, no other process.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agentwrap.guards.base import Cut  # noqa: E402
from agentwrap.guards.loop import LoopDetector
from agentwrap.guards.loop_guard import LoopGuard  # noqa: E402
from agentwrap.protocols.neutral import TextDelta  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def prose_and_code(size: int) -> str:
    """Documentation paragraphs and source files, interleaved like an answer."""
    paragraphs = [p for f in sorted((REPO / "docs").glob("*.md")) for p in f.read_text().split("\n\n") if p.strip()]
    sources = [f.read_text() for f in sorted((REPO / "agentwrap").rglob("*.py"))]
    out, n, i = [], 0, 0
    while n < size:
        part = "\n\n".join(paragraphs[(3 * i + k) % len(paragraphs)] for k in range(3)) + "\n\n"
        src = sources[i % len(sources)]
        start = (i * 7919) % max(1, len(src) - 3000)
        part += "```python\n" + src[start : start + 3000] + "\n```\n\n"
        out.append(part)
        n += len(part)
        i += 1
    return "".join(out)[:size]


def near_loops(size: int) -> str:
    """Runs just short of a loop at "normal" sensitivity, separated by a numbered line."""
    units = [
        ("Let me check the configuration file once more. ", 20),  # 47 x 20 = 940 < 1024
        ("    result = compute(values, key)\n", 110),  # 34 x 110 = 3740 < 4096
        ("-", 4000),
        ("\n", 3900),
        ("The parser reads one event at a time and hands it to the decoder, which keeps"
         " the state of the open blocks and their indices between events.\n", 7),
        ("| cell | cell | cell |\n", 170),
    ]
    out, n, i = [], 0, 0
    while n < size:
        unit, times = units[i % len(units)]
        part = f"\nStep {i}:\n" + unit * times
        out.append(part)
        n += len(part)
        i += 1
    return "".join(out)[:size]


def deltas(text: str, rng: random.Random) -> list[str]:
    pieces, i = [], 0
    while i < len(text):
        n = rng.randint(3, 40)
        pieces.append(text[i : i + n])
        i += n
    return pieces


def chunks(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def best(fn, repeat: int) -> float:
    return min(fn() for _ in range(repeat))


def time_detector(pieces: list[str]) -> float:
    feed = LoopDetector().feed
    t0 = time.perf_counter()
    for piece in pieces:
        if feed(piece) is not None:
            break
    return time.perf_counter() - t0


def time_noop(pieces: list[str]) -> float:
    def feed(text: str) -> None:
        return None

    t0 = time.perf_counter()
    for piece in pieces:
        if feed(piece) is not None:
            break
    return time.perf_counter() - t0


class NullFilter:
    name = "null"
    wants_text = True

    def feed(self, event):
        return [event]

    def lane_text(self, literals):
        return True


def time_filter(make, events) -> float:
    feed = make().feed
    t0 = time.perf_counter()
    try:
        for event in events:
            feed(event)
    except Cut:
        pass
    return time.perf_counter() - t0


def time_lane(make, runs) -> float:
    lane = make().lane_text
    t0 = time.perf_counter()
    try:
        for run in runs:
            lane(run)
    except Cut:
        pass
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kib", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    size = args.kib * 1024
    clean = prose_and_code(size)
    texts = {
        "prose+code": clean,
        "near-loops": near_loops(size),
        "loop": clean[: 8 * 1024] + "I need to look at the parser module again to be sure.\n" * (size // 54),
    }
    for name, text in texts.items():
        found = LoopDetector().feed(text)
        where = f"cut at {found.start_char + found.span_chars} chars" if found else "no finding"
        print(f"{name}: {len(text)} chars, {where}")
    rng = random.Random(7)
    print(f"\nbest of {args.repeat}; baseline: the same stream in the same run, no detector;"
          " cost = with - baseline")
    print(f"{'text':12} {'stream':26} {'pieces':>7} {'chars/piece':>11} {'base us':>8} {'with us':>8}"
          f" {'cost us/piece':>13} {'cost us/char':>12}")

    def row(name: str, label: str, count: int, chars: int, base: float, det: float) -> None:
        print(f"{name:12} {label:26} {count:>7} {chars / count:>11.1f} {base / count * 1e6:>8.3f}"
              f" {det / count * 1e6:>8.3f} {(det - base) / count * 1e6:>13.3f} {(det - base) / chars * 1e6:>12.4f}")

    for name, text in texts.items():
        pieces = deltas(text, rng)
        found = LoopDetector().feed(text)
        if found is not None:  # stop each stream at the cut
            fed, total = [], 0
            for piece in pieces:
                fed.append(piece)
                total += len(piece)
                if total > found.start_char + found.span_chars:
                    break
            pieces = fed
        fed_text = "".join(pieces)
        events = [TextDelta(p) for p in pieces]
        literals = [json.dumps(p).encode() for p in pieces]
        runs = [literals[i : i + 64] for i in range(0, len(literals), 64)]
        bulk = chunks(fed_text, 65536)
        n = len(fed_text)
        row(name, "LoopDetector.feed, deltas", len(pieces), n,
            best(lambda: time_noop(pieces), args.repeat), best(lambda: time_detector(pieces), args.repeat))
        row(name, "LoopDetector.feed, 64 KiB", len(bulk), n,
            best(lambda: time_noop(bulk), args.repeat), best(lambda: time_detector(bulk), args.repeat))
        row(name, "LoopGuard.feed, deltas", len(events), n,
            best(lambda: time_filter(NullFilter, events), args.repeat),
            best(lambda: time_filter(LoopGuard, events), args.repeat))
        row(name, "LoopGuard.lane_text, 64/run", len(literals), n,
            best(lambda: time_lane(NullFilter, runs), args.repeat), best(lambda: time_lane(LoopGuard, runs), args.repeat))
    return 0


if __name__ == "__main__":
    sys.exit(main())
