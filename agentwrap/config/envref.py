"""`${NAME}` references to environment variables inside profile values.

Forms: `${NAME}` (the variable must be set), `${NAME:-default}` (the default
when the variable is unset or empty), and `$$` for a literal `$`. Anything
else that starts with `${` is an error, so a typo never reaches an upstream.
Pure: the environment arrives as a mapping.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = ["EnvRefError", "expand_refs", "refs_in"]

_TOKEN = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class EnvRefError(ValueError):
    """A reference that cannot be expanded; the message says which and how to fix it."""


def expand_refs(value: str, env: Mapping[str, str]) -> str:
    """Expand `${NAME}`, `${NAME:-default}` and `$$` in `value`; raises EnvRefError."""
    if "$" not in value:
        return value
    out: list[str] = []
    pos = 0
    for m in _TOKEN.finditer(value):
        _check_plain(value[pos : m.start()])
        out.append(value[pos : m.start()])
        pos = m.end()
        if m.group(0) == "$$":
            out.append("$")
            continue
        name, default = m.group(1), m.group(2)
        got = env.get(name)
        if got:
            out.append(got)
        elif default is not None:
            out.append(default)
        else:
            raise EnvRefError(
                f"environment variable {name} is not set; export it, or write ${{{name}:-default}} to give a default"
            )
    _check_plain(value[pos:])
    out.append(value[pos:])
    return "".join(out)


def _check_plain(text: str) -> None:
    i = text.find("${")
    if i >= 0:
        bad = text[i : text.find("}", i) + 1 or len(text)]
        raise EnvRefError(f"malformed reference {bad!r}; write ${{NAME}} or ${{NAME:-default}}, or $$ for a literal $")


def refs_in(value: str) -> list[str]:
    """The variable names `value` refers to (for display; never expands)."""
    return [m.group(1) for m in _TOKEN.finditer(value) if m.group(1)]
