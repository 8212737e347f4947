"""LoopDetector: the corpus fed whole, per character, in small and in large pieces; property tests."""

from __future__ import annotations

import ast
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentwrap.guards.loop import (
    CHECK_STEPS_CHARS,
    MAX_UNIT_CHARS,
    THRESHOLDS,
    LoopDetector,
    LoopFinding,
    needed_span,
)
from tests.guards.loop_corpus import CASES, LOOPS, NEAR_MISSES, Case

# A loop is found at the first check (every <= max(CHECK_STEPS_CHARS) characters)
# after its span reaches the threshold for its unit.
SLACK_CHARS = max(CHECK_STEPS_CHARS)

# "high" trades these for earlier cuts (see the module docstring): a literal array of
# 1000 zeros, and the cases built to sit just under the "normal" thresholds.
HIGH_CUTS = {
    "zero_array",
    "all_fixtures_in_one_answer",
    "sentence_below_threshold",
    "dash_run_below_threshold",
    "blank_lines_below_threshold",
    "code_line_below_threshold",
    "paragraph_seven_times",
}


def pieces(text: str, how: str, seed: str) -> list[str]:
    if how == "whole":
        return [text]
    if how == "chars":
        return list(text)
    rng = random.Random(seed)
    low, high = (1, 40) if how == "small" else (1000, 20000)
    out, i = [], 0
    while i < len(text):
        n = rng.randint(low, high)
        out.append(text[i : i + n])
        i += n
    return out


def run(parts: list[str], sensitivity: str = "normal") -> LoopFinding | None:
    detector = LoopDetector(sensitivity)
    for part in parts:
        if (found := detector.feed(part)) is not None:
            return found
    return None


