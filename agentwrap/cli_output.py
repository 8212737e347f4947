"""What every command's output promises: exit codes and the `--json` schema version.

One home for both, imported by `cli.py`, `doctor_cli.py`, `profiles_cli.py`,
`doctor.py` and `capture/render.py`. Cheap to import (the agent fast path does).
"""

from __future__ import annotations

import enum

__all__ = ["ExitCode", "SCHEMA_VERSION"]

# The "schema" of every --json document (runs, show, doctor, profiles). A change
# that breaks a reader of these documents raises it.
SCHEMA_VERSION = 1


class ExitCode(enum.IntEnum):
    """agentwrap's own exit codes. Agent commands otherwise return the agent's code
    (128+N when it died of signal N); `doctor` returns FAILURE when a check fails."""

    OK = 0
    FAILURE = 1
    USAGE = 2  # usage or configuration errors the user can fix
    NOT_INSTALLED = 127  # the agent binary is not on PATH
    INTERRUPTED = 130
