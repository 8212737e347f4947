"""Where bundles live, what they are called, and the list of recent runs.

`list_runs` reads only each bundle's header and footer (the footer is found
through the locator at the end of the file), so listing stays fast however
long the runs were.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

from platformdirs import user_state_dir

from agentwrap.errors import CaptureError

__all__ = ["BUNDLE_SUFFIX", "bundle_filename", "default_capture_dir", "list_runs"]

BUNDLE_SUFFIX = ".cbor"
SHORT_ID_CHARS = 8


def default_capture_dir() -> Path:
    """The platform's per-user state directory for agentwrap, `runs/` inside it."""
    return Path(user_state_dir("agentwrap")) / "runs"


def bundle_filename(agent: str, run_id: str, now_utc: datetime) -> str:
    """`<YYYYmmddTHHMMSSZ>-<agent>-<short id>.cbor`; sorting names sorts runs by start time."""
    if now_utc.tzinfo is not None:
        now_utc = now_utc.astimezone(timezone.utc)
    short = "".join(c for c in run_id if c.isalnum())[:SHORT_ID_CHARS] or "run"
    safe_agent = "".join(c if c.isalnum() or c in "-_" else "_" for c in agent) or "agent"
    return f"{now_utc:%Y%m%dT%H%M%SZ}-{safe_agent}-{short}{BUNDLE_SUFFIX}"


def _tokens(totals: dict) -> int | None:
    tokens = totals.get("tokens")
    if not isinstance(tokens, dict):
        return None
    return sum(v for k, v in tokens.items() if k in ("input_tokens", "output_tokens") and isinstance(v, int))


def _row(path: Path) -> dict:
    # Imported here: sessions call default_capture_dir() on the start-up path, and
    # the reader (cbor2 and friends) is not needed there.
    from agentwrap.capture.reader import read_header_footer

    row: dict = {
        "time": None, "agent": None, "profile": None, "duration_s": None, "exit_code": None,
        "requests": None, "tokens": None, "path": str(path), "complete": False, "run_id": None, "error": None,
    }
    try:
        header, footer = read_header_footer(path)
    except CaptureError as exc:
        row["error"] = str(exc)
        return row
    row.update(time=header.get("started_at"), agent=header.get("agent"), profile=header.get("profile"),
               run_id=header.get("run_id"))
    if footer is not None:
        totals = footer.get("totals") if isinstance(footer.get("totals"), dict) else {}
        duration = footer.get("duration_s")
        if duration is None and isinstance(footer.get("at"), int):
            duration = round(footer["at"] / 1e9, 3)
        row.update(complete=True, duration_s=duration, exit_code=footer.get("exit_code"),
                   requests=totals.get("requests"), tokens=_tokens(totals))
    return row


def list_runs(capture_dir: str | os.PathLike, limit: int | None = 20) -> list[dict]:
    """Recent runs, newest first: one dict per bundle (`complete` False for cut-short runs,
    `error` set for files that are not readable bundles). A missing directory has no runs."""
    directory = Path(capture_dir)
    try:
        names = [e.name for e in os.scandir(directory) if e.name.endswith(BUNDLE_SUFFIX) and e.is_file()]
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as exc:
        raise CaptureError(f"Cannot list capture directory {directory}: {exc.strerror or exc}") from exc
    names.sort(reverse=True)
    if limit is not None:
        names = names[: max(0, limit)]
    return [_row(directory / n) for n in names]
