"""How many runs the capture directory keeps, and deleting the rest.

By default the newest 50 runs are kept, within 1 GiB: after a run, older
bundles beyond either cap are deleted, oldest first. The user changes both in
`platformdirs.user_config_dir("agentwrap")/config.toml`:

```toml
[capture]
keep_runs = 50       # newest runs kept; 0 = no limit on the number
max_size = "1GiB"    # total size of the kept bundles; a number of bytes or "500MB", "2GiB"; 0 = no limit
```

Rules, applied newest first (bundle names sort by start time):

- the run just recorded (`current`) is never deleted, nor is a bundle that
  may still be written by another agentwrap (no footer yet and modified in the
  last `LIVE_GRACE_S`); both count toward the caps;
- a run is kept while fewer than `keep_runs` runs are kept and the kept
  bundles fit in `max_size`; the first run that does not fit and every older
  one are deleted (a cut, so the kept runs are always the newest);
- only files named like bundles (`<YYYYmmddTHHMMSSZ>-<agent>-<id>.cbor`) are
  ever deleted; anything else in the directory is left alone.

`apply_retention` is what the session calls at the end of a run; `plan_prune`
and `delete_runs` serve `agentwrap runs prune`. Also here: reading sizes
("1GiB") and ages ("7d") as the user writes them, and printing sizes.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from agentwrap.errors import ConfigError

__all__ = [
    "DEFAULT_KEEP_RUNS",
    "DEFAULT_MAX_BYTES",
    "LIVE_GRACE_S",
    "RetentionSettings",
    "BundleFile",
    "apply_retention",
    "bundle_files",
    "config_file",
    "delete_runs",
    "format_size",
    "load_retention_settings",
    "parse_age",
    "parse_size",
    "plan_prune",
]

DEFAULT_KEEP_RUNS = 50
DEFAULT_MAX_BYTES = 1 << 30  # 1 GiB
# A bundle without a footer that changed this recently may belong to an agentwrap
# still running (an interactive session can sit idle for hours): never delete it.
LIVE_GRACE_S = 24 * 3600
CONFIG_FILE_NAME = "config.toml"

_BUNDLE_NAME = re.compile(r"^(\d{8}T\d{6}Z)-(.+)-([A-Za-z0-9]+)\.cbor$")
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")
_SIZE_UNITS = {
    "": 1, "b": 1,
    "k": 1 << 10, "kib": 1 << 10, "kb": 10**3,
    "m": 1 << 20, "mib": 1 << 20, "mb": 10**6,
    "g": 1 << 30, "gib": 1 << 30, "gb": 10**9,
    "t": 1 << 40, "tib": 1 << 40, "tb": 10**12,
}
_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|secs|m|min|mins|h|hr|hrs|d|day|days|w|wk|week|weeks)\s*$", re.IGNORECASE)
_AGE_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


@dataclass(frozen=True, slots=True)
class RetentionSettings:
    """`keep_runs` newest runs within `max_bytes`; None = no cap of that kind."""

    keep_runs: int | None = DEFAULT_KEEP_RUNS
    max_bytes: int | None = DEFAULT_MAX_BYTES


@dataclass(frozen=True, slots=True)
class BundleFile:
    """A bundle in the capture directory, as its directory entry tells."""

    path: str
    name: str
    size: int
    mtime_ns: int
    started: datetime  # from the name (UTC)
    short_id: str


def config_file() -> Path:
    """`platformdirs.user_config_dir("agentwrap")/config.toml`."""
    from platformdirs import user_config_dir

    return Path(user_config_dir("agentwrap")) / CONFIG_FILE_NAME


def parse_size(value: object, what: str = "size") -> int | None:
    """Bytes from `1073741824`, `"1GiB"`, `"500MB"`, `"2G"`; 0 means no limit (None).

    Raises `ConfigError` naming `what` for anything else.
    """
    if isinstance(value, bool):
        raise ConfigError(f"{what} must be a size such as \"1GiB\" or \"500MB\", not {value!r}")
    if isinstance(value, int):
        number, unit = float(value), ""
    elif isinstance(value, str) and (m := _SIZE.match(value)):
        number, unit = float(m.group(1)), m.group(2).lower()
    else:
        raise ConfigError(f"{what} must be a size such as \"1GiB\" or \"500MB\", not {value!r}")
    if unit not in _SIZE_UNITS or number < 0:
        raise ConfigError(f"{what} must be a size such as \"1GiB\" or \"500MB\" (units B, KB, MB, GB, KiB, MiB, GiB), not {value!r}")
    size = int(number * _SIZE_UNITS[unit])
    return size or None


def parse_age(value: str, what: str = "age", *, now: datetime | None = None) -> datetime:
    """The moment `value` ago (`30m`, `12h`, `7d`, `2w`) or the moment it names
    (`2026-11-20`, `2026-11-20T08:00`, local time unless it carries a zone), as an aware datetime.

    Raises `ConfigError` naming `what` for anything else.
    """
    now = now or datetime.now(timezone.utc)
    m = _AGE.match(value or "")
    if m:
        seconds = float(m.group(1)) * _AGE_SECONDS[m.group(2)[0].lower()]
        return now - timedelta(seconds=seconds)
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(
            f"{what} must be an age such as 30m, 12h, 7d or 2w, or a date such as 2026-11-20, not {value!r}"
        ) from None
    if when.tzinfo is None:
        when = when.astimezone()  # a naive date or time is the user's local time
    return when


def format_size(n: int | None) -> str:
    """`512 B`, `51.2 KiB`, `3.4 MiB`, `1.0 GiB`."""
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"  # pragma: no cover - the loop returns at GiB


def load_retention_settings(path: str | os.PathLike | None = None) -> RetentionSettings:
    """The `[capture]` table of the user's config file (defaults where it is silent or missing).

    Raises `ConfigError` naming the file and key for a value agentwrap cannot use.
    """
    path = Path(path) if path is not None else config_file()
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return RetentionSettings()
    except OSError as exc:
        raise ConfigError(f"Cannot read {path}: {exc.strerror or exc}") from exc
    import tomllib

    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    capture = data.get("capture", {})
    if not isinstance(capture, dict):
        raise ConfigError(f"{path}: [capture] must be a table")
    unknown = sorted(set(capture) - {"keep_runs", "max_size"})
    if unknown:
        raise ConfigError(f"{path}: unknown key capture.{unknown[0]}. Known keys: capture.keep_runs, capture.max_size")
    keep = capture.get("keep_runs", DEFAULT_KEEP_RUNS)
    if isinstance(keep, bool) or not isinstance(keep, int) or keep < 0:
        raise ConfigError(f"{path}: capture.keep_runs must be a whole number of runs (0 = no limit), not {keep!r}")
    max_bytes = parse_size(capture.get("max_size", DEFAULT_MAX_BYTES), f"{path}: capture.max_size")
    return RetentionSettings(keep_runs=keep or None, max_bytes=max_bytes)


def bundle_files(capture_dir: str | os.PathLike) -> list[BundleFile]:
    """The bundles in `capture_dir` named as agentwrap names them, newest first.
    A missing directory has none."""
    out = []
    try:
        entries = list(os.scandir(capture_dir))
    except (FileNotFoundError, NotADirectoryError):
        return []
    for entry in entries:
        m = _BUNDLE_NAME.match(entry.name)
        if m is None:
            continue
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            st = entry.stat(follow_symlinks=False)
            started = datetime.strptime(m.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
        except (OSError, ValueError):
            continue
        out.append(BundleFile(entry.path, entry.name, st.st_size, st.st_mtime_ns, started, m.group(3)))
    out.sort(key=lambda b: b.name, reverse=True)
    return out


def _may_be_live(b: BundleFile, now_s: float) -> bool:
    """No footer yet and changed recently: another agentwrap may still be writing it."""
    if now_s - b.mtime_ns / 1e9 > LIVE_GRACE_S:
        return False
    from agentwrap.capture.reader import read_header_footer
    from agentwrap.errors import CaptureError

    try:
        _, footer = read_header_footer(b.path)
    except CaptureError:
        return True  # unreadable and recent: perhaps a header still on its way
    return footer is None


def _same_file(a: str, b: str | None) -> bool:
    if b is None:
        return False
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)


def plan_prune(
    files: Iterable[BundleFile],
    *,
    current: str | os.PathLike | None = None,
    keep_runs: int | None = None,
    max_bytes: int | None = None,
    older_than: datetime | None = None,
    now: datetime | None = None,
) -> tuple[list[BundleFile], list[BundleFile]]:
    """(to delete, kept only because they may still be running), for files newest first.

    A run goes when it is past the newest `keep_runs`, past `max_bytes` of kept
    bundles (and so is every older one), or started before `older_than`.
    """
    now_s = (now or datetime.now(timezone.utc)).timestamp()
    current = os.fspath(current) if current is not None else None
    delete: list[BundleFile] = []
    spared: list[BundleFile] = []
    kept = kept_bytes = 0
    cut = False
    for b in files:
        if _same_file(b.path, current):
            kept, kept_bytes = kept + 1, kept_bytes + b.size
            continue
        over = (
            cut
            or (keep_runs is not None and kept >= keep_runs)
            or (max_bytes is not None and kept_bytes + b.size > max_bytes)
        )
        cut = cut or over
        old = older_than is not None and b.started < older_than
        if (over or old) and _may_be_live(b, now_s):
            spared.append(b)
            over = old = False
        if over or old:
            delete.append(b)
        else:
            kept, kept_bytes = kept + 1, kept_bytes + b.size
    return delete, spared


def delete_runs(files: Iterable[BundleFile]) -> tuple[list[BundleFile], list[tuple[BundleFile, str]]]:
    """Delete the bundles: (deleted, [(not deleted, why)]). One already gone counts as deleted."""
    deleted, failed = [], []
    for b in files:
        try:
            os.unlink(b.path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            failed.append((b, exc.strerror or str(exc)))
            continue
        deleted.append(b)
    return deleted, failed


def apply_retention(
    capture_dir: str | os.PathLike,
    current: str | os.PathLike | None = None,
    settings: RetentionSettings | None = None,
    *,
    now: datetime | None = None,
) -> list[str]:
    """Delete the runs beyond the retention caps; return the paths deleted.

    `current` (the bundle of the run that just ended) is never deleted.
    `settings` default to the user's config file (`load_retention_settings`),
    which raises `ConfigError` if it is broken. A bundle that cannot be deleted
    is left for the next run; nothing else raises.
    """
    if settings is None:
        settings = load_retention_settings()
    if settings.keep_runs is None and settings.max_bytes is None:
        return []
    files = bundle_files(capture_dir)
    delete, _ = plan_prune(files, current=current, keep_runs=settings.keep_runs, max_bytes=settings.max_bytes, now=now)
    deleted, _ = delete_runs(delete)
    return [b.path for b in deleted]
