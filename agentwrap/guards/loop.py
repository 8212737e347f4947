"""The content-loop guard: cut a streamed answer that repeats itself.

Pure: text in, a finding out; nothing here does I/O or reads the clock.

```python
detector = LoopDetector(sensitivity="normal")
for piece in pieces:                    # any split of the text gives the same finding
    if (finding := detector.feed(piece)) is not None:
        ...                             # finding.unit, .unit_chars, .repeats, .span_chars
```

Theory of operation. A degenerate model emits the same unit over and over,
exactly: a sentence, a paragraph, a list item, "the ", a run of one
character, blank lines. Text that ends in such a loop is *periodic*: for a
period p, each of its last L characters equals the one p before it. The
detector looks for exactly that, and only that: a near-identical line that
differs in a number, a name or a timestamp breaks the period, so lists, logs,
tables, test files and SQL inserts never form a run longer than one line.

- Checks happen at fixed offsets of the text (every ~256 characters, in a
  short cycle of unequal steps so that a unit of any length is probed at
  several phases), not per character and not per piece: feeding is a list
  append and an addition, and the result does not depend on how the text was
  split.
- At a check with no period in hand, the last 64 characters (the probe) are
  searched backwards (`str.rfind`) in the 2048 + 64 characters before them.
  The nearest occurrence, d characters back, means the last 64 + d
  characters have period d. Its run is measured backwards with slice
  comparisons (doubling, then bisection). A unit with a long blank stretch
  inside has a short period there, which stops where the unit's own shows:
  a second probe across the run's start finds the longer period, kept if its
  run is longer.
- With a period in hand, a check compares the new characters with those p
  before them (one `startswith`): equal, the run grows by that much; else the
  period is dropped and the search runs again at once.
- A check looks back at most ~2.4 K characters (a run found late is measured
  that far), and that is all the memory a detector holds, whatever the
  stream's length. The period is in hand one check after the run's first
  64 + p characters, and the loop is found at the first check after its
  span reaches the threshold: at most 269 characters late.

Thresholds. A run is a loop when its span reaches both a minimum length and
a minimum number of repeats of the unit (span >= max(min_span, repeats * p)).
Short units therefore need far more repeats than long ones: "the " or "-"
need thousands of characters, a 300-character paragraph needs 8 copies. The
minimum span depends on what the unit is made of:

- *prose*: at least 8 distinct letters (case-folded), and at most one
  visible (not blank) character in 10 is a digit, a code or markup symbol
  (`<>{}[]()=;|/\\_$@&%^~+#"`) or a `.` or `:` inside a word (`main.py`,
  `a:b`). A model stuck in "Let me check the file again." is prose;
  `    result = compute(values, key)` is not.
- *other*: everything else: single characters, dividers, whitespace, "the the",
  zeros in an array, grid rows, markup cells, code lines, stack frames, data.

    sensitivity   prose min_span   other min_span   min repeats
    low           2048             8192             12
    normal        1024             4096             8
    high           512             2048             5

    normal, in repeats:  p=1 "-"        4096    p=4 "the "           1024
                         p=29 sentence    36    p=57 sentence          18
                         p=29 code line  142    p=128 prose             8
                         p=300 paragraph   8    p=2048 (largest unit)   8

Why these numbers. A loop left alone runs to the output limit (tens of
thousands of tokens), so cutting after 1 K characters or after 4 K saves
nearly as much; a false cut ends a good answer. The thresholds therefore sit
well above the longest exact repetition legitimate output has: dividers and
padding are tens to a few hundred characters; a zero-filled literal array of
1000 elements is ~3000; a 16x16 zero matrix, a blank font table or an ASCII
board of identical rows is 1-2 K; identical HTML cells (a 3x3 or 4x4 grid) a
few hundred. All of that is "other" (symbols, few distinct letters), whose
minimum is 4 K. Prose that repeats a sentence exactly, back to back, 8 times
and over 1 K characters is degenerate; song refrains, "I will not..." lines
written 10 or 20 times and placeholder paragraphs written 3 times stay below.
The known limit is output that is asked to repeat (a sentence 100 times, a
64x64 grid written out): "low" doubles the margins. "high" halves them and
cuts some legitimate output (the 1000 zeros). A periodic run must repeat
exactly; a unit longer than 2048 characters is not found.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "MAX_UNIT_CHARS",
    "PROBE_CHARS",
    "CHECK_STEPS_CHARS",
    "THRESHOLDS",
    "Sensitivity",
    "LoopFinding",
    "LoopDetector",
    "needed_span",
]

Sensitivity = Literal["low", "normal", "high"]

MAX_UNIT_CHARS = 2048
PROBE_CHARS = 64
# Unequal steps: with a fixed step, a unit whose length is a multiple of it would
# always be probed at the same phase (possibly inside a blank stretch of the unit).
CHECK_STEPS_CHARS = (241, 251, 263, 269)
# Everything a check may look at: the search range, a step, and the probe.
TAIL_CHARS = MAX_UNIT_CHARS + PROBE_CHARS + max(CHECK_STEPS_CHARS)
# sensitivity -> (prose min_span, other min_span, min repeats)
THRESHOLDS: dict[str, tuple[int, int, int]] = {
    "low": (2048, 8192, 12),
    "normal": (1024, 4096, 8),
    "high": (512, 2048, 5),
}
PATTERN_CHARS = 80  # how much of the unit a note quotes

_TRIES = 3  # longer periods tried around a short one
_REACH = PROBE_CHARS + MAX_UNIT_CHARS  # how far back a probe is searched
_LETTERS = re.compile(r"[^\W\d_]")
# Digits, code and markup symbols, and a `.` or `:` inside a word (`main.py`, `a:b`).
_CODE_CHARS = re.compile(r'[\d<>{}\[\]()=;|/\\_$@&%^~+#"]')
_IN_WORD = re.compile(r"[.:](?=\S)")
_SPACE = re.compile(r"\s")
_LINE_START = re.compile(r"(?<=\n)[^\n]")
_SENTENCE_START = re.compile(r"(?<=[.!?:][ \t])\S")
_WORD_START = re.compile(r"(?<=\s)\S")


@dataclass(frozen=True, slots=True)
class LoopFinding:
    """A repetition loop: `unit` (`unit_chars` long) repeated `repeats` times in a row.

    `span_chars` is the length of the repeated stretch (it may end inside a
    copy), `start_char` its offset in the text fed so far. `unit` is shown from
    a line or sentence start where it has one.
    """

    unit: str
    unit_chars: int
    repeats: int
    span_chars: int
    start_char: int


def _known(sensitivity: str) -> str:
    if sensitivity not in THRESHOLDS:
        raise ValueError(f"Unknown loop sensitivity {sensitivity!r}: use low, normal or high.")
    return sensitivity


def needed_span(unit: str, sensitivity: Sensitivity = "normal") -> int:
    """The span at which a run of `unit` counts as a loop (see the module docstring).

    Raises ValueError for an unknown sensitivity.
    """
    prose_span, other_span, repeats = THRESHOLDS[_known(sensitivity)]
    p = len(unit)
    # The unit repeats, so what follows its last character is its first.
    not_prose = len(_CODE_CHARS.findall(unit)) + len(_IN_WORD.findall(unit + unit[:1]))
    visible = p - len(_SPACE.findall(unit))  # indentation would make code look sparse
    is_prose = len({c.casefold() for c in _LETTERS.findall(unit)}) >= 8 and 10 * not_prose <= visible
    return max(prose_span if is_prose else other_span, repeats * p)


def _display(unit: str) -> str:
    """The rotation of `unit` that starts a line, else a sentence, else a word."""
    k = min(2, len(unit))
    around = unit[len(unit) - k :] + unit  # what precedes each character, cyclically
    for start in (_LINE_START, _SENTENCE_START, _WORD_START):
        if (m := start.search(around, k)) is not None:
            i = m.start() - k
            return unit[i:] + unit[:i]
    return unit


class LoopDetector:
    """Finds a repetition loop in streamed text; see the module docstring.

    `feed(text)` returns the finding once, when the text fed so far ends in a
    loop; later calls return None (the detector is spent). `boundary()` marks a
    point no run may span (a tool call between two pieces of text).
    Raises ValueError for an unknown sensitivity.
    """

    __slots__ = ("sensitivity", "finding", "_pending", "_tail", "_end", "_due", "_steps", "_last", "_floor",
                 "_p", "_rs", "_need", "_exact")

    def __init__(self, sensitivity: Sensitivity = "normal") -> None:
        _known(sensitivity)
        self.sensitivity = sensitivity
        self.finding: LoopFinding | None = None
        self._pending: list[str] = []
        self._tail = ""  # the last TAIL_CHARS characters before the pending ones
        self._end = 0  # characters fed
        self._steps = itertools.cycle(CHECK_STEPS_CHARS)
        self._due = next(self._steps)  # offset of the next check
        self._last = 0  # offset of the last check
        self._floor = 0  # no run starts before this offset
        self._p = 0  # the period in hand, 0 for none
        self._rs = 0  # offset where its run starts
        self._need = 0  # the span at which that run is a loop
        self._exact = False  # whether _need is the unit's own (else a lower bound)

    @property
    def chars(self) -> int:
        """Characters fed so far."""
        return self._end

    def feed(self, text: str) -> LoopFinding | None:
        self._pending.append(text)
        self._end += len(text)
        if self._end < self._due:
            return None
        return self._scan()

    def _spent(self) -> None:
        self._due = 0  # every feed goes to _scan, which drops the text
        self._tail = ""

    def boundary(self) -> None:
        """No repeated run spans this point: the text before it and after it are apart."""
        if self.finding is not None:
            return
        self._flush()
        self._floor = self._end
        self._p = 0

    def _flush(self) -> str:
        s = self._tail + "".join(self._pending)
        self._pending.clear()
        self._tail = s[-TAIL_CHARS:]
        return s

    def _scan(self) -> LoopFinding | None:
        pending = self._pending
        if self.finding is not None:
            pending.clear()
            return None
        s = self._tail + (pending[0] if len(pending) == 1 else "".join(pending))
        pending.clear()
        end = self._end
        base = end - len(s)  # the offset of s[0]
        e = self._due - base  # checks at indexes of s from here on
        while e + base <= end:
            # The window a check may look at, the same for any split of the text.
            lo = max(e - TAIL_CHARS, self._floor - base, 0)
            if self._p:
                found = self._follow(s, e, base, lo)
            elif e - PROBE_CHARS > lo and (j := s.rfind(s[e - PROBE_CHARS : e], max(lo, e - _REACH), e - 1)) >= 0:
                found = self._adopt(s, e, base, lo, j)
            else:
                found = None
            self._last = e + base
            e += next(self._steps)
            if found is not None:
                self.finding = found
                self._spent()
                return found
        self._due = e + base
        self._tail = s[-TAIL_CHARS:]
        return None

    def _follow(self, s: str, e: int, base: int, lo: int) -> LoopFinding | None:
        """A check with a period in hand: does the text since the last check go on with it?"""
        prev = self._last - base
        if s.startswith(s[prev:e], prev - self._p):
            return self._ripe(s, e, base) if e + base - self._rs >= self._need else None
        self._p = 0
        j = s.rfind(s[e - PROBE_CHARS : e], max(lo, e - _REACH), e - 1) if e - PROBE_CHARS > lo else -1
        return self._adopt(s, e, base, lo, j) if j >= 0 else None

    def _adopt(self, s: str, e: int, base: int, lo: int, j: int) -> LoopFinding | None:
        """Take the period of the probe's occurrence at `j`, or a longer one around it."""
        d = e - PROBE_CHARS - j
        best_d, best_span = d, d + self._run(s, e, d, lo)
        for _ in range(_TRIES):
            # A short period inside a longer one (a blank stretch inside a repeated
            # paragraph) stops where the longer one shows: probe across its start.
            a = e - best_span - PROBE_CHARS // 2
            if a <= lo:
                break
            j = s.rfind(s[a : a + PROBE_CHARS], max(lo, a - MAX_UNIT_CHARS), a + PROBE_CHARS - 1)
            if j < 0 or not s.startswith(s[a:e], j):  # [a, e) has period a - j
                break
            d = a - j
            span = d + self._run(s, e, d, lo)
            if span <= best_span:
                break
            best_d, best_span = d, span
        self._p = best_d
        self._rs = e + base - best_span
        # The least span any unit of this length needs; the unit's own once reached.
        prose_span, _, repeats = THRESHOLDS[self.sensitivity]
        self._need = max(prose_span, repeats * best_d)
        self._exact = False
        return self._ripe(s, e, base) if best_span >= self._need else None

    def _ripe(self, s: str, e: int, base: int) -> LoopFinding | None:
        """The finding if the run in hand (long enough for any unit of its length) is a loop."""
        if not self._exact:
            self._need = needed_span(s[e - self._p : e], self.sensitivity)
            self._exact = True
        return self._finding(s, e, base) if e + base - self._rs >= self._need else None

    @staticmethod
    def _run(s: str, e: int, d: int, lo: int) -> int:
        """The largest L (>= PROBE_CHARS, known to hold) with s[e-L:e] == s[e-L-d:e-d], s[e-L-d] at or after lo."""
        cap = e - d - lo
        good, bad = PROBE_CHARS, cap + 1
        size = 2 * PROBE_CHARS
        while size <= cap:
            if not s.startswith(s[e - size : e], e - size - d):
                bad = size
                break
            good, size = size, 2 * size
        else:
            if cap > good and s.startswith(s[e - cap : e], lo):
                return cap
            bad = min(bad, cap)
        while bad - good > 1:
            mid = (good + bad) // 2
            if s.startswith(s[e - mid : e], e - mid - d):
                good = mid
            else:
                bad = mid
        return good

    def _finding(self, s: str, e: int, base: int) -> LoopFinding:
        p, rs = self._p, self._rs
        span = e + base - rs
        # The first whole copy still held, in phase with the run's start.
        first = rs + -(-max(0, base - rs) // p) * p - base
        unit = s[first : first + p]
        return LoopFinding(_display(unit), p, span // p, span, rs)
