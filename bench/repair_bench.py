#!/usr/bin/env python3
"""In-process cost of the tool-call repair guard (`ToolRepair`), in one run.

    python bench/repair_bench.py [--events N] [--calls N] [--repeat R]

Prints, best of R:

- per tool call (Start, argument deltas, End): a valid call (held, judged,
  released as held), calls needing a repair (JSON syntax through json-repair,
  a type coercion, a name fix), and an unrepairable one;
- per text event through `feed`: an answer's text deltas (prose with some
  code, `<` and backticks) with the guard on, against a pass-through stage
  (a filter that returns [event]) as the baseline;
- per text event through `lane_text`: the same deltas as JSON string literals
  in runs of 1 and of 16, as the pass-through tap hands them over; a run the
  guard refuses (it holds a marker) is decoded in one `json.loads` and fed,
  as the pipeline does, and that cost is counted;
- the same two for text without a marker: the cost every plain event pays.

Times are this process's CPU time (`time.process_time`): the machine may be
shared, and wall time would count the others. Not a timed test.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agentwrap.guards.repair import ToolRepair  # noqa: E402
from agentwrap.protocols.neutral import TextDelta, ToolCallArgsDelta, ToolCallEnd, ToolCallStart  # noqa: E402
from agentwrap.protocols.neutral.summary import ToolSpec  # noqa: E402

_STR, _INT, _BOOL = {"type": "string"}, {"type": "integer"}, {"type": "boolean"}
TOOLS = (
    ToolSpec("Bash", parameters={"type": "object", "properties": {"command": _STR, "timeout": _INT, "run_in_background": _BOOL}, "required": ["command"]}),
    ToolSpec("Read", parameters={"type": "object", "properties": {"file_path": _STR, "offset": _INT, "limit": _INT}, "required": ["file_path"]}),
    ToolSpec("Edit", parameters={"type": "object", "properties": {"file_path": _STR, "old_string": _STR, "new_string": _STR}, "required": ["file_path", "old_string", "new_string"]}),
    *[ToolSpec(f"mcp__server__tool_{n}", parameters={"type": "object", "properties": {"q": _STR}}) for n in range(20)],
)

CALLS = {
    "valid (Edit, 1 KB)": ("Edit", json.dumps({"file_path": "/src/app.py", "old_string": "x = 1\n" * 80, "new_string": "x = 2\n" * 80})),
    "valid (Bash, small)": ("Bash", '{"command": "ls -la", "timeout": 5000}'),
    "syntax (single quotes, trailing comma)": ("Bash", "{'command': 'ls -la', 'timeout': 5000,}"),
    "type ('5000' -> 5000)": ("Bash", '{"command": "ls -la", "timeout": "5000"}'),
    "name (bash -> Bash)": ("bash", '{"command": "ls -la"}'),
    "unrepairable (truncated string)": ("Bash", '{"command": "rm -rf /tmp/bu'),
}

PROSE = (
    "Here is what I found in the repository. The function `load_config` reads the file and returns a dict; "
    "if a < b the loop exits early. I will now update the tests.\n\n```python\ndef f(x):\n    return x + 1\n```\n\n"
    "The [docs](https://example.com) say the same. Nothing else to change; the build passes and all checks are green. "
)


class PassThrough:
    name, wants_text = "pass", True

    def __init__(self) -> None:
        self.notes: list = []

    def feed(self, event):
        return [event]

    def lane_text(self, literals):
        return True

    def finish(self):
        return []


def tokens(n: int) -> list[str]:
    """`n` text deltas of ~4 characters, cut from PROSE."""
    out, pos = [], 0
    text = PROSE * (n * 4 // len(PROSE) + 2)
    for _ in range(n):
        out.append(text[pos : pos + 4])
        pos += 4
    return out


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.process_time()
        fn()
        times.append(time.process_time() - t0)
    return min(times)


def bench_calls(n: int, repeat: int) -> None:
    print(f"Tool calls: {n} calls each (arguments in 16-character deltas), best of {repeat}; us per call")
    for label, (name, raw) in CALLS.items():
        deltas = [raw[i : i + 16] for i in range(0, len(raw), 16)]

        def run() -> None:
            filt = ToolRepair(TOOLS, "anthropic_messages")
            for k in range(n):
                filt.feed(ToolCallStart(k, f"c{k}", name))
                for d in deltas:
                    filt.feed(ToolCallArgsDelta(k, d))
                filt.feed(ToolCallEnd(k))

        def base() -> None:
            filt = PassThrough()
            for k in range(n):
                filt.feed(ToolCallStart(k, f"c{k}", name))
                for d in deltas:
                    filt.feed(ToolCallArgsDelta(k, d))
                filt.feed(ToolCallEnd(k))

        run()  # warm: json-repair imported, caches filled
        t, t0 = best(run, repeat), best(base, repeat)
        print(f"  {label:42} {t / n * 1e6:9.1f}   (pass-through {t0 / n * 1e6:5.1f}, {len(deltas) + 2} events)")


def bench_text(n: int, repeat: int) -> None:
    pieces = tokens(n)
    events = [TextDelta(p) for p in pieces]
    literals = [json.dumps(p, ensure_ascii=False).encode() for p in pieces]
    markers = sum(any(c in p for c in "<`[") for p in pieces)
    print(f"\nText: {n} deltas of 4 characters ({markers / n:.0%} hold a <, ` or [), best of {repeat}; us per event")

    def feed_with(filt) -> None:
        feed = filt.feed
        for e in events:
            feed(e)
        filt.finish()

    def lane_with(filt, run: int) -> None:
        filt.feed(TextDelta("Start. "))
        for i in range(0, len(literals), run):
            chunk = literals[i : i + run]
            if not filt.lane_text(chunk):  # as the pipeline does: one json.loads per run, then feed
                for text in json.loads(b"[" + b",".join(chunk) + b"]"):
                    filt.feed(TextDelta(text))
        filt.finish()

    def row(label: str, on: float, off: float) -> None:
        print(f"  {label:44} {on / n * 1e6:7.3f}  {off / n * 1e6:7.3f}  {(on - off) / n * 1e6:+7.3f}")

    print(f"  {'':44} {'on':>7}  {'base':>7}  {'added':>7}")
    row("feed", best(lambda: feed_with(ToolRepair(TOOLS, "anthropic_messages")), repeat), best(lambda: feed_with(PassThrough()), repeat))
    for run in (1, 16):
        on = best(lambda: lane_with(ToolRepair(TOOLS, "anthropic_messages"), run), repeat)
        row(f"lane_text, runs of {run} (misses fed, decoded)", on, best(lambda: lane_with(PassThrough(), run), repeat))
    plain = [p for p in pieces if not any(c in p for c in "<`[")]
    events[:] = [TextDelta(p) for p in plain]
    literals[:] = [json.dumps(p, ensure_ascii=False).encode() for p in plain]
    n = len(plain)
    print(f"Text without a <, ` or [ ({n} deltas):")
    row("feed", best(lambda: feed_with(ToolRepair(TOOLS, "anthropic_messages")), repeat), best(lambda: feed_with(PassThrough()), repeat))
    for run in (1, 16):
        on = best(lambda: lane_with(ToolRepair(TOOLS, "anthropic_messages"), run), repeat)
        row(f"lane_text, runs of {run}", on, best(lambda: lane_with(PassThrough(), run), repeat))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--calls", type=int, default=2_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    bench_calls(args.calls, args.repeat)
    bench_text(args.events, args.repeat)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
