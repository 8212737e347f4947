"""What every command's output promises: exit codes, the `--json` schema version, tables.

One home for them, imported by `cli.py`, `doctor_cli.py`, `profiles_cli.py`,
`runs_cli.py`, `doctor.py` and `capture/render.py`. Cheap to import (the agent
fast path does): rich is imported only when a table is printed.
"""

from __future__ import annotations

import enum
import os
import sys
from typing import IO, Any

__all__ = ["ExitCode", "SCHEMA_VERSION", "make_console", "print_table", "count_text"]

# Piped output (not a terminal) is laid out this wide: rows are never folded
# mid-word to fit an imagined 80-column screen; a reader or `less -S` decides.
PIPE_WIDTH = 100_000

# The "schema" of every --json document (runs, show, doctor, profiles). A change
# that breaks a reader of these documents raises it.
SCHEMA_VERSION = 1


def count_text(n: int | None) -> str:
    """A count as people read it (tokens, requests): 845, 12.3k, 1.2M; "-" for none."""
    if n is None:
        return "-"
    if n < 1000:
        return str(n)
    if n < 999_950:
        return f"{n / 1000:.1f}".removesuffix(".0") + "k"
    return f"{n / 1_000_000:.1f}".removesuffix(".0") + "M"


class ExitCode(enum.IntEnum):
    """agentwrap's own exit codes. Agent commands otherwise return the agent's code
    (128+N when it died of signal N); `doctor` returns FAILURE when a check fails."""

    OK = 0
    FAILURE = 1
    USAGE = 2  # usage or configuration errors the user can fix
    NOT_INSTALLED = 127  # the agent binary is not on PATH
    INTERRUPTED = 130


def make_console(file: IO[str] | None = None) -> Any:
    """A rich Console for tables on `file` (stdout): colour only on a terminal and never
    with NO_COLOR; when not a terminal, wide enough that no row is folded."""
    from rich.console import Console

    file = file or sys.stdout
    no_color = bool(os.environ.get("NO_COLOR"))
    kwargs: dict[str, Any] = {}
    if no_color:
        kwargs["color_system"] = None  # no escape sequences at all (rich alone would still send bold)
    try:
        tty = file.isatty()
    except (AttributeError, ValueError):
        tty = False
    if not tty:
        kwargs["width"] = PIPE_WIDTH
    return Console(file=file, no_color=no_color, highlight=False, emoji=False, **kwargs)


def print_table(console: Any, renderable: Any) -> None:
    """Print a table; off a terminal, without the padding rich leaves at the ends of lines."""
    if console.is_terminal:
        console.print(renderable)
        return
    with console.capture() as captured:
        console.print(renderable)
    console.file.write("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))
