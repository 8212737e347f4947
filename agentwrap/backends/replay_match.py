"""Matching a replayed request to a recorded one: volatile values normalised, the rest exact.

Theory of operation. A replayed agent sends what it sent in the recorded run,
except for values that differ from run to run: session and item ids, dates in
its system prompt, and whatever its tools report about this run (Codex's
shell tool: `Chunk ID: 3fa9c1`, `Wall time: 0.0123 seconds`; Gemini CLI's
process group ids; temporary paths). Matching is done on the request's shape
and conversation with those values normalised, in two tiers:

1. **Key.** Method, path and a normalised body: fields that only identify a
   run (`VOLATILE_KEYS`: `metadata`, `user_id`, item `id`s, ...) dropped,
   every run of digits in a string masked, agentwrap's own temporary
   directory names masked (`request_key`). Equal keys match at once.
2. **Learned from the recording.** Otherwise the request is compared with
   the recordings of the same method and path that are left: same shape
   (the same keys, list lengths and types, numbers and booleans equal), and
   in each string that differs, the words are aligned and every word that
   differs must be one the recorded value shows to be run-varying, by its
   kind: a word that differs only in its digits (numbers, durations,
   timestamps), a UUID, a hex id of the same length (when one of the two has
   a digit: the recorded `b12345` admits `abcdef`), a random-looking id of
   the same length and alphabet (at least 8 characters mixing letters and
   digits, or lower and upper case), the name of a weekday or a month, a
   directory right under a temporary root (`/tmp/...`, `/var/folders/.../T/...`).
   Anything else, an ordinary word or a different structure, is a real
   difference. A match teaches the replay each pair of differing ids (the
   value now and the value recorded; not numbers or dates, which vary
   freely): later requests carry the same values again (the tool result in
   their history), and they are mapped back to the recorded ones before
   tier 1, so those requests match by key.

Recordings that match are served first in, first out, in recorded order: the
oldest recording with an equal key, else the oldest one that matches by
tier 2. The rule is deterministic: the same request against the same
recording always matches the same way.

Pure: plain data in, plain data out.
"""

from __future__ import annotations

import json
import re
from difflib import SequenceMatcher
from typing import Any

from agentwrap.guards.volatile import TEMP_ROOT, UUID_PATTERN

__all__ = ["VOLATILE_KEYS", "Learned", "Mismatch", "compare", "first_difference", "key_of", "normalise", "request_key"]

_DIGITS = re.compile(r"\d+")
# agentwrap's own per-run temporary directory (the Gemini CLI shadow home shows up in its prompts).
_RUN_TMP = re.compile(r"agentwrap-[A-Za-z0-9_]{6,}")
# Fields that identify a run, a session or an item rather than carry the conversation.
VOLATILE_KEYS = frozenset(
    {"metadata", "user_id", "id", "prompt_cache_key", "session_id", "client_metadata", "previous_response_id"}
)

_UUID = UUID_PATTERN
# An absolute temporary root and the directory right under it (mkdtemp names: no dot).
_TEMP_ROOT = r"(?<![\w./-])" + TEMP_ROOT
_TEMP_DIR = r"[\w-]+(?![\w.-])"
# One token: a UUID, a temporary directory, a word, a run of spaces, one other character.
_TOKEN = re.compile(rf"{_UUID}|{_TEMP_ROOT}/{_TEMP_DIR}|\w+|\s+|.", re.S)
_IS_UUID = re.compile(rf"{_UUID}\Z")
_IS_TEMP = re.compile(rf"({_TEMP_ROOT})/{_TEMP_DIR}\Z")
_HEX_LOWER = re.compile(r"[0-9a-f]+\Z")
_HEX_UPPER = re.compile(r"[0-9A-F]+\Z")
_ID = re.compile(r"[A-Za-z0-9_-]+\Z")
_NUMBERISH = re.compile(r"[\d.,:]*\Z")
_DAYS = frozenset("Monday Tuesday Wednesday Thursday Friday Saturday Sunday Mon Tue Wed Thu Fri Sat Sun".split())
_MONTHS = frozenset(
    "January February March April May June July August September October November December "
    "Jan Feb Mar Apr Jun Jul Aug Sep Sept Oct Nov Dec".split()
)
_IDS = frozenset({"uuid", "temp", "hex", "id"})  # the kinds a replay learns (numbers and dates vary freely)
MIN_LEARNED_CHARS = 6  # shorter values (small numbers, short words) are never substituted in later requests
MIN_RANDOM_ID_CHARS = 8


