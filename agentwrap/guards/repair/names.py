"""Tool names: match what a model called against the tools the request declared.

Only declared tools are ever returned. In order, the first stage with a
single answer wins:

1. exact;
2. namespaced: `ns__name` where `name` is declared (a Codex namespaced
   tool as the pass-through decoder names it). Not a repair: the caller
   keeps the name and checks the arguments against `name`'s schema;
3. case-insensitive (`bash` -> `Bash`);
4. separators and case normalised (`read-file`, `readFile`, `Read File` ->
   `read_file`): letters and digits only, lower-cased;
5. a wrapper prefix dropped (`functions.Bash`, `default_api.read_file`):
   the part after the last "." matched by stages 1, 3 and 4;
6. close: the smallest Damerau-Levenshtein distance between normalised
   names, at most 1 for names up to 5 characters, 2 up to 12, 3 beyond,
   and only when one declared tool is at that distance (`Bsh` -> `Bash`).
   Names shorter than 3 characters are never matched this way. A caller
   should also require the arguments to fit the matched tool's schema
   before it renames a call on this evidence.

Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import NamedTuple

__all__ = ["NameMatch", "NameResolver", "normalize", "distance"]

_NOT_ALNUM = re.compile(r"[^0-9a-z]+")


def normalize(name: str) -> str:
    """`name` lower-cased with everything but letters and digits removed."""
    return _NOT_ALNUM.sub("", name.lower())


def distance(a: str, b: str, limit: int) -> int:
    """Damerau-Levenshtein distance (optimal string alignment) of `a` and `b`; any value
    above `limit` is reported as `limit + 1`."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        if min(cur) > limit:
            return limit + 1
        prev2, prev = prev, cur
    return min(prev[-1], limit + 1)


def _limit(length: int) -> int:
    return 1 if length <= 5 else 2 if length <= 12 else 3


class NameMatch(NamedTuple):
    """A declared tool name and how it was found: exact, namespace, case, separators,
    prefix or close."""

    name: str
    how: str


class NameResolver:
    """Resolves called names against a fixed set of declared names (built once per request)."""

    def __init__(self, declared: Iterable[str]) -> None:
        self.declared = tuple(dict.fromkeys(declared))
        self._exact = frozenset(self.declared)
        self._folded = _unique((n.lower(), n) for n in self.declared)
        self._normal = _unique((normalize(n), n) for n in self.declared)
        self._cache: dict[str, NameMatch | None] = {}

    def __contains__(self, name: str) -> bool:
        return name in self._exact

    def resolve(self, name: str) -> NameMatch | None:
        """The declared tool `name` stands for, or None."""
        if name in self._exact:
            return NameMatch(name, "exact")
        if name not in self._cache:
            if len(self._cache) > 256:
                self._cache.clear()
            self._cache[name] = self._resolve(name)
        return self._cache[name]

    def _resolve(self, name: str) -> NameMatch | None:
        if "__" in name:
            inner = name.split("__", 1)[1]
            if inner in self._exact:
                return NameMatch(inner, "namespace")
        match = self._loose(name)
        if match is not None:
            return match
        for sep in (".", ":", "/"):
            if sep in name:
                tail = name.rsplit(sep, 1)[1]
                match = NameMatch(tail, "prefix") if tail in self._exact else self._loose(tail)
                if match is not None:
                    return NameMatch(match.name, "prefix")
        return self._close(normalize(name))

    def _loose(self, name: str) -> NameMatch | None:
        folded = self._folded.get(name.lower())
        if folded:
            return NameMatch(folded, "case")
        normal = self._normal.get(normalize(name))
        if normal:
            return NameMatch(normal, "separators")
        return None

    def _close(self, norm: str) -> NameMatch | None:
        if len(norm) < 3:
            return None
        best: list[str] = []
        best_d = 99
        for candidate, original in self._normal.items():
            limit = _limit(len(candidate))
            d = distance(norm, candidate, min(limit, best_d))
            if d > limit:
                continue
            if d < best_d:
                best, best_d = [original], d
            elif d == best_d:
                best.append(original)
        return NameMatch(best[0], "close") if len(best) == 1 and best[0] else None


def _unique(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """key -> name where the key is one name's alone ("" where several share it)."""
    out: dict[str, str] = {}
    for key, name in pairs:
        out[key] = "" if key in out and out[key] != name else name
    return out