def minimal_period(unit: str) -> str:
    n = len(unit)
    return next(unit[:d] for d in range(1, n + 1) if n % d == 0 and unit[:d] * (n // d) == unit)


def assert_finds(case: Case, found: LoopFinding | None, sensitivity: str = "normal") -> None:
    unit = minimal_period(case.unit)
    assert found is not None, f"{case.name}: loop not found"
    assert found.unit_chars == len(unit)
    assert len(found.unit) == len(unit) and found.unit in unit + unit, "not a rotation of the unit"
    need = needed_span(unit, sensitivity)
    assert need <= found.span_chars <= need + SLACK_CHARS
    assert found.repeats == found.span_chars // len(unit)
    assert case.text[found.start_char : found.start_char + found.span_chars] in unit * (found.repeats + 2)


def test_pure() -> None:
    import agentwrap.guards.loop as module

    tree = ast.parse(Path(module.__file__).read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert not imported & {"asyncio", "socket", "os", "time", "datetime", "threading", "selectors"}


def test_corpus_size() -> None:
    assert len(CASES) >= 60 and len(LOOPS) >= 30 and len(NEAR_MISSES) >= 30
    assert len({case.name for case in CASES}) == len(CASES)


@pytest.mark.parametrize("how", ["whole", "chars", "small", "large"])
@pytest.mark.parametrize("case", LOOPS, ids=lambda c: c.name)
def test_loop_found(case: Case, how: str) -> None:
    found = run(pieces(case.text, how, case.name))
    assert_finds(case, found)
    # Checks fall at fixed offsets of the text: every split gives the same finding.
    assert found == run([case.text])


@pytest.mark.parametrize("how", ["whole", "chars", "small", "large"])
@pytest.mark.parametrize("case", NEAR_MISSES, ids=lambda c: c.name)
def test_near_miss_never_cut(case: Case, how: str) -> None:
    assert run(pieces(case.text, how, case.name)) is None


@pytest.mark.parametrize("case", NEAR_MISSES, ids=lambda c: c.name)
def test_near_miss_other_sensitivities(case: Case) -> None:
    assert run([case.text], "low") is None
    assert (run([case.text], "high") is None) == (case.name not in HIGH_CUTS)


@pytest.mark.parametrize("sensitivity", ["low", "high"])
@pytest.mark.parametrize("case", LOOPS, ids=lambda c: c.name)
def test_loop_other_sensitivities(case: Case, sensitivity: str) -> None:
    found = run(pieces(case.text, "small", case.name), sensitivity)
    unit = minimal_period(case.unit)
    before = case.text[: len(case.text) - len(case.unit) * case.copies]
    if (early := run([before], sensitivity)) is not None:  # "high" cuts a near miss in the prefix
        assert found == early and sensitivity == "high"
        return
    if needed_span(unit, sensitivity) + SLACK_CHARS <= len(case.unit) * case.copies:
        assert_finds(case, found, sensitivity)
    else:  # too short a loop for "low": found late or not at all
        assert found is None or found.unit_chars == len(unit)


def test_thresholds_by_unit() -> None:
    assert needed_span("-") == 4096
    assert needed_span("the ") == 4096
    assert needed_span("Let me check the file again.\n") == 1024
    assert needed_span("    return self._parse(data)\n") == 4096
    assert needed_span("    result = compute(values, key)\n") == 4096
    assert needed_span("Step 3: run the tests again.\n") == 1024
    assert needed_span("x" * 300) == 4096 and needed_span("0x00, " * 100) == 4800
    prose = "The upload handler streams the request body to a temporary file. " * 5
    assert needed_span(prose) == 8 * len(prose)
    assert needed_span(prose, "high") == 5 * len(prose) and needed_span(prose, "low") == 12 * len(prose)
    assert [THRESHOLDS[s][0] for s in ("low", "normal", "high")] == [2048, 1024, 512]
    with pytest.raises(ValueError, match="sensitivity"):
        LoopDetector("extreme")  # type: ignore[arg-type]


def test_spent_after_finding() -> None:
    detector = LoopDetector()
    found = detector.feed("-" * 10_000)
    assert found is not None and detector.finding == found
    assert detector.feed("-" * 10_000) is None
    assert detector.chars == 20_000


def test_boundary_splits_a_run() -> None:
    unit = "Let me check the file again.\n"
    detector = LoopDetector()
    assert detector.feed(unit * 30) is None
    detector.boundary()
    assert detector.feed(unit * 30) is None  # 60 copies, but no run spans the boundary
    assert detector.feed(unit * 20) is not None


def test_unit_longer_than_max_is_not_found() -> None:
    rng = random.Random(5)
    unit = "".join(rng.choice("abcdefgh ") for _ in range(MAX_UNIT_CHARS + 100)) + "\n"
    assert run([unit * 12]) is None
    assert run([unit[: MAX_UNIT_CHARS - 10] * 12]) is not None


def test_memory_is_bounded() -> None:
    detector = LoopDetector()
    text = NEAR_MISSES[0].text
    for _ in range(50):
        for part in pieces(text, "small", "memory"):
            detector.feed(part)
        detector.feed("\nround\n")
    assert len(detector._tail) <= MAX_UNIT_CHARS + 1000
    assert sum(map(len, detector._pending)) <= max(CHECK_STEPS_CHARS) + 40


# --- properties -----------------------------------------------------------------------------------

WORDS = st.sampled_from(
    ["the", "parser", "reads", "a", "header", "=", "(", ")", "{", "}", "0", "1", "-", "|", "  ", "self.x",
     "return", "\u00e9t\u00e9", "\u6587\u4ef6", "\U0001f642", "..."]
)
# Loop-free by construction: numbered lines of at most 30 words (~400 characters), so no
# exact repetition runs longer than one line.
LINE = st.lists(WORDS, max_size=30).map(" ".join)
LOOP_FREE = st.lists(LINE, min_size=1, max_size=60).map(
    lambda lines: "".join(f"{i}: {line}\n" for i, line in enumerate(lines))
)


@st.composite
def splits(draw: st.DrawFn, text: str) -> list[str]:
    cuts = sorted(draw(st.sets(st.integers(0, len(text)), max_size=40)))
    bounds = [0, *cuts, len(text)]
    return [text[a:b] for a, b in zip(bounds, bounds[1:])]


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), text=LOOP_FREE)
def test_loop_free_text_never_triggers(data: st.DataObject, text: str) -> None:
    assert run(data.draw(splits(text))) is None


@settings(max_examples=40, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), case=st.sampled_from(NEAR_MISSES))
def test_near_misses_never_trigger_at_any_split(data: st.DataObject, case: Case) -> None:
    assert run(data.draw(splits(case.text))) is None


UNIT = st.one_of(
    st.text(st.sampled_from("ab \n-"), min_size=1, max_size=6),
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=80),
    st.lists(WORDS, min_size=1, max_size=80).map(lambda w: " ".join(w) + "\n"),
    st.lists(WORDS, min_size=80, max_size=400).map(lambda w: " ".join(w)[:MAX_UNIT_CHARS]),
    # a unit with a shorter period inside it (a long blank stretch, a run of one character)
    st.builds(lambda run, n, rest: run * n + rest, st.text(st.sampled_from("ab -\n"), min_size=1, max_size=3),
              st.integers(20, 300), st.text(st.sampled_from("xyz.\n"), min_size=1, max_size=5)),
)


@given(unit=UNIT, k=st.integers(0, 10_000))
def test_threshold_same_for_every_rotation(unit: str, k: int) -> None:
    k %= len(unit)
    assert needed_span(unit[k:] + unit[:k]) == needed_span(unit)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), prefix=LOOP_FREE, unit=UNIT)
def test_loop_found_wherever_split(data: st.DataObject, prefix: str, unit: str) -> None:
    root = minimal_period(unit)
    copies = (needed_span(root) + SLACK_CHARS) // len(root) + 2
    text = prefix + root * copies
    found = run([text])
    assert_finds(Case("drawn", text, root), found)
    again = run(data.draw(splits(text)))
    assert again == found