# -- tier 1: the key -----------------------------------------------------------------------


def _drop_volatile(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_volatile(v) for k, v in value.items() if k not in VOLATILE_KEYS}
    if isinstance(value, list):
        return [_drop_volatile(v) for v in value]
    if isinstance(value, str):
        return _RUN_TMP.sub("agentwrap-*", value)
    return value


def normalise(body: bytes) -> Any:
    """A request body as matching sees it: JSON with the run-identity fields dropped (and
    agentwrap's temporary directory names masked), or the text of a body that is not JSON."""
    if not body:
        return None
    try:
        return _drop_volatile(json.loads(body))
    except (ValueError, UnicodeDecodeError, RecursionError):
        return _RUN_TMP.sub("agentwrap-*", body.decode("utf-8", "replace"))


def _masked(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _masked(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [_masked(v) for v in value]
    if isinstance(value, str):
        return _DIGITS.sub("#", value)
    return value


def key_of(method: str, path: str, normalised: Any) -> str:
    return json.dumps([method.upper(), _DIGITS.sub("#", path), _masked(normalised)], sort_keys=True, separators=(",", ":"))


def request_key(method: str, path: str, body: bytes) -> str:
    """The stable matching key of a request (tier 1)."""
    return key_of(method, path, normalise(body))


# -- tier 2: learned from the recording ---------------------------------------------------------


class Mismatch(Exception):
    """Where a request differs from a recording in a way no run-varying value explains."""

    def __init__(self, where: str, detail: str) -> None:
        super().__init__(f"{where}: {detail}")
        self.where = where
        self.detail = detail


def _kind_of_temp(word: str) -> str | None:
    m = _IS_TEMP.match(word)
    return m.group(1) if m else None


def _varying(now: str, recorded: str) -> str | None:
    """The kind of run-varying value the recorded word shows `now` to be another run's
    value of ("number", "uuid", "temp", "date", "hex", "id"), or None: a real difference."""
    if _DIGITS.sub("#", now) == _DIGITS.sub("#", recorded):
        return "number"  # numbers, durations, timestamps, words whose digits alone differ
    if _IS_UUID.match(now) and _IS_UUID.match(recorded):
        return "uuid"
    temp = _kind_of_temp(recorded)
    if temp is not None:
        return "temp" if _kind_of_temp(now) == temp else None
    if now in _DAYS and recorded in _DAYS or now in _MONTHS and recorded in _MONTHS:
        return "date"
    if len(now) != len(recorded):
        return None
    if len(now) >= 4 and any(c.isdigit() for c in now + recorded):
        for hexa in (_HEX_LOWER, _HEX_UPPER):
            if hexa.match(now) and hexa.match(recorded):
                return "hex"  # chunk ids, hashes, short commit ids
    if len(now) >= MIN_RANDOM_ID_CHARS and _ID.match(now) and _ID.match(recorded):
        return "id" if _random_looking(now) and _random_looking(recorded) else None
    return None


def _random_looking(word: str) -> bool:
    lower = any(c.islower() for c in word)
    upper = any(c.isupper() for c in word)
    digit = any(c.isdigit() for c in word)
    return lower + upper + digit >= 2


def _tokens(text: str) -> list[str]:
    return [m.group(0) for m in _TOKEN.finditer(text)]


def _shown(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)[:80]


def _compare_text(now: str, recorded: str, where: str, pairs: list[tuple[str, str]]) -> None:
    a, b = _tokens(now), _tokens(recorded)
    # The common head and tail need no alignment (a long system prompt differs in a word or two).
    head = 0
    while head < len(a) and head < len(b) and a[head] == b[head]:
        head += 1
    tail = 0
    while tail < len(a) - head and tail < len(b) - head and a[-1 - tail] == b[-1 - tail]:
        tail += 1
    a, b = a[head:len(a) - tail], b[head:len(b) - tail]
    if len(a) == len(b):  # word for word: the common case
        kinds = [(x, y, _varying(x, y)) for x, y in zip(a, b) if x != y]
        if all(kind is not None for _, _, kind in kinds):
            pairs.extend((x, y) for x, y, kind in kinds if kind in _IDS)
            return
    for op, i1, i2, j1, j2 in SequenceMatcher(None, a, b).get_opcodes():
        if op == "equal":
            continue
        seg_a, seg_b = a[i1:i2], b[j1:j2]
        if len(seg_a) == len(seg_b):
            for x, y in zip(seg_a, seg_b):
                kind = _varying(x, y)
                if kind is None:
                    raise Mismatch(where, f"recorded {_shown(y)}, now {_shown(x)}")
                if kind in _IDS:
                    pairs.append((x, y))
        elif not (_NUMBERISH.match("".join(seg_a)) and _NUMBERISH.match("".join(seg_b))):
            # A number written differently ("1.5" and "12") may change the token count; nothing else may.
            raise Mismatch(where, f"recorded {_shown(''.join(seg_b))}, now {_shown(''.join(seg_a))}")


def compare(now: Any, recorded: Any, where: str = "body") -> list[tuple[str, str]]:
    """The differing (now, recorded) words of two normalised bodies, each one run-varying;
    raises `Mismatch` at the first difference that is not."""
    pairs: list[tuple[str, str]] = []
    stack = [(now, recorded, where)]
    while stack:
        a, b, at = stack.pop()
        if a == b:
            continue
        if isinstance(a, str) and isinstance(b, str):
            _compare_text(a, b, at, pairs)
            continue
        if type(a) is not type(b):
            raise Mismatch(at, f"{type(b).__name__} recorded, {type(a).__name__} now")
        if isinstance(a, dict):
            if a.keys() != b.keys():
                missing, extra = sorted(set(b) - set(a)), sorted(set(a) - set(b))
                raise Mismatch(at, f"{missing[0]} missing now" if missing else f"{extra[0]} not in the recording")
            stack.extend((a[k], b[k], f"{at}.{k}") for k in sorted(a, reverse=True))
        elif isinstance(a, list):
            if len(a) != len(b):
                raise Mismatch(at, f"{len(b)} items recorded, {len(a)} now")
            stack.extend((x, y, f"{at}[{i}]") for i, (x, y) in reversed(list(enumerate(zip(a, b)))))
        else:
            raise Mismatch(at, f"recorded {_shown(b)}, now {_shown(a)}")
    return pairs


class Learned:
    """The run-varying ids a replay has matched so far: each value now and the value recorded."""

    def __init__(self) -> None:
        self.recorded_of: dict[str, str] = {}
        self._pattern: re.Pattern | None = None

    def learn(self, pairs: list[tuple[str, str]]) -> None:
        for now, rec in pairs:
            if len(now) >= MIN_LEARNED_CHARS and now not in self.recorded_of:
                self.recorded_of[now] = rec
                self._pattern = None

    def apply(self, value: Any) -> Any:
        """`value` with every learned value of this run replaced by the recorded one (whole words only)."""
        if not self.recorded_of:
            return value
        if self._pattern is None:
            words = sorted(self.recorded_of, key=len, reverse=True)
            self._pattern = re.compile(r"(?<!\w)(?:" + "|".join(map(re.escape, words)) + r")(?!\w)")
        pattern, table = self._pattern, self.recorded_of

        def walk(v: Any) -> Any:
            if isinstance(v, str):
                return pattern.sub(lambda m: table[m.group(0)], v)
            if isinstance(v, dict):
                return {k: walk(x) for k, x in v.items()}
            if isinstance(v, list):
                return [walk(x) for x in v]
            return v

        return walk(value)


def first_difference(now: Any, recorded: Any, where: str = "body") -> str:
    """The first place where two normalised bodies differ in a way no run-varying value explains."""
    try:
        compare(now, recorded, where)
    except Mismatch as exc:
        return str(exc)
    return f"{where}: differs"
